#!/usr/bin/env bash
# Bad outputs, table-driven: each row is a command that must fail at once with
# the given exit status (2: configuration, 1: other errors) and a message
# containing the given fragment, before any work starts (no progress line of
# a training run or a grid) and without creating, changing or leaving behind
# any file (the tree is compared before and after every row; .lock files
# record their last holder and are left out). The classes: output paths that
# cannot be written, settings checked for every grid cell before the folder
# exists, repeated or conflicting --set keys, folders holding another grid,
# folders in use by another run. (Bad inputs have their own suite.)
# Usage: tests/bad_outputs.sh HDQSIM_BINARY
set -euo pipefail
hdqsim="$(realpath "$1")"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
logs="$(mktemp -d)"
trap 'rm -rf "$work" "$logs"' EXIT
fail() { echo "FAIL: $*"; echo "== stderr"; cat "$logs/err"; exit 1; }
# Files with size and time, folders by name (a folder's time changes with the
# writability probe, which leaves nothing behind).
tree() { (cd "$work" && find . -not -name .lock \( -type d -printf '%p/\n' -o -printf '%p %s %T@\n' \) | sort); }
rows=0
row() {  # row STATUS FRAGMENT COMMAND...
  local want="$1" fragment="$2" status=0
  shift 2
  tree >"$logs/before"
  "$@" >"$logs/out" 2>"$logs/err" || status=$?
  [ "$status" -eq "$want" ] || fail "exit status $status, not $want: ${*:2}"
  grep -qF -- "$fragment" "$logs/err" || fail "no '$fragment' in the message of: ${*:2}"
  ! grep -qE '^\[(HDQT|golden|sweep|compare|regress)' "$logs/err" || fail "work started before the error: ${*:2}"
  tree | cmp -s - "$logs/before" || fail "files changed: ${*:2}: $(tree | diff "$logs/before" - || true)"
  rows=$((rows + 1))
}

S=(--scenario scenarios/synthetic-tiny.yaml)
file="$work/file" dir="$work/dir" sw="$work/sweep" cmp="$work/compare"
touch "$file"; mkdir "$dir"
"$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=4,8 --out "$sw" >/dev/null 2>&1
"$hdqsim" compare "${S[@]}" --methods naive --presets golden --seeds 1 --out "$cmp" >/dev/null 2>&1

# Output paths that cannot be created or written: refused before training.
row 2 "--out $file: exists and is not a folder" "$hdqsim" train "${S[@]}" --out "$file"
row 2 "--out $file/sub: cannot create the folder: Not a directory" "$hdqsim" train "${S[@]}" --out "$file/sub"
row 2 "--out /proc: cannot write in the folder" "$hdqsim" train "${S[@]}" --out /proc
row 2 "--out /proc/hdqsim: cannot create the folder" "$hdqsim" train "${S[@]}" --out /proc/hdqsim
row 2 "--vcd $dir: is a folder" "$hdqsim" train "${S[@]}" --engine npu --vcd "$dir" --out "$work/t"
row 2 "--vcd $dir: is a folder" "$hdqsim" estimate "${S[@]}" --vcd "$dir"
row 2 "--out $file: exists and is not a folder" "$hdqsim" estimate "${S[@]}" --out "$file"
row 2 "--junit $dir: is a folder" "$hdqsim" regress scenarios/synthetic-tiny.yaml --junit "$dir"
row 2 "--out $file: exists and is not a folder" "$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=4,8 --out "$file"
row 2 "--out $file: exists and is not a folder" "$hdqsim" compare "${S[@]}" --methods naive --presets golden --out "$file"
row 2 "--out $file: exists and is not a folder" "$hdqsim" merge "$sw" --out "$file"
# A read-only mount, where an unprivileged mount namespace is allowed.
if unshare -rm true 2>/dev/null; then
  row 2 "--out $dir: cannot write in the folder: Read-only file system" \
    unshare -rm sh -c 'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"' sh "$dir" \
    "$hdqsim" train "${S[@]}" --out "$dir"
else
  echo "note: no user namespaces here; the read-only mount row is skipped"
fi

# Every point or cell is validated before the folder exists or anything runs.
row 2 "--set gemm.fwd.acc_bits: 99 is outside the allowed range" \
  "$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=8,99 --out "$work/s"
