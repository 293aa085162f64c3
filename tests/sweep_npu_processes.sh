#!/usr/bin/env bash
# `sweep --engine npu -j 2` runs its points in child processes (one SystemC
# kernel each): its summaries must equal a -j 1 run's byte for byte, a zipped
# bit-pair axis must set both keys per point, and a point that fails in its
# child must fail that point only, naming it. Usage: tests/sweep_npu_processes.sh HDQSIM_BINARY
set -euo pipefail
hdqsim="$(realpath "$1")"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
grid=(--scenario scenarios/syn-er-npu.yaml --engine npu --set "operand_bits+gemm.fwd.acc_bits=4+8,8+16,6+12")

"$hdqsim" sweep "${grid[@]}" -j 1 --out "$work/serial" >/dev/null 2>&1
"$hdqsim" sweep "${grid[@]}" -j 2 --out "$work/children" >/dev/null 2>&1
for f in sweep.csv summary.json sweep.json; do
  cmp "$work/serial/$f" "$work/children/$f" || { echo "FAIL: $f differs between -j 1 and -j 2"; exit 1; }
done
# The zipped pairs reached the scenario: point 1 ran with 8-bit operands and 16-bit accumulators.
grep -q '"operand_bits+gemm.fwd.acc_bits": "8+16"' "$work/children/points/p0001.json" || { echo "FAIL: p0001 settings"; exit 1; }
# No child's temporary result is left behind.
if ls "$work/children/points" | grep -q '\.tmp\.'; then echo "FAIL: temporary files left"; exit 1; fi

# An NPU config key is an axis too: a larger SRAM costs more per access (its
# banks are larger: docs/npu.md, Energy), so the 1 MiB point's energy differs;
# another engine refuses npu.<key> before the folder exists.
"$hdqsim" sweep --scenario scenarios/syn-er-npu.yaml --engine npu -j 2 --set npu.sram.size_bytes=65536,1048576 \
  --out "$work/sram" >/dev/null 2>&1
energies=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "energy_pj_per_step") c = i } NR > 1 { print $c }' "$work/sram/sweep.csv" | sort -u | wc -l)
[ "$energies" -eq 2 ] || { echo "FAIL: the SRAM axis did not reach the NPU config"; cat "$work/sram/sweep.csv"; exit 1; }
if "$hdqsim" sweep --scenario scenarios/syn-er-npu.yaml --set npu.sram.size_bytes=65536,1048576 --out "$work/nosram" 2>"$work/err"; then
  echo "FAIL: npu.<key> accepted by the functional engine"; exit 1
fi
grep -q "npu.<key> applies to --engine npu only" "$work/err" && [ ! -e "$work/nosram" ] || { echo "FAIL: $(cat "$work/err")"; exit 1; }

# The child names what it cannot do: a point the sweep does not have, a scenario that is gone.
expect_child_error() {  # fragment, sweep-point arguments...
  local fragment=$1 out rc
  shift
  set +e
  out="$("$hdqsim" sweep-point "$@" --result "$work/r.tmp.json" 2>&1)"
  rc=$?
  set -e
  [ "$rc" -ne 0 ] && grep -qF "$fragment" <<<"$out" || { echo "FAIL: sweep-point $*: rc=$rc: $out"; exit 1; }
  [ ! -e "$work/r.tmp.json" ] || { echo "FAIL: sweep-point $* wrote a result"; exit 1; }
}
expect_child_error "has points 0..2" --dir "$work/serial" --index 3
sed 's#"scenario": "[^"]*"#"scenario": "'"$work"'/gone.yaml"#' "$work/serial/sweep.json" >"$work/tmp.json"
mkdir "$work/gone" && mv "$work/tmp.json" "$work/gone/sweep.json"
expect_child_error "gone.yaml" --dir "$work/gone" --index 0
echo "sweep npu processes: -j 2 == -j 1, zipped axis applied, npu.<key> axis, child errors named"
