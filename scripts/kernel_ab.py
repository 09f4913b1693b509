#!/usr/bin/env python3
"""Compares two weft binaries (or two environments) on single-step graphs: bench/kernels.

Each graph of bench/kernels/ holds one of the benchmark models' heaviest steps alone (gpt's
attention and its gradient, resnet's Winograd convolutions and their gradients, ddpm's
stride-2 phase ones and a weight gradient, resnet's direct stride-2 weight gradient, gpt's
matmuls), so that a change to one kernel can be timed without the rest of a training step
around it. This runs `weft run FILE --repeat=N` with A and B in turn, ROUNDS times, and prints
per graph each side's fastest run over all rounds and B's change. The fastest, not the
median: on a noisy host other tenants only ever add time.

    scripts/kernel_ab.py 4 BIN=/tmp/weft_before BIN=build/bin/weft
    scripts/kernel_ab.py 3 WEFT_CPU_ISA=avx2 WEFT_CPU_ISA=avx512 --only winograd
    scripts/kernel_ab.py 2 BIN=build/bin/weft BIN=build/bin/weft --repeat 100   # the noise alone
    scripts/kernel_ab.py 3 BIN=/tmp/weft_before BIN=build/bin/weft --only weight_grad --cold

With hot caches a step reads what its last run left there; in a training step a weight
gradient reads activations its forward pass wrote long before: --cold times that (stop 48:
resnet's 32-channel weight gradient 1.16 ms hot either way, cold 1.60-1.73 without prefetching
and 1.31-1.38 with it).

A side is a space-separated list of VAR=VALUE; BIN names the binary (default build/bin/weft),
the rest go to its environment.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

from ab_sides import parse_side

FASTEST = re.compile(r"fastest ([0-9.]+) ms")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fastest(binary, env, graph, repeat, out, cold):
    """The fastest of `repeat` runs of `graph`, in ms (with `cold`, each with cold caches)."""
    try:
        command = [binary, "run", graph, f"--repeat={repeat}", f"--out={out}"] + (["--cold"] if cold else [])
        run = subprocess.run(command, env=env, capture_output=True, text=True)
    except OSError as e:
        sys.exit(f"kernel_ab.py: cannot run {binary}: {e.strerror}")
    found = FASTEST.search(run.stdout + run.stderr)
    if run.returncode != 0 or not found:
        sys.exit(f"kernel_ab.py: {binary} run {graph} failed:\n{run.stderr.strip()}")
    return float(found.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rounds", type=int)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--repeat", type=int, default=300, help="timed runs of each graph per round (default 300)")
    parser.add_argument("--only", default="", help="the graphs whose file name contains this")
    parser.add_argument("--cold", action="store_true",
                        help="weft run --cold: each run finds its data in memory, not in the caches")
    args = parser.parse_args()
    graphs = sorted(g for g in glob.glob(os.path.join(ROOT, "bench", "kernels", "*.weft"))
                    if args.only in os.path.basename(g))
    if args.rounds < 1 or args.repeat < 1 or not graphs:
        sys.exit("kernel_ab.py: need ROUNDS >= 1, --repeat >= 1 and a graph to time")
    default = os.path.join(ROOT, "build", "bin", "weft")
    sides = [parse_side(args.a, "kernel_ab.py", default), parse_side(args.b, "kernel_ab.py", default)]
    best = {g: [float("inf"), float("inf")] for g in graphs}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            for g in graphs:
                for i, (binary, env) in enumerate(sides):
                    best[g][i] = min(best[g][i], fastest(binary, env, g, args.repeat, out, args.cold))
    caches = ", cold caches" if args.cold else ""
    print(f"fastest of {args.rounds} x {args.repeat} runs{caches}, A: {args.a}  B: {args.b}")
    print(f"{'graph':34} {'A ms':>8} {'B ms':>8} {'B - A':>7}")
    for g, (a, b) in best.items():
        print(f"{os.path.basename(g)[:-5]:34} {a:8.3f} {b:8.3f} {100 * (b - a) / a:+6.1f}%")


if __name__ == "__main__":
    main()
