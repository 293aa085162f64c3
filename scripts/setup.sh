#!/usr/bin/env bash
# Installs the Debian packages hdqsim needs (idempotent, non-interactive) and
# builds the Release tree in build/. Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

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

[ "${1:-}" = "--no-build" ] && exit 0
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
