#!/usr/bin/env python3
"""Wall time of `hdqsim train --engine npu` over `--engine functional` (issue 13, item 7).

    python3 scripts/bench_npu_vs_functional.py [--hdqsim build/hdqsim]
        [--scenario scenarios/fmnist-5x2-er.yaml] [--rounds 5] [--set epochs=1 ...] [--threads 1]

Each round runs both engines on the same scenario, one after the other, and
alternates which goes first (functional first in odd rounds, the NPU first in
even ones), so drift in the machine's load hits both alike. Every run is
`hdqsim train --no-golden` in a fresh output folder with the same --set
overrides and --threads (the functional engine's GEMM threads; the NPU model
runs its commands on one simulation thread).

Per run it records the training run's wall time as the program measures it
(metrics.json `wall_s`: the class-incremental run, data loading excluded),
the whole process's wall time and its CPU time (user + system, from the
kernel's accounting of the child), which a loaded machine disturbs less. The
table gives each engine's median over the rounds and the ratios NPU /
functional of the medians; the NPU's final-weights signature must equal the
functional engine's (same bits), else the exit status is 1. The last line
is one JSON object.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def run(hdqsim, scenario, engine, overrides, threads, out):
    cmd = [hdqsim, "train", "--scenario", scenario, "--engine", engine, "--no-golden", "--threads", str(threads),
           "--out", out]
    for o in overrides:
        cmd += ["--set", o]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    return {"train_wall_s": m["wall_s"], "process_wall_s": wall, "process_cpu_s": cpu, "signature": m["signature"],
            "steps": m["steps"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hdqsim", default="build/hdqsim")
    ap.add_argument("--scenario", default="scenarios/fmnist-5x2-er.yaml")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--set", dest="overrides", action="append", default=None,
                    help="scenario override key=value (default: epochs=1)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    overrides = a.overrides if a.overrides is not None else ["epochs=1"]
    if not os.access(a.hdqsim, os.X_OK):
        sys.exit(f"no {a.hdqsim}: build it first (cmake --build build --target hdqsim)")

    runs = {"functional": [], "npu": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            order = ["functional", "npu"] if r % 2 == 0 else ["npu", "functional"]
            for engine in order:
                res = run(a.hdqsim, a.scenario, engine, overrides, a.threads, os.path.join(tmp, f"{engine}{r}"))
                runs[engine].append(res)
                print(f"round {r + 1}/{a.rounds} {engine:<10} train {res['train_wall_s']:7.2f} s, process "
                      f"{res['process_wall_s']:7.2f} s wall, {res['process_cpu_s']:7.2f} s CPU", file=sys.stderr)

    keys = ["train_wall_s", "process_wall_s", "process_cpu_s"]
    med = {e: {k: statistics.median(x[k] for x in runs[e]) for k in keys} for e in runs}
    ratio = {k: med["npu"][k] / med["functional"][k] for k in keys}
    signatures = {e: sorted({x["signature"] for x in runs[e]}) for e in runs}
    same_bits = signatures["npu"] == signatures["functional"] and len(signatures["npu"]) == 1
    print(f"scenario {a.scenario} (--set {' '.join(overrides) or '-'}), {a.rounds} rounds, "
          f"{runs['npu'][0]['steps']} training steps, threads {a.threads}")
    print(f"{'median':<16} {'functional':>11} {'npu':>11} {'npu/functional':>15}")
    for k in keys:
        print(f"{k:<16} {med['functional'][k]:11.2f} {med['npu'][k]:11.2f} {ratio[k]:15.3f}")
    print(f"signatures: functional {signatures['functional']}, npu {signatures['npu']}: "
          f"{'same bits' if same_bits else 'DIFFERENT'}")
    print(json.dumps({"scenario": a.scenario, "overrides": overrides, "rounds": a.rounds, "threads": a.threads,
                      "medians": med, "ratio_npu_over_functional": ratio, "same_bits": same_bits}))
    return 0 if same_bits else 1


if __name__ == "__main__":
    sys.exit(main())
