#!/usr/bin/env bash
# Renders a sweep report in headless Chromium, checks in the rendered DOM that
# the plots are drawn (non-empty SVG paths) with axis labels, and saves a
# screenshot. Usage: scripts/check_report.sh REPORT.html OUT.png
set -euo pipefail
report="$(realpath "$1")"
png="$(realpath -m "$2")"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$profile" --window-size=1250,1100)
dom="$(chromium "${flags[@]}" --dump-dom "file://$report" 2>/dev/null)"
paths=$(grep -o '<path class="series" d="M[0-9.]* [0-9.]* L' <<<"$dom" | wc -l)
xlabels=$(grep -o 'class="xlabel"[^>]*>[^<]' <<<"$dom" | wc -l)
ylabels=$(grep -o 'class="ylabel"[^>]*>[^<]' <<<"$dom" | wc -l)
plots=$(grep -o '<svg ' <<<"$dom" | wc -l)
[ "$plots" -ge 2 ] && [ "$paths" -ge "$plots" ] && [ "$xlabels" -eq "$plots" ] && [ "$ylabels" -eq "$plots" ] ||
  { echo "FAIL: $plots plots, $paths drawn series, $xlabels x labels, $ylabels y labels in the rendered page"; exit 1; }
chromium "${flags[@]}" --screenshot="$png" "file://$report" >/dev/null 2>&1
[ "$(stat -c %s "$png")" -gt 20000 ] || { echo "FAIL: screenshot $png is nearly empty"; exit 1; }
echo "report renders: $plots plots, $paths drawn series, axis labels present; screenshot $png"
