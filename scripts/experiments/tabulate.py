"""Prints the Markdown tables of scripts/experiments/train_tables.sh from the
metrics.json files it wrote (standard library only)."""
import json
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/train-tables")


def load(name):
    return json.loads((out / name / "metrics.json").read_text())


def overall_rate(m):
    """Inner events per opportunity over every layer and GEMM role, and outer overflows."""
    events = opportunities = outer = 0
    for roles in m["overflow"].values():
        for s in roles.values():
            events += s["inner_events"]
            opportunities += s["inner_events"] / s["inner_event_rate"] if s["inner_event_rate"] else 0
            outer += s["outer_overflows"]
    return (events / opportunities if opportunities else 0.0), outer


print("| seed | golden | paper | npu | paper - golden | npu - golden | npu - paper |")
print("|---|---|---|---|---|---|---|")
rows = []
for seed in (1, 2, 3):
    p, n = load(f"paper-s{seed}"), load(f"npu-s{seed}")
    g = p["golden"]["final_avg_accuracy"]
    row = (g, p["final_avg_accuracy"], n["final_avg_accuracy"])
    rows.append(row)
    print(f"| {seed} | {row[0]:.2f} | {row[1]:.2f} | {row[2]:.2f} | {row[1]-row[0]:+.2f} | {row[2]-row[0]:+.2f} | {row[2]-row[1]:+.2f} |")
mean = [statistics.mean(c) for c in zip(*rows)]
std = [statistics.stdev(c) for c in zip(*rows)]
print(f"| mean ± std | {mean[0]:.2f} ± {std[0]:.2f} | {mean[1]:.2f} ± {std[1]:.2f} | {mean[2]:.2f} ± {std[2]:.2f} "
      f"| {mean[1]-mean[0]:+.2f} | {mean[2]-mean[0]:+.2f} | {mean[2]-mean[1]:+.2f} |")

print()
print("| W (fwd and bwd) | final avg accuracy | inner overflow rate | outer overflows | max abs tile sum (fwd, layer 0) |")
print("|---|---|---|---|---|")
for w in (4, 6, 8, 12, 16):
    m = load("paper-s1" if w == 8 else f"paper-w{w}")
    rate, outer = overall_rate(m)
    print(f"| {w} | {m['final_avg_accuracy']:.2f} | {rate:.4%} | {outer} | {m['overflow']['layer0']['fwd']['max_abs_tile_sum']} |")