row 2 "--set gemm.fwd.outer_bits: outer_bits = 16 is below acc_bits = 20" \
  "$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=8,20 --set gemm.fwd.outer_bits=16 --out "$work/s"
row 2 "--engine = 'bogus'" "$hdqsim" sweep "${S[@]}" --engine bogus --out "$work/s"
row 2 "--presets bogus" "$hdqsim" compare "${S[@]}" --methods naive --presets golden,bogus --out "$work/c"

# --set: one key once; a sweep axis and a fixed value of one key conflict.
row 2 "--set epochs: given twice (epochs=1 and epochs=2)" "$hdqsim" train "${S[@]}" --set epochs=1 --set epochs=2 --out "$work/t"
row 2 "--set gemm.fwd and --set gemm.fwd.tile" \
  "$hdqsim" train "${S[@]}" --set 'gemm.fwd={acc_bits: 6}' --set gemm.fwd.tile=8 --out "$work/t"
row 2 "--set npu.clock_mhz: given twice" "$hdqsim" estimate "${S[@]}" --set npu.clock_mhz=100 --set npu.clock_mhz=200
row 2 "--set epochs: given twice" \
  "$hdqsim" compare "${S[@]}" --methods naive --presets golden --set epochs=1 --set epochs=2 --out "$work/c"
row 2 "--set gemm.fwd.acc_bits: the key is already swept (4,8)" \
  "$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=4,8 --set gemm.fwd.acc_bits=6 --out "$work/s"
row 2 "--set gemm.fwd.acc_bits: the key is already fixed (gemm.fwd.acc_bits=6)" \
  "$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=6 --set gemm.fwd.acc_bits=4,8 --out "$work/s"
row 2 "--set epochs: the key is already swept (1,2)" \
  "$hdqsim" sweep "${S[@]}" --set epochs=1,2 --set epochs=1,3 --out "$work/s"
row 2 "--set seed: a sweep sets the seed of each point" "$hdqsim" sweep "${S[@]}" --set seed=3 --out "$work/s"

# A folder holding another grid is refused before anything in it is replaced.
row 2 "$sw holds the results of a different sweep (see $sw/sweep.json; it differs in axes)" \
  "$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=4,6 --out "$sw"
row 2 "it differs in overrides, scenario_hash" "$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=4,8 --set epochs=1 --out "$sw"
row 2 "$cmp holds the results of a different compare (see $cmp/compare.json; it differs in presets)" \
  "$hdqsim" compare "${S[@]}" --methods naive --presets paper --seeds 1 --out "$cmp"
row 2 "it differs in seeds" "$hdqsim" compare "${S[@]}" --methods naive --presets golden --seeds 2 --out "$cmp"
row 2 "$cmp is not empty and holds no sweep.json: not the folder of a sweep" "$hdqsim" merge "$sw" --out "$cmp"
row 2 "$sw is not empty and holds no compare.json: not the folder of a compare" \
  "$hdqsim" compare "${S[@]}" --methods naive --presets golden --seeds 1 --out "$sw"
row 2 "$work is not empty and holds no sweep.json" "$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=4,8 --out "$work"
mkdir "$work/other"
"$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=4,6 --out "$work/other" >/dev/null 2>&1
row 2 "$work/other holds the results of a different sweep" "$hdqsim" merge "$sw" --out "$work/other"

# A folder in use by another run (here this shell, holding its lock through
# flock(1) on descriptor 9) is refused at once.
exec 9>"$sw/.lock"
flock -n 9
row 1 "$sw is in use by another hdqsim run" "$hdqsim" sweep "${S[@]}" --set gemm.fwd.acc_bits=4,8 --out "$sw"
row 1 "$sw is in use by another hdqsim run" "$hdqsim" merge "$sw" --out "$sw"
exec 9>"$cmp/.lock"  # closing the first descriptor releases that lock
flock -n 9
row 1 "$cmp is in use by another hdqsim run" "$hdqsim" compare "${S[@]}" --methods naive --presets golden --seeds 1 --out "$cmp"
exec 9>&-

echo "bad outputs: $rows rows refused at once with the expected status and message, nothing written"
