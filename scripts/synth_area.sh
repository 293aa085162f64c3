#!/usr/bin/env bash
# Regenerates rtl/area/pe_area.csv: the PE of rtl/pe.sv synthesized with Yosys
# (rtl/synth/pe.ys: synth -flatten, flip-flops legalized to plain D flops,
# abc onto AND/NAND/OR/NOR/XOR/XNOR/MUX/NOT) for every configuration
# architects sweep, with cell counts and a gate-equivalent area.
#
#   scripts/synth_area.sh [-j JOBS] [OUT.csv]   (default rtl/area/pe_area.csv)
#
# 465 yosys runs (155 distinct configurations x full PE, inner, with
# headroom) of about 1 s of CPU each: ~8 minutes of CPU; -j 2 runs two at a
# time (18 minutes wall on this shared 2-core machine at a load average of 10).
#
# Configurations: operands a = b in {3,4,5,6,8} bits, signed; W in
# {6,8,10,12,16,32}; modes exact, clamp_tile, saturate, wrap; ranges full and
# symmetric where the range matters (clamp_tile, saturate; reading 8: wrap
# ignores it; exact has no narrowing and ignores W too, so its rows repeat one
# synthesis per operand width). Wo = 32 (the contract's default), tile <= 32
# (sets the exact tile sum register of exact / clamp_tile: PROD + 5 bits).
# No combination is skipped: the contract allows any W in 2..32 with any
# operand width, and a W that cannot hold one product is still a well-defined
# (saturating from the first step) register; the column w_holds_product says
# whether the full W-bit range holds the largest |product| (2^(2a-2)).
#
# Area: ge = sum of cells x weight, weights = NanGate FreePDK45 Open Cell
# Library X1 cell areas divided by NAND2_X1 (0.798 um^2), the usual
# gate-equivalent convention (1 GE = one 2-input NAND):
#   NOT (INV_X1 0.532) 0.667, NAND 1, NOR 1, AND/OR (AND2/OR2_X1 1.064) 1.333,
#   XOR/XNOR (1.596) 2, MUX (MUX2_X1 1.862) 2.333, DFF (DFF_X1 4.522) 5.667.
# (Areas as in the library's typical-corner liberty, NangateOpenCellLibrary_
# typical.lib; the library is not installed here, so they were not re-read;
# the cell counts let anyone apply other weights.) ABC's mapping is
# heuristic: neighbouring configurations can differ by a few percent for no
# architectural reason (e.g. clamp_tile at W = 12 vs 16).
# ge is the datapath PE (multiplier, tile register, outer register with its
# adder, clamp and drain path, operand and flag pipeline registers, overflow
# event outputs), with the cell counts in the columns before it; ge_inner
# (dff_inner flip-flops) the same PE without the outer accumulator, its tile
# result P an output (pe_synth OUTER = 0): multiplier and tile accumulator;
# ge_headroom the full PE plus the |exact tile sum| output of the max |tile
# sum| statistic, which also keeps an exact tile sum register in saturate and
# wrap.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=1
if [ "${1:-}" = "-j" ]; then jobs="$2"; shift 2; fi
out="${1:-rtl/area/pe_area.csv}"
command -v yosys >/dev/null || { echo "synth_area: yosys not found (scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export tmp

# synth KEY A W MODE FULL HEADROOM OUTER: writes $tmp/KEY.txt =
# "cells dff and nand or nor xor xnor mux not ge"
synth() {
  local key=$1 stat="$tmp/$1.stat"
  local params="-set A_BITS $2 -set B_BITS $2 -set A_SIGNED 1 -set B_SIGNED 1 -set ACC_BITS $3 -set MODE $4"
  params+=" -set FULL_RANGE $5 -set OUT_BITS 32 -set TILE_MAX 32 -set HEADROOM $6 -set OUTER $7"
  yosys -q -p "read_verilog -sv rtl/pe.sv rtl/pe_synth.sv; chparam $params pe_synth; script rtl/synth/pe.ys; tee -q -o $stat stat" >/dev/null
  awk '
    BEGIN { n = split("DFF_P AND NAND OR NOR XOR XNOR MUX NOT", t, " ");
            w["DFF_P"] = 4.522; w["AND"] = 1.064; w["NAND"] = 0.798; w["OR"] = 1.064; w["NOR"] = 0.798;
            w["XOR"] = 1.596; w["XNOR"] = 1.596; w["MUX"] = 1.862; w["NOT"] = 0.532 }
    $1 ~ /^\$_/ { c = $1; gsub(/^\$_|_$/, "", c); cnt[c] = $2; total += $2
                  if (!(c in w)) { print "synth_area: unexpected cell " $1 > "/dev/stderr"; bad = 1 } }
    END { if (bad || total == 0) exit 1
          line = total; ge = 0
          for (i = 1; i <= n; i++) { line = line " " (cnt[t[i]] + 0); ge += (cnt[t[i]] + 0) * w[t[i]] / 0.798 }
          printf "%s %.1f\n", line, ge }' "$stat" > "$tmp/$key.tmp"
  mv "$tmp/$key.tmp" "$tmp/$key.txt"
  echo "synth_area: $key $(awk '{print $NF}' "$tmp/$key.txt") GE" >&2
}
export -f synth

modes=(exact clamp_tile saturate wrap)
operands=(3 4 5 6 8)
accs=(6 8 10 12 16 32)
# rows: "a w mode range key" (exact: one synthesis per operand width, W unused)
rows=()
for a in "${operands[@]}"; do
  for w in "${accs[@]}"; do
    for mi in 0 1 2 3; do
      case ${modes[$mi]} in
        clamp_tile|saturate) ranges=(full symmetric) ;;
        *) ranges=(any) ;;
      esac
      for range in "${ranges[@]}"; do
        full=$([ "$range" = symmetric ] && echo 0 || echo 1)
        key="a${a}_w${w}_m${mi}_f${full}"
        [ "$mi" = 0 ] && key="a${a}_exact"
        rows+=("$a $w ${modes[$mi]} $range $key")
        if [ ! -e "$tmp/$key.job" ]; then
          : > "$tmp/$key.job"
          for variant in "full 0 1" "inner 0 0" "headroom 1 1"; do
            set -- $variant
            echo "${key}_$1 $a $w $mi $full $2 $3"
          done >> "$tmp/jobs"
        fi
      done
    done
  done
done
start=$SECONDS
xargs -P "$jobs" -L 1 bash -c 'synth "$@"' _ < "$tmp/jobs"

echo "a_bits,b_bits,signed,acc_bits,mode,range,outer_bits,tile_max,w_holds_product,cells,dff,and,nand,or,nor,xor,xnor,mux,not,ge,dff_inner,ge_inner,ge_headroom" > "$tmp/out.csv"
for row in "${rows[@]}"; do
  read -r a w mode range key <<< "$row"
  read -r -a r < "$tmp/${key}_full.txt"
  read -r -a i < "$tmp/${key}_inner.txt"
  read -r -a h < "$tmp/${key}_headroom.txt"
  holds=$(( (1 << (2 * a - 2)) <= (1 << (w - 1)) - 1 ? 1 : 0 ))
  echo "$a,$a,1,$w,$mode,$range,32,32,$holds,$(IFS=,; echo "${r[*]}"),${i[1]},${i[10]},${h[10]}" >> "$tmp/out.csv"
done
mv "$tmp/out.csv" "$out"
echo "synth_area: wrote $out ($(($(wc -l < "$out") - 1)) configurations, $(wc -l < "$tmp/jobs") yosys runs, $((SECONDS - start)) s with -j $jobs)" >&2
