#!/usr/bin/env bash
# The report of an accumulator sweep renders in headless Chromium with its plots drawn.
# Usage: tests/report_renders.sh HDQSIM_BINARY
set -euo pipefail
hdqsim="$(realpath "$1")"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$hdqsim" sweep --scenario scenarios/synthetic-tiny.yaml --set gemm.fwd.acc_bits=4,6,8,12,16 --set gemm.fwd.tile=8,32 \
  --out "$work/s" >/dev/null 2>&1
bash scripts/check_report.sh "$work/s/report.html" "$work/report.png"
