#!/usr/bin/env bash
# `hdqsim compare` on a 2 x 2 x 2 grid (naive, er x golden, paper x 2 seeds):
# the table has one row per method and the documented columns; a rerun reuses
# every cell; deleting one cell recomputes only that one and gives the same
# table byte for byte; a comment in the scenario does not invalidate cells, an
# edited scenario or another grid in the folder is refused; bad flags fail
# naming the flag and write nothing.
# Usage: tests/compare_resume.sh HDQSIM_BINARY
set -euo pipefail
hdqsim="$(realpath "$1")"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; for f in "$work"/log*; do echo "== $f"; cat "$f"; done; exit 1; }
c="$work/c"
grid=(--scenario scenarios/synthetic-tiny.yaml --methods naive,er --presets golden,paper --seeds 2 --out "$c")
cells() { ls "$c/cells" | grep -c '\.json$'; }
stamps() { for f in "$c"/cells/*.json; do stat -c '%n %Y.%y' "$f"; done; }

# 1. The whole grid: 8 cells, each started and finished once.
"$hdqsim" compare "${grid[@]}" -j 2 >"$work/out1" 2>"$work/log1" || fail "first run exited non-zero"
[ "$(cells)" -eq 8 ] || fail "expected 8 cell files, got $(cells)"
[ "$(grep -c '\[compare\] finished ' "$work/log1")" -eq 8 ] || fail "expected 8 finished cells"
grep -q '0 already done, 8 to run' "$work/log1" || fail "first run did not plan 8 cells"

# 2. The table: rows naive, er; per preset 3 metrics (mean, std), n; gap for paper.
head -1 "$c/compare.csv" | grep -qx 'method,golden.final_avg_accuracy.mean,golden.final_avg_accuracy.std,golden.avg_incremental_accuracy.mean,golden.avg_incremental_accuracy.std,golden.forgetting.mean,golden.forgetting.std,golden.n,paper.final_avg_accuracy.mean,paper.final_avg_accuracy.std,paper.avg_incremental_accuracy.mean,paper.avg_incremental_accuracy.std,paper.forgetting.mean,paper.forgetting.std,paper.n,paper.gap_vs_golden' ||
  fail "CSV header: $(head -1 "$c/compare.csv")"
[ "$(tail -n +2 "$c/compare.csv" | cut -d, -f1 | tr '\n' ' ')" = "naive er " ] || fail "CSV rows are not naive, er"
# 16 fields per row, none empty (2 seeds: every std is defined), n = 2 for both presets.
awk -F, 'NR > 1 { if (NF != 16) exit 1; for (i = 1; i <= NF; ++i) if ($i == "") exit 1; if ($8 != 2 || $15 != 2) exit 1 }' \
  "$c/compare.csv" || fail "CSV rows: $(cat "$c/compare.csv")"
grep -qx '| method | golden final avg acc | golden avg incr acc | golden forgetting | paper final avg acc | paper avg incr acc | paper forgetting | paper gap vs golden |' \
  "$c/compare.md" || fail "Markdown header"
[ "$(grep -c '^| naive | .* ± .* | [+-][0-9.]* |$' "$c/compare.md")" -eq 1 ] || fail "Markdown row naive"
[ "$(grep -c '^| er | .* ± .* | [+-][0-9.]* |$' "$c/compare.md")" -eq 1 ] || fail "Markdown row er"
cmp -s <(sed -n '/^| method/,$p' "$work/out1" | head -4) <(sed -n '/^| method/,$p' "$c/compare.md") ||
  fail "the table printed differs from compare.md"
cp "$c/compare.md" "$work/md1"; cp "$c/compare.csv" "$work/csv1"
stamps >"$work/stamps1"

# 3. A rerun reuses all 8 cells: nothing started, no cell file rewritten, same table.
sleep 1.1  # a rewrite would show in the mtimes
"$hdqsim" compare "${grid[@]}" >"$work/out2" 2>"$work/log2" || fail "second run exited non-zero"
grep -q '8 already done, 0 to run' "$work/log2" || fail "rerun did not skip all cells"
[ "$(grep -c '\[compare\] skipped ' "$work/log2")" -eq 8 ] || fail "rerun: expected 8 skipped lines"
! grep -q '\[compare\] started' "$work/log2" || fail "rerun recomputed a cell"
cmp -s <(stamps) "$work/stamps1" || fail "rerun rewrote a cell file"
cmp -s "$c/compare.md" "$work/md1" && cmp -s "$c/compare.csv" "$work/csv1" || fail "rerun changed the table"

# 4. Delete one cell: only it is recomputed (here with -j 1, so more threads per
#    cell: the bits do not depend on it) and the table is byte-identical.
victim=$(ls "$c"/cells/er-paper-s2-*.json)
rm "$victim"
"$hdqsim" compare "${grid[@]}" -j 1 >"$work/out3" 2>"$work/log3" || fail "third run exited non-zero"
grep -q '7 already done, 1 to run' "$work/log3" || fail "expected exactly one cell to run"
[ "$(grep -c '\[compare\] started' "$work/log3")" -eq 1 ] && grep -q 'started  er/paper/seed 2 ' "$work/log3" ||
  fail "recomputed something other than er/paper/seed 2"
[ -f "$victim" ] || fail "the deleted cell was not written again"
cmp -s <(stamps | grep -v "$(basename "$victim")") <(grep -v "$(basename "$victim")" "$work/stamps1") ||
  fail "a kept cell was rewritten"
cmp "$c/compare.md" "$work/md1" && cmp "$c/compare.csv" "$work/csv1" || fail "table differs after recomputing one cell"

# 5. The folder's identity (compare.json: scenario hash, methods, presets, seeds)
#    follows the effective scenario: a comment and a new name keep it, so every
#    cell is reused; a changed training field (--set) or another list of
#    methods is a different grid, refused before anything is replaced.
{ echo "# a comment"; sed 's/^name: .*/name: renamed/' scenarios/synthetic-tiny.yaml; } >"$work/edited.yaml"
"$hdqsim" compare --scenario "$work/edited.yaml" --methods naive,er --presets golden,paper --seeds 2 --out "$c" \
  >/dev/null 2>"$work/log4" || fail "edited-scenario run exited non-zero"
grep -q '8 already done, 0 to run' "$work/log4" || fail "a comment or name change invalidated a cell"
cp "$c/compare.md" "$work/md4"; stamps >"$work/stamps4"
other() {  # other FIELD-IN-MESSAGE ARGS...: refused with status 2, nothing in the folder replaced
  local want="$1"; shift
  local status=0
  "$hdqsim" compare "$@" --out "$c" >/dev/null 2>"$work/log5" || status=$?
  [ "$status" -eq 2 ] || fail "a different grid ($*) exited $status, not 2"
  grep -q "holds the results of a different compare .*differs in .*$want" "$work/log5" || fail "message for $*"
  cmp -s "$c/compare.md" "$work/md4" && cmp -s <(stamps) "$work/stamps4" || fail "a different grid ($*) replaced files"
}
other scenario_hash --scenario scenarios/synthetic-tiny.yaml --set epochs=1 --methods naive,er --presets golden,paper --seeds 2
other methods --scenario scenarios/synthetic-tiny.yaml --methods naive --presets golden,paper --seeds 2

# 6. Bad input fails with a message naming the flag and writes nothing.
bad() {  # bad FLAG-IN-MESSAGE ARGS...
  local want="$1"; shift
  if "$hdqsim" compare "$@" --out "$work/bad" >"$work/log_bad" 2>&1; then fail "accepted: $*"; fi
  grep -qF -- "$want" "$work/log_bad" || fail "message for '$*' does not name $want: $(cat "$work/log_bad")"
  [ ! -e "$work/bad" ] || fail "'$*' wrote $work/bad"
}
s=(--scenario scenarios/synthetic-tiny.yaml)
bad --methods "${s[@]}" --methods naive,bogus --presets golden
bad --presets "${s[@]}" --methods naive --presets golden,bogus
bad --seeds "${s[@]}" --methods naive --presets golden --seeds 0
bad --scenario --scenario "$work/missing.yaml" --methods naive --presets golden
bad "--set preset" "${s[@]}" --methods naive --presets golden --set preset=npu
bad "--set epochs" "${s[@]}" --methods naive --presets golden --set epochs=0
bad --methods "${s[@]}" --methods naive,naive --presets golden

# 7. Extension point: a metric a method reports in extra_metrics gets its own columns.
python3 - "$c"/cells/naive-golden-s1-*.json <<'EOF'
import json, sys
cell = json.load(open(sys.argv[1]))
cell["metrics"]["extra_metrics"]["nme_accuracy"] = 50.0
json.dump(cell, open(sys.argv[1], "w"), indent=2)
EOF
"$hdqsim" compare "${grid[@]}" >/dev/null 2>"$work/log6" || fail "extra-metric run exited non-zero"
head -1 "$c/compare.csv" | grep -q ',golden.nme_accuracy.mean,golden.nme_accuracy.std,golden.n,' ||
  fail "no column for an extra metric: $(head -1 "$c/compare.csv")"
grep -q '| golden nme_accuracy |' "$c/compare.md" && grep -q '^| naive | .* | 50.00 (n=1) |' "$c/compare.md" ||
  fail "Markdown lacks the extra metric"

echo "compare resume: 8 cells; rerun skipped all; one deleted cell recomputed, table identical; bad flags rejected"
