#!/usr/bin/env bash
# Interrupting a sweep or a compare (SIGKILL or SIGINT while a cell runs) and
# rerunning it loses no finished cell, rewrites none of them, recomputes only
# the unfinished ones and leaves no temporary file behind.
# Usage: tests/interrupt_resume.sh HDQSIM_BINARY sweep|compare KILL|INT
set -euo pipefail
hdqsim="$(realpath "$1")"
command="$2"
signal="$3"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL ($command, SIG$signal): $*"; for f in "$work"/log*; do echo "== $f"; cat "$f"; done; exit 1; }
# Four cells of about a second each, one at a time, so the signal lands inside one.
slow=(--scenario scenarios/synthetic-tiny.yaml --set data.synthetic.train_per_class=1500 --set epochs=2)
case "$command" in
  sweep) args=(sweep "${slow[@]}" --set gemm.fwd.acc_bits=4,6,8,12 -j 1 --out "$work/o"); cells="$work/o/points" ;;
  compare) args=(compare "${slow[@]}" --methods naive,er --presets golden,paper --seeds 1 -j 1 --out "$work/o")
           cells="$work/o/cells" ;;
  *) echo "usage: $0 HDQSIM sweep|compare KILL|INT"; exit 2 ;;
esac
count() { find "$cells" -name '*.json' 2>/dev/null | wc -l; }
stamp() { echo "$(basename "$1") $(stat -c %Y.%y "$1") $(sha1sum <"$1")"; }

# Job control gives the run its own process group; without it a script starts
# background commands with SIGINT ignored.
set -m
"$hdqsim" "${args[@]}" >"$work/log1" 2>&1 &
pid=$!
set +m
for _ in $(seq 600); do [ "$(count)" -ge 1 ] && break; sleep 0.05; done
[ "$(count)" -ge 1 ] || fail "the first cell never finished"
kill -"$signal" "$pid"
status=0
wait "$pid" 2>/dev/null || status=$?
[ "$status" -ne 0 ] || fail "the run finished before it could be interrupted"
done_before=$(count)
[ "$done_before" -lt 4 ] || fail "all cells finished before the signal"
for f in "$cells"/*.json; do python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$f" || fail "$f is partial"; done
for f in "$cells"/*.json; do stamp "$f"; done >"$work/stamps"

"$hdqsim" "${args[@]}" >"$work/log2" 2>&1 || fail "the rerun exited non-zero"
grep -q "$done_before already done, $((4 - done_before)) to run" "$work/log2" ||
  fail "the rerun did not skip exactly the finished cells"
while read -r name _; do stamp "$cells/$name"; done <"$work/stamps" | cmp -s - "$work/stamps" ||
  fail "a finished cell was rewritten"
[ "$(count)" -eq 4 ] || fail "cells missing after the rerun"
[ -z "$(find "$work/o" -name '*.tmp.*')" ] || fail "temporary files left: $(find "$work/o" -name '*.tmp.*')"
echo "$command resume after SIG$signal: interrupted after $done_before finished cell(s); rerun kept them and ran $((4 - done_before))"
