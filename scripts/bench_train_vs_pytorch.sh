#!/usr/bin/env bash
# ms per HDQT training step: hdqsim's functional engine (`hdqsim bench train`)
# against the PyTorch emulation the paper's authors use (bench/pytorch_peer.py),
# MLP 784-256-256-10 on Fashion-MNIST batches of 128 and 256 (= 128 + 128
# replayed after the first task), on 1 and 2 threads. --network cnn-small times
# the cnn-small preset instead (scenarios/fmnist-5x2-cnn-er.yaml: the `paper`
# preset's per-sample convolution) against the peer's --network cnn-small, batch
# 128 by default (--batches "128 256" for both).
#
#   bash scripts/bench_train_vs_pytorch.sh [--hdqsim build/hdqsim] [--steps 50] [--rounds 3]
#        [--network mlp|cnn-small] [--batches "128 256"] [--dense-hadamard]
#
# --dense-hadamard passes the peer's option of that name: its convolutions
# multiply by whole block-diagonal P x P Hadamard matrices (the authors'
# make_hadamard way) instead of block by block.
#
# Both sides are timed in each round, one after the other; the table gives the
# median over rounds of each side's median ms/step and ratio = ours / PyTorch
# (below 1: hdqsim is faster). The last line is one JSON object.
#
# PyTorch is Debian's python3-torch (apt-get install -y python3-torch), run with
# /usr/bin/python3. Debian builds it against the generic BLAS interface, so its
# matmuls run in whatever libblas.so.3 is installed (netlib's reference BLAS by
# default, about 15x slower than OpenBLAS here). To compare against a strong
# peer, PEER_BLAS=openblas (the default) runs it with Debian's OpenBLAS
# (libopenblas0-pthread), unpacked into a cache folder with `apt-get download`
# and put first on the peer's LD_LIBRARY_PATH: nothing on the system changes.
# PEER_BLAS=system keeps the installed libblas.so.3.
set -euo pipefail
cd "$(dirname "$0")/.."

HDQSIM=build/hdqsim
STEPS=50
ROUNDS=3
NETWORK=mlp
BATCHES=
PEER_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --hdqsim) HDQSIM=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --network) NETWORK=$2; shift 2 ;;
    --batches) BATCHES=$2; shift 2 ;;
    --dense-hadamard) PEER_ARGS+=(--dense-hadamard); shift ;;
    *) echo "usage: $0 [--hdqsim PATH] [--steps N] [--rounds R] [--network mlp|cnn-small] [--batches \"B1 B2\"] [--dense-hadamard]" >&2; exit 2 ;;
  esac
done
case "$NETWORK" in
  mlp) SCENARIO=(); BATCHES=${BATCHES:-128 256} ;;
  cnn-small) SCENARIO=(--scenario scenarios/fmnist-5x2-cnn-er.yaml); BATCHES=${BATCHES:-128} ;;
  *) echo "--network: mlp or cnn-small, not $NETWORK" >&2; exit 2 ;;
esac
PY=/usr/bin/python3
PEER_BLAS=${PEER_BLAS:-openblas}
[ -x "$HDQSIM" ] || { echo "no $HDQSIM: build it first (bash scripts/setup.sh)" >&2; exit 2; }
"$PY" -c "import torch" 2>/dev/null || { echo "PyTorch missing: bash scripts/setup.sh --peer (apt-get install -y python3-torch)" >&2; exit 2; }

PEER_LD=${LD_LIBRARY_PATH:-}
if [ "$PEER_BLAS" = openblas ]; then
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/hdqsim/openblas
  lib=$cache/usr/lib/x86_64-linux-gnu/openblas-pthread
  if [ ! -e "$lib/libblas.so.3" ]; then
    tmp=$(mktemp -d)
    chmod 755 "$tmp"  # apt-get download runs as _apt when it can
    if (cd "$tmp" && apt-get download libopenblas0-pthread >/dev/null 2>&1) && mkdir -p "$cache" &&
       dpkg -x "$tmp"/libopenblas0-pthread_*.deb "$cache"; then
      echo "OpenBLAS for the peer unpacked into $cache" >&2
    else
      echo "warning: could not fetch libopenblas0-pthread; the peer runs on the system BLAS" >&2
    fi
    rm -rf "$tmp"
  fi
  [ -e "$lib/libblas.so.3" ] && PEER_LD=$lib${PEER_LD:+:$PEER_LD}
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "load before the runs: $(uptime)" >&2
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  for threads in 1 2; do
    for batch in $BATCHES; do
      "$HDQSIM" bench train "${SCENARIO[@]}" --steps "$STEPS" --threads "$threads" --batch "$batch" | tail -n 1 >> "$out/ours.jsonl"
    done
  done
  LD_LIBRARY_PATH=$PEER_LD "$PY" bench/pytorch_peer.py --network "$NETWORK" "${PEER_ARGS[@]}" --steps "$STEPS" --threads 1,2 \
    --batch "$(echo $BATCHES | tr ' ' ,)" | tail -n 1 >> "$out/peer.jsonl"
done
echo "load after the runs: $(uptime)" >&2

"$PY" - "$out/ours.jsonl" "$out/peer.jsonl" <<'EOF'
import json, statistics, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
peer = [json.loads(l) for l in open(sys.argv[2])]
rows = []
print(f"HDQT training step ({ours[0]['preset']} preset), {ours[0]['network']}, {ours[0]['data']} batches; "
      f"medians over {len(peer)} rounds of {ours[0]['steps']} steps")
print(f"peer: PyTorch {peer[0]['torch']} on {peer[0]['blas']}, OMP_WAIT_POLICY={peer[0]['omp_wait_policy']}"
      f"{', dense Hadamard matrices' if peer[0].get('dense_hadamard') else ''}")
print(f"{'threads':>7} {'batch':>5} {'hdqsim ms':>10} {'pytorch ms':>11} {'ratio':>6} {'speedup':>8}")
for threads in (1, 2):
    for batch in sorted({j["batch"] for j in ours}):
        # One value per round, in round order on both sides.
        os_ = [j["hdqsim_ms_per_step"] for j in ours if j["threads"] == threads and j["batch"] == batch]
        ps = [r["pytorch_ms_per_step"] for j in peer for r in j["results"] if r["threads"] == threads and r["batch"] == batch]
        o, p = statistics.median(os_), statistics.median(ps)
        per_round = [a / b for a, b in zip(os_, ps)]
        rows.append({"threads": threads, "batch": batch, "hdqsim_ms_per_step": o, "pytorch_ms_per_step": p,
                     "ratio_hdqsim_over_pytorch": o / p, "ratio_per_round": per_round})
        print(f"{threads:>7} {batch:>5} {o:>10.3f} {p:>11.3f} {o / p:>6.3f} {p / o:>7.2f}x"
              f"   (per round: {min(per_round):.3f} .. {max(per_round):.3f})")
print(json.dumps({"network": ours[0]["network"], "preset": ours[0]["preset"], "peer_blas": peer[0]["blas"],
                  "peer_dense_hadamard": peer[0].get("dense_hadamard", False), "torch": peer[0]["torch"], "rounds": len(peer),
                  "steps": ours[0]["steps"], "results": rows}))
EOF
