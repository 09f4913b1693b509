#!/usr/bin/env python3
"""Compares two weft binaries (or two environments) step by step on one model's training step.

On a noisy host a whole step's time moves by up to 2x from one minute to the next, so this
runs `weft bench --models=MODEL --modes=train` (or --mode infer) under WEFT_PROFILE with A and B in turn,
ROUNDS times, keeps each step's fastest per-step mean over the rounds, and prints the steps
whose times differ by more than --min-ms (A, B, B - A, the step, what ran it in A || in B),
then the sums of those minimums and each run's total.

    scripts/ab_profile.py ddpm 4 BIN=/tmp/weft_before BIN=build/bin/weft
    scripts/ab_profile.py lenet 6 WEFT_THREADS=2 WEFT_THREADS=1
    scripts/ab_profile.py gpt 4 BIN=/tmp/weft_before BIN=build/bin/weft --categories

A change to the graph renumbers its values, so that steps of the same name are no longer the
same step: --categories then adds up each side's minimums by what runs the step (oneDNN,
native, or a generated kernel's family: its name without the number) and prints those sums.

A side is a space-separated list of VAR=VALUE; BIN names the binary (default build/bin/weft),
the rest go to its environment.
"""
import argparse
import collections
import re
import subprocess
import sys

from ab_sides import parse_side

STEP = re.compile(r"\s+([0-9.]+) ms\s+[0-9.]+%\s+(\S+) (%\S+) (.*)")
TOTAL = re.compile(r"([0-9.]+) ms per run")


def run(model, mode, side):
    """One profiled run: ({step: ms}, {step: description}, total ms)."""
    binary, env = parse_side(side, "ab_profile.py", "build/bin/weft")
    env["WEFT_PROFILE"] = "1000"
    try:
        done = subprocess.run([binary, "bench", "--models=" + model, "--modes=" + mode], env=env,
                              capture_output=True, text=True)
    except OSError as e:
        sys.exit(f"ab_profile.py: cannot run {binary}: {e.strerror}")
    if done.returncode != 0:
        sys.exit(f"ab_profile.py: {binary} bench --models={model} failed:\n{done.stderr.strip()}")
    out = done.stderr
    times, what, total = {}, {}, None
    for line in out.splitlines():
        if m := STEP.match(line):
            times[m.group(3)] = float(m.group(1))
            what[m.group(3)] = m.group(2) + " " + m.group(4)[:60]
        elif total is None and (t := TOTAL.search(line)):
            total = float(t.group(1))
    return times, what, total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("rounds", type=int)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--min-ms", type=float, default=0.02)
    parser.add_argument("--mode", choices=("train", "infer"), default="train")
    parser.add_argument("--categories", action="store_true",
                        help="also print the sums of per-step minimums by what runs the steps")
    args = parser.parse_args()
    best = [collections.defaultdict(lambda: float("inf")) for _ in range(2)]
    what, totals = [{}, {}], [[], []]
    for _ in range(args.rounds):
        for k, side in enumerate((args.a, args.b)):
            times, described, total = run(args.model, args.mode, side)
            for step, ms in times.items():
                best[k][step] = min(best[k][step], ms)
            what[k].update(described)
            totals[k].append(total)
    steps = sorted(set(best[0]) | set(best[1]), key=lambda s: -max(best[0].get(s, 0), best[1].get(s, 0)))
    sums = [0.0, 0.0]
    for step in steps:
        a, b = (best[k][step] if step in best[k] else 0.0 for k in range(2))
        sums[0] += a
        sums[1] += b
        if abs(b - a) > args.min_ms:
            print(f"{a:8.3f} {b:8.3f} {b - a:+7.3f} {step} | {what[0].get(step, '')} || {what[1].get(step, '')}")
    if args.categories:
        print_categories(best, what)
    print(f"sums of per-step minimums: {sums[0]:.3f} {sums[1]:.3f}; totals per run: A {totals[0]} B {totals[1]}")


def category(description):
    """What runs a step: "onednn", "native", or "generated FAMILY" (a kernel's name without its number)."""
    words = description.split()
    kind = next((w for w in words if w in ("onednn", "native", "generated")), words[0] if words else "?")
    if kind == "generated":
        name = words[words.index("generated") + 1] if words.index("generated") + 1 < len(words) else ""
        return "generated " + re.sub(r"_\d+$", "", name)
    return kind


def print_categories(best, what):
    """Each side's sums of per-step minimums and step counts by category, the 25 largest."""
    sums = [collections.Counter(), collections.Counter()]
    counts = [collections.Counter(), collections.Counter()]
    for k in range(2):
        for step, ms in best[k].items():
            c = category(what[k].get(step, ""))
            sums[k][c] += ms
            counts[k][c] += 1
    names = sorted(set(sums[0]) | set(sums[1]), key=lambda c: -max(sums[0][c], sums[1][c]))
    for c in names[:25]:
        print(f"{sums[0][c]:8.3f} {sums[1][c]:8.3f} {sums[1][c] - sums[0][c]:+7.3f} "
              f"{counts[0][c]:4d} {counts[1][c]:4d} steps  {c}")


if __name__ == "__main__":
    main()
