#!/usr/bin/env bash
# The cost of a ResNet-32 training step (issue 14 item 6): `hdqsim estimate`
# on scenarios/resnet32-cost.yaml (3 x 32 x 32, batch 128, 100 classes).
# The default NPU (512 KiB SRAM, 256 MiB DRAM) does not hold this step yet
# (docs/npu.md "Layer graphs", limits): the estimate is a ConfigError naming
# sram.size_bytes (the dW Hadamard transform along N*P), before anything
# runs. With 8 MiB of SRAM and the default 256 MiB of DRAM (the step reuses
# DRAM within the job: 237 MB) it runs (about 30 s) and estimate.json reports
# cycles and energy per step and a layer x phase row for each of the 63
# parameter layers (31 conv, 31 BatchNorm, the linear).
# Usage: tests/resnet32_cost.sh HDQSIM_BINARY
set -euo pipefail
hdqsim="$(realpath "$1")"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if "$hdqsim" estimate --scenario scenarios/resnet32-cost.yaml --steps 1 >"$work/default.log" 2>&1; then
  echo "FAIL: the default NPU ran a step it cannot hold"; exit 1
fi
grep -q "sram.size_bytes = 524288 is too small for layer" "$work/default.log" || { cat "$work/default.log"; exit 1; }
"$hdqsim" estimate --scenario scenarios/resnet32-cost.yaml --steps 1 --set npu.sram.size_bytes=8388608 \
  --out "$work/out" >"$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
python3 - "$work/out/estimate.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["network"] == "resnet32" and j["batch"] == 128, (j["network"], j["batch"])
assert j["cycles_per_step"] > 0 and j["energy_pj_per_step"] > 0
rows = {(r["layer"], r["phase"]) for r in j["breakdown"]}
# Every parameter layer has a forward row, every conv and BatchNorm one (0..61) a backward row, the linear (62) too.
assert all((l, "forward") in rows for l in range(63)), "a layer without a forward row"
assert all((l, "backward_dw") in rows or (l, "backward_dx") in rows for l in range(63)), "a layer without a backward row"
print(f"resnet32 cost: {j['cycles_per_step']:.0f} cycles, {j['energy_uj_per_step']:.0f} uJ per step")
PY
