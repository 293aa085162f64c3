#!/usr/bin/env bash
# A 20-point sweep run in 3 shards through GNU parallel and merged must equal
# the same sweep run unsharded (summaries byte for byte, point results equal
# but for wall time). Usage: tests/sweep_shards.sh HDQSIM_BINARY
set -euo pipefail
hdqsim="$(realpath "$1")"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
grid=(--scenario scenarios/synthetic-tiny.yaml --set gemm.fwd.acc_bits=4,6,8,12,16 --set gemm.fwd.tile=8,16,32,64)

"$hdqsim" sweep "${grid[@]}" --out "$work/whole" >/dev/null 2>&1
parallel --halt now,fail=1 "$hdqsim" sweep "${grid[@]}" --shard {}/3 --out "$work/shard{}" '>/dev/null 2>&1' ::: 0 1 2
# Each shard holds only its own points: 7 + 7 + 6.
[ "$(ls "$work/shard0/points" | wc -l)" -eq 7 ] && [ "$(ls "$work/shard2/points" | wc -l)" -eq 6 ]
"$hdqsim" merge "$work/shard0" "$work/shard1" "$work/shard2" --out "$work/merged" >/dev/null

for f in sweep.csv summary.json sweep.json; do
  cmp "$work/whole/$f" "$work/merged/$f" || { echo "FAIL: $f differs between unsharded and merged"; exit 1; }
done
for p in "$work"/whole/points/*.json; do
  diff <(grep -v wall_s "$p") <(grep -v wall_s "$work/merged/points/$(basename "$p")") >/dev/null ||
    { echo "FAIL: $(basename "$p") differs"; exit 1; }
done
# An incomplete merge says so with a non-zero exit.
if "$hdqsim" merge "$work/shard0" --out "$work/partial" >/dev/null; then echo "FAIL: partial merge exited 0"; exit 1; fi
echo "sweep shards: 20 points, 3 shards via GNU parallel, merged == unsharded"
