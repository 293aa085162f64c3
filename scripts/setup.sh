#!/usr/bin/env bash
# Installs the Debian packages hdqsim needs (idempotent, non-interactive) and
# builds the Release tree in build/. Usage: scripts/setup.sh [--no-build] [--peer]
# --peer also installs python3-torch (about 1 GB), the PyTorch peer of
# scripts/bench_train_vs_pytorch.sh (bench/pytorch_peer.py); tests do not need it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1 peer=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --peer) peer=1 ;;
    *) echo "usage: $0 [--no-build] [--peer]" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libsystemc-dev            # SystemC 2.3.4 + TLM-2.0 (NPU model, sc_fixed oracle)
  libboost-dev              # Boost.Multiprecision (exact oracles in properties/)
  librapidcheck-dev         # property-based tests
  libgtest-dev libgmock-dev # unit tests
  libbenchmark-dev          # micro-benchmarks
  libfmt-dev                # formatting
  nlohmann-json3-dev        # JSON for case.json / metrics.json / bench output
  libcli11-dev              # command-line parsing for the hdqsim CLI
  libyaml-cpp-dev           # scenario files
  parallel                  # GNU parallel: sharded sweeps (tests, README example)
  chromium                  # headless rendering check of the sweep report
  zlib1g-dev                # gzip IDX files
  clang libfuzzer-14-dev    # fuzzing the input readers (scripts/fuzz.sh, fuzz/)
  dataset-fashion-mnist     # real data for training runs
  verilator                 # RTL co-simulation: rtl/ vector testbench (Verilator 5.006)
  yosys                     # RTL area: scripts/synth_area.sh (Yosys 0.23)
)
((peer)) && packages+=(python3-torch)  # PyTorch 1.13 for /usr/bin/python3: bench/pytorch_peer.py

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

((build)) || exit 0
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
