#!/usr/bin/env bash
# Interrupting a sweep (SIGKILL during a point) and rerunning it loses no
# finished point and recomputes only the unfinished ones.
# Usage: tests/sweep_resume.sh HDQSIM_BINARY
set -euo pipefail
hdqsim="$(realpath "$1")"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Points of about a second each, so the kill lands inside a point.
grid=(--scenario scenarios/synthetic-tiny.yaml --set data.synthetic.train_per_class=1500 --set epochs=2
      --set gemm.fwd.acc_bits=4,6,8,12)

"$hdqsim" sweep "${grid[@]}" --out "$work/s" >"$work/log1" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -f "$work/s/points/p0000.json" ] && break; sleep 0.05; done
[ -f "$work/s/points/p0000.json" ] || { echo "FAIL: first point never finished"; exit 1; }
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
done_before=$(ls "$work/s/points/" | grep -c '\.json$')
[ "$done_before" -lt 4 ] || { echo "FAIL: the sweep finished before it could be interrupted"; exit 1; }
stamp=$(stat -c %Y.%s "$work/s/points/p0000.json"; sha1sum < "$work/s/points/p0000.json")

"$hdqsim" sweep "${grid[@]}" --out "$work/s" >"$work/log2" 2>&1
grep -q "$done_before already done, $((4 - done_before)) to run" "$work/log2" ||
  { echo "FAIL: rerun did not skip exactly the finished points"; cat "$work/log2"; exit 1; }
[ "$(stat -c %Y.%s "$work/s/points/p0000.json"; sha1sum < "$work/s/points/p0000.json")" = "$stamp" ] ||
  { echo "FAIL: a finished point was rewritten"; exit 1; }
[ "$(ls "$work/s/points/" | grep -c '\.json$')" -eq 4 ] || { echo "FAIL: points missing after the rerun"; exit 1; }
echo "sweep resume: killed after $done_before finished point(s); rerun kept them and ran $((4 - done_before))"
