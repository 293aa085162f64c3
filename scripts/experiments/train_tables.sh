#!/usr/bin/env bash
# Reproduces the training issue's acceptance tables on the default scenario:
# golden vs paper vs npu over 3 seeds, and an accumulator-width sweep
# (forward and backward W in {4, 6, 8, 12, 16}) with the paper preset.
# Usage: scripts/experiments/train_tables.sh [out-folder]   (about 15-20 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-out/train-tables}"
scenario=scenarios/fmnist-5x2-er.yaml
hdqsim=build/hdqsim
threads="${THREADS:-2}"

for seed in 1 2 3; do
  [ -f "$out/paper-s$seed/metrics.json" ] || $hdqsim train --scenario $scenario --threads "$threads" --set seed=$seed --out "$out/paper-s$seed"
  [ -f "$out/npu-s$seed/metrics.json" ] || $hdqsim train --scenario $scenario --threads "$threads" --set seed=$seed --set preset=npu --no-golden --out "$out/npu-s$seed"
done
for w in 4 6 12 16; do
  [ -f "$out/paper-w$w/metrics.json" ] || $hdqsim train --scenario $scenario --threads "$threads" --no-golden \
    --set gemm.fwd.acc_bits=$w --set gemm.bwd.acc_bits=$w --out "$out/paper-w$w"
done
python3 scripts/experiments/tabulate.py "$out"
