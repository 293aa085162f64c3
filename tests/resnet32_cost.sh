#!/usr/bin/env bash
# The cost of a ResNet-32 training step (issue 14 item 6): `hdqsim estimate`
# on scenarios/resnet32-cost.yaml (3 x 32 x 32, batch 128, 100 classes) on
# the default NPU (512 KiB SRAM, 256 MiB DRAM): the dW Hadamard transforms
# stream along the positions, the dW GEMMs (K = N*P = 131072) run in
# K-chunks, col2im runs by channel groups and DRAM ranges are reused within
# the step (docs/npu.md "Layer graphs"). estimate.json must report cycles and
# energy per step and a layer x phase row for each of the 63 parameter
# layers (31 conv, 31 BatchNorm, the linear). About 12 s.
# Usage: tests/resnet32_cost.sh HDQSIM_BINARY
set -euo pipefail
hdqsim="$(realpath "$1")"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$hdqsim" estimate --scenario scenarios/resnet32-cost.yaml --steps 1 --out "$work/out" >"$work/run.log" 2>&1 ||
  { cat "$work/run.log"; exit 1; }
python3 - "$work/out/estimate.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["network"] == "resnet32" and j["batch"] == 128, (j["network"], j["batch"])
# The default NPU: nothing overridden.
assert j["npu_name"] == "edge-npu" and not j["overrides"], (j["npu_name"], j["overrides"])
assert j["npu_config"] == "sim/configs/edge-npu.yaml (built in)", j["npu_config"]
assert j["cycles_per_step"] > 0 and j["energy_pj_per_step"] > 0
rows = {(r["layer"], r["phase"]) for r in j["breakdown"]}
# Every parameter layer has a forward row, every conv and BatchNorm one (0..61) a backward row, the linear (62) too.
assert all((l, "forward") in rows for l in range(63)), "a layer without a forward row"
assert all((l, "backward_dw") in rows or (l, "backward_dx") in rows for l in range(63)), "a layer without a backward row"
print(f"resnet32 cost: {j['cycles_per_step']:.0f} cycles, {j['energy_uj_per_step']:.0f} uJ per step")
PY
