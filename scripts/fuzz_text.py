#!/usr/bin/env python3
"""Mutation fuzzer of weft's IR text: bad input ends in a message, valid input computes right.

Each case takes one seed graph (the IR of the tiny models, or of --models, as dumped and as the
CPU backend compiles it, inference and training step, and the graph files given with --corpus),
changes it 1-3 times at random and runs weft on it: `weft compile`, `weft run` on both backends
and, where the graph has a `loss` output and is not yet compiled (no fused nodes, no updates),
two SGD steps of `weft run --train` on both. Two modes:

  --mode syntax     any change: a number, an op name, a dtype, an attribute's string, a value's
                    name, a line deleted or repeated, a character, the text cut short. Most are
                    refused, which must happen with a message: a case fails on a signal (a
                    crash, an abort), an exit code other than 0 and 1, an exit 1 without a
                    message, a C++ exception that escaped (`terminate called`), a sanitizer's
                    report, running past --timeout, a refused run that wrote its output folder,
                    or the CPU backend refusing a graph the interpreter ran.
  --mode structure  changes that keep the graph valid: an operand read from another value of
                    its type defined before it, an elementwise op or a reduction swapped for
                    another of its kind, one more output, a binary op's operands swapped, a
                    scalar constant or a float attribute changed. The graphs the passes and the
                    CPU backend's pattern matchers see are then near, but not the same as, the
                    models' own; besides the checks above, the two backends' outputs (and
                    trained parameters) must agree within --tolerance (fuzz_differential.py's
                    check). A difference is reported as ill-conditioned, and kept apart in
                    KEEP/ill-conditioned, where the interpreter's own outputs move as far when
                    the parameters' initial scales move by 1-3e-6 one way or the other (a
                    ReLU's input within rounding of 0, say), or where every element that
                    differs is infinite or NaN on a side (an overflow, met elsewhere by the
                    interpreter's f64 than by f32). It is reported as a broken hint where both
                    backends agree once the matmuls' lhs_zeros and needed hints are dropped:
                    the change (or the synthesized inputs: bench/kernels' attention gradient
                    takes probabilities) broke a promise of zeros that the CPU backend relies
                    on and the interpreter does not.

    scripts/fuzz_text.py 0 500 --weft /tmp/weft_copy --keep /tmp/text-fuzz
    scripts/fuzz_text.py 0 300 --mode structure --models gpt,resnet,ddpm --weft /tmp/weft_copy
    scripts/fuzz_text.py 7 8 --mode structure --verbose      # one case, its commands

Cases are reproducible: case N's changes come from seed N and the seed corpus, which is built
again by the weft under test (a changed printer or pipeline changes the cases). Each failure is
kept as KEEP/case-N.weft with what failed in KEEP/case-N.txt.
"""
import argparse
import glob
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile

TINY_MODELS = ["mlp_tiny", "lenet_tiny", "resnet_tiny", "vae_tiny", "gpt_tiny", "dcgan_tiny", "ddpm_tiny",
               "realnvp_tiny"]
DTYPES = ["f32", "f64", "i32", "i64", "bool"]
NUMBERS = ["0", "1", "-1", "2", "3", "7", "64", "-3", "1000000", "4294967296", "9223372036854775807", "1e30", "nan",
           "0.5", "-0.0"]
STRINGS = ['"mean"', '"sum"', '"none"', '"uniform"', '"zeros"', '"loop"', '"matmul"', '"conv"', '"bogus"', '""']
ESCAPED = ("terminate called", "AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
           "Assertion", "Segmentation fault", "core dumped", "LLVM ERROR", "PLEASE submit a bug report")


def op_names(root):
    """The op names of ir/ops.def."""
    with open(os.path.join(root, "ir", "ops.def")) as f:
        return re.findall(r'^WEFT_OP\(\s*\w+\s*,\s*"(\w+)"', f.read(), re.M)


def seed_corpus(weft, models, extra):
    """The IR texts mutated: the models as dumped and as compiled, and the files given."""
    texts = []

    def capture(args):
        r = subprocess.run([weft] + args, capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or not r.stdout.startswith("graph"):
            sys.exit("fuzz_text: weft %s failed: %s" % (" ".join(args), (r.stderr.strip().splitlines() or [""])[-1]))
        texts.append(r.stdout)

    for model in filter(None, models):
        capture(["dump", model, "--print-constants"])
        capture(["compile", model, "--print-ir", "--print-constants"])
        capture(["compile", model, "--train", "--print-ir", "--print-constants"])
    for pattern in extra:
        for path in sorted(glob.glob(pattern)):
            with open(path) as f:
                texts.append(f.read())
    return texts


def mutate_syntax(text, rng, ops):
    """`text` changed 1-3 times, anyhow."""
    for _ in range(rng.randint(1, 3)):
        if not text:
            break
        lines = text.split("\n")
        kind = rng.randrange(9)
        if kind == 0:  # a number
            spots = [m.span() for m in re.finditer(r"-?\d+(\.\d+)?(e-?\d+)?", text)]
            if spots:
                a, b = rng.choice(spots)
                text = text[:a] + rng.choice(NUMBERS) + text[b:]
        elif kind == 1:  # an op name
            spots = [m.span(1) for m in re.finditer(r"= (\w+)\(", text)]
            if spots:
                a, b = rng.choice(spots)
                text = text[:a] + rng.choice(ops) + text[b:]
        elif kind == 2:  # a dtype
            spots = [m.span() for m in re.finditer(r"\b(f32|f64|i32|i64|bool)\b", text)]
            if spots:
                a, b = rng.choice(spots)
                text = text[:a] + rng.choice(DTYPES) + text[b:]
        elif kind == 3:  # an attribute's string
            spots = [m.span() for m in re.finditer(r'"[^"\n]*"', text)]
            if spots:
                a, b = rng.choice(spots)
                text = text[:a] + rng.choice(STRINGS) + text[b:]
        elif kind == 4:  # a value's name
            names = [m.span() for m in re.finditer(r"%[\w.]+", text)]
            if len(names) > 1:
                a, b = rng.choice(names)
                c, d = rng.choice(names)
                text = text[:a] + text[c:d] + text[b:]
        elif kind == 5 and len(lines) > 2:  # a line deleted
            del lines[rng.randrange(1, len(lines) - 1)]
            text = "\n".join(lines)
        elif kind == 6 and len(lines) > 2:  # a line repeated
            i = rng.randrange(1, len(lines) - 1)
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        elif kind == 7:  # cut short
            text = text[:rng.randrange(len(text))]
        else:  # a character
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice("(){}[]<>,:=%@\"-.x0 ") + text[i + 1:]
    return text


UNARY = ["relu", "neg", "abs", "tanh", "sigmoid", "silu", "sin", "cos", "erf", "softplus"]  # no attributes
BINARY = ["add", "sub", "mul", "maximum", "minimum"]
REDUCE = ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min"]
TOP_NODE = re.compile(r"^  (%[\w.]+) = (\w+)\((.*?)\)(?: \{.*?\})? : (\w+\[[\d,]*\])(?: \{)?$")


def values_before(lines, end):
    """The values of the outer graph that line `end` may read (defined above it), by type."""
    defined = {}  # type -> names
    header = re.match(r"graph @[\w.]+\((.*)\) \{$", lines[0]) if lines else None
    for name, dtype in re.findall(r"(%[\w.]+): (\w+\[[\d,]*\])", header.group(1) if header else ""):
        defined.setdefault(dtype, []).append(name)
    for line in lines[:end]:
        m = TOP_NODE.match(line) or re.match(r"^  param (%[\w.]+): (\w+\[[\d,]*\])", line)
        if m:
            dtype = m.group(4) if m.re is TOP_NODE else m.group(2)
            defined.setdefault(dtype, []).append(m.group(1))
    return defined


def mutate_structure(text, rng):
    """`text` changed 1-3 times in ways that keep it a valid graph of the same types, mostly:
    an operand read from another value of its type defined before, an elementwise op or a
    reduction swapped for another of its kind, one more output, a binary op's operands
    swapped, a scalar constant or a float attribute changed."""
    for _ in range(rng.randint(1, 3)):
        lines = text.split("\n")
        nodes = [i for i, line in enumerate(lines) if TOP_NODE.match(line)]
        if not nodes:
            return text
        i = rng.choice(nodes)
        name, op, operands, dtype = TOP_NODE.match(lines[i]).groups()
        readable = values_before(lines, i)
        kind = rng.randrange(6)
        if kind == 0 and operands:  # rewire an operand
            names = re.findall(r"%[\w.]+", operands)
            old = rng.choice(names)
            old_type = next((t for t, vs in readable.items() if old in vs), None)
            others = [v for v in readable.get(old_type, []) if v != old]
            if others:
                new = rng.choice(others)
                spots = [m.span() for m in re.finditer(re.escape(old) + r"(?![\w.])", operands)]
                a, b = rng.choice(spots)
                start = lines[i].index("(") + 1
                lines[i] = lines[i][:start + a] + new + lines[i][start + b:]
        elif kind == 1:  # swap an op of a kind for another
            for family in (UNARY, BINARY, REDUCE):
                if op in family:
                    lines[i] = lines[i].replace(" = %s(" % op, " = %s(" % rng.choice(family), 1)
        elif kind == 2 and not name.endswith(".next"):  # one more output (but not an optimizer's update:
            # Adam's normalizes gradients that are rounding noise, such as a bias's before a batch norm)
            for j, line in enumerate(lines):
                if line.startswith("  return "):
                    lines[j] = line + ", extra%d=%s" % (rng.randrange(1000), name)
        elif kind == 3:  # the operands of a binary op swapped, where they have one type
            names = re.findall(r"%[\w.]+", operands)
            types = [next((t for t, vs in readable.items() if v in vs), None) for v in names]
            if len(names) == 2 and names[0] != names[1] and types[0] and types[0] == types[1]:
                start = lines[i].index("(") + 1
                lines[i] = lines[i][:start] + names[1] + ", " + names[0] + lines[i][start + len(operands):]
        elif kind == 4:  # a scalar constant's value changed (in a fused node's body too)
            scalars = [j for j, line in enumerate(lines) if re.search(r"dense<\[-?[\d.]+(?:e-?\d+)?\]>", line)]
            if scalars:
                j = rng.choice(scalars)
                m = re.search(r"dense<\[(-?[\d.]+(?:e-?\d+)?)\]>", lines[j])
                value = float(m.group(1)) * rng.choice([-1.0, 0.5, 2.0]) + rng.choice([0.0, 0.25])
                lines[j] = lines[j][:m.start(1)] + repr(value) + lines[j][m.end(1):]
        else:  # a float attribute scaled
            floats = [m.span(1) for m in re.finditer(r"\b(?:scale|eps|alpha|slope|momentum)=(-?[\d.]+(?:e-?\d+)?)",
                                                      lines[i])]
            if floats:
                a, b = rng.choice(floats)
                lines[i] = lines[i][:a] + repr(float(lines[i][a:b]) * rng.choice([0.5, 2.0, 10.0])) + lines[i][b:]
        text = "\n".join(lines)
    return text


def verdict(r, timed_out):
    """None when the run ended well, else what went wrong."""
    if timed_out:
        return "timed out"
    if r.returncode < 0:
        return f"killed by {signal.Signals(-r.returncode).name}"
    if r.returncode not in (0, 1):
        return f"exit code {r.returncode}"
    for marker in ESCAPED:
        if marker in r.stderr:
            return f"stderr has {marker!r}"
    if r.returncode == 1 and not r.stderr.strip():
        return "exit 1 without a message"
    return None


def outputs(folder):
    """The .npy files weft run wrote to `folder`, by relative path."""
    import numpy as np
    files = glob.glob(folder + "/*.npy") + glob.glob(folder + "/params/*.npy")
    return {os.path.relpath(f, folder): np.load(f).astype(np.float64) for f in files}


def differences(work, pairs, tolerance):
    """Where the CPU backend's outputs leave the interpreter's (fuzz_differential's check)."""
    import numpy as np
    from fuzz_differential import mismatch
    found = []
    for ref, cpu in pairs:
        want, got = outputs(os.path.join(work, ref)), outputs(os.path.join(work, cpu))
        for name in sorted(want):
            m = mismatch(want[name], got.get(name, np.full(want[name].shape, np.nan)), tolerance)
            if m:
                found.append((ref, cpu, name, m))
    return found


def overflowed(work, found, tolerance):
    """True when every element behind `found` that differs is infinite or NaN on one side: an
    overflow, which the interpreter's f64 arithmetic meets elsewhere than f32's."""
    import numpy as np
    from fuzz_differential import mismatch
    for ref, cpu, name, _ in found:
        want, got = (np.load(os.path.join(work, side, name)).astype(np.float64) for side in (ref, cpu))
        finite = np.isfinite(want) & np.isfinite(got)
        if want.shape != got.shape or finite.all() or mismatch(want[finite], got[finite], tolerance):
            return False
    return True


def nudged(text, way):
    """`text` with every parameter's initial scale moved by 1-3e-6 relative, up or down by
    turns (`way` 1 or -1 flips them all): a layer's weight and bias move apart, so that a sum
    near 0 moves (a uniform scale would keep its sign)."""
    turns = itertools.count()
    moves = [1, -2, 3, -1, 2, -3]
    return re.sub(r"(^  param .*\bscale=)(-?[\d.]+(?:e-?\d+)?)",
                  lambda m: m.group(1) + repr(float(m.group(2)) * (1 + 1e-6 * way * moves[next(turns) % 6])),
                  text, flags=re.M)


def without_hints(text):
    """`text` without the matmul hints (lhs_zeros, needed) whose promises let the CPU backend
    skip work: the interpreter computes every product all the same."""
    for pattern in (r'\b(lhs_zeros|needed)="\w+", ', r', (lhs_zeros|needed)="\w+"', r'\b(lhs_zeros|needed)="\w+"'):
        text = re.sub(pattern, "", text)
    return text


def rerun(weft, text, work, commands, folders, tag, timeout):
    """Runs the commands of `commands` that wrote `folders` again on `text` (written to
    WORK/TAG.weft), each into TAG-FOLDER; False when one of them fails."""
    path = os.path.join(work, tag + ".weft")
    with open(path, "w") as f:
        f.write(text)
    for folder in folders:
        out, moved = "--out=" + os.path.join(work, folder), os.path.join(work, tag + "-" + folder)
        shutil.rmtree(moved, ignore_errors=True)
        command = next(c for c in commands if out in c)
        command = [path if c.endswith("case.weft") else "--out=" + moved if c == out else c for c in command]
        if subprocess.run([weft] + command, capture_output=True, timeout=timeout).returncode != 0:
            return False
    return True


def broken_hint(weft, text, work, commands, pairs, args):
    """True when `text` has matmul hints and, without them, both backends agree on `pairs`:
    the changed graph (or its synthesized inputs) broke a hint's promise of zeros, which the
    interpreter does not rely on."""
    bare = without_hints(text)
    folders = [folder for pair in pairs for folder in pair]
    if bare == text or not rerun(weft, bare, work, commands, folders, "hintless", args.timeout):
        return False
    return not differences(work, [("hintless-" + ref, "hintless-" + cpu) for ref, cpu in pairs], args.tolerance)


def ill_conditioned(weft, text, work, commands, found, args):
    """True when the interpreter's own outputs that differ move as far once the parameters
    move by 1-3e-6 one way or the other (e.g. a ReLU's input within rounding of 0, which only
    one way moves across it): the backends' different rounding then explains the difference
    as well as a bug would."""
    refs = sorted({ref for ref, _, _, _ in found})
    for way in (1, -1):
        if not rerun(weft, nudged(text, way), work, commands, refs, "nudged", args.timeout):
            return False
        moved = differences(work, [(ref, "nudged-" + ref) for ref in refs], args.tolerance)
        if {(ref, name) for ref, _, name, _ in found} <= {(ref, name) for ref, _, name, _ in moved}:
            return True
    return False


def run_case(weft, text, work, args):
    """Runs weft's commands on `text`; returns (failure, command, stderr), or (None, the
    number of commands that succeeded, None)."""
    path = os.path.join(work, "case.weft")
    with open(path, "w") as f:
        f.write(text)
    for out in ("ref", "cpu", "train-ref", "train-cpu"):
        shutil.rmtree(os.path.join(work, out), ignore_errors=True)
    out = lambda name: "--out=" + os.path.join(work, name)
    cpu = ["--threads=%d" % args.threads] if args.threads else []
    commands = [["compile", path] + cpu, ["run", path, "--backend=reference", out("ref")],
                ["run", path, out("cpu")] + cpu]
    pairs = [("ref", "cpu")]
    if re.search(r"\bloss=%", text) and not re.search(r"^  update |= fused\(", text, re.M):  # autodiff takes
        # neither a training step nor fused nodes
        train = ["--train", "--steps=2", "--optimizer", "sgd", "--lr=0.01"]
        commands += [["run", path, "--backend=reference", out("train-ref")] + train,
                     ["run", path, out("train-cpu")] + train + cpu]
        pairs.append(("train-ref", "train-cpu"))
    for done, command in enumerate(commands):
        timed_out = False
        try:
            r = subprocess.run([weft] + command, capture_output=True, text=True, timeout=args.timeout, errors="replace")
        except subprocess.TimeoutExpired:
            timed_out, r = True, None
        problem = verdict(r, timed_out)
        if args.verbose:
            print("  $ weft", " ".join(command), "->", problem or f"exit {r.returncode}",
                  (r.stderr.strip().splitlines() or [""])[-1][:160] if r else "")
        shown = [c.replace(work + os.sep, "") for c in command]  # as it would run in the case's folder
        if problem:
            return problem, shown, (r.stderr if r else "")
        if r.returncode != 0:
            folder = next((c[len("--out="):] for c in command if c.startswith("--out=")), None)
            if folder and os.path.exists(folder):
                return "refused, but wrote " + os.path.basename(folder), shown, r.stderr
            if done >= 2 and (done % 2 == 0):  # the interpreter ran it and the CPU backend refused
                return "the CPU backend refused what the interpreter ran", shown, r.stderr
            if done < 3:
                return None, done, r.stderr  # refused: the later commands would refuse it too
            pairs.pop()  # a training step refused (a fused graph has no gradients): compare the rest
            break
    else:
        done = len(commands)
    if args.mode == "structure":
        found = differences(work, pairs, args.tolerance)
        if found:
            report = "\n".join("%s %s: %s" % (cpu, name, m) for _, cpu, name, m in found)
            if overflowed(work, found, args.tolerance) or ill_conditioned(weft, text, work, commands, found, args):
                return "ill-conditioned", ["run", "case.weft"], report
            if broken_hint(weft, text, work, commands, pairs, args):
                return "hint broken", ["run", "case.weft"], report
            return "outputs differ", ["run", "case.weft"], report
    return None, done, None


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.dont_write_bytecode = True  # fuzz_differential (its check) is imported from beside this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", type=int)
    p.add_argument("end", type=int)
    p.add_argument("--weft", default=os.path.join(root, "build", "bin", "weft"))
    p.add_argument("--models", default=",".join(TINY_MODELS),
                   help="registered models whose graphs seed the cases (default: the tiny ones)")
    p.add_argument("--corpus", action="append", default=[], help="more seed graph files (a glob)")
    p.add_argument("--keep", default="text-fuzz-failures", help="folder for failing cases")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--mode", choices=["syntax", "structure"], default="syntax",
                   help="syntax: any change, mostly refused with a message; structure: changes that keep "
                   "the graph valid, whose outputs the two backends must then agree on")
    p.add_argument("--tolerance", type=float, default=1e-4, help="with --mode structure (fuzz_differential's)")
    p.add_argument("--threads", type=int, help="the CPU backend's worker threads (default: weft's); odd counts "
                   "split work in shares no two-thread run makes")
    a = p.parse_args()
    if not os.access(a.weft, os.X_OK):
        sys.exit("fuzz_text: %s is not an executable weft (bash scripts/build.sh builds one)" % a.weft)
    ops = op_names(root)
    corpus = seed_corpus(a.weft, a.models.split(","), a.corpus)
    if not corpus:
        sys.exit("fuzz_text: no seed graphs (give --models or --corpus files)")
    failures, sensitive, hinted, ran = 0, 0, 0, [0] * 6  # cases by the number of commands that succeeded
    with tempfile.TemporaryDirectory() as work:
        os.environ["WEFT_CACHE_DIR"] = os.path.join(work, "kernels")
        for case in range(a.first, a.end):
            rng = random.Random(case)
            seed = rng.choice(corpus)
            text = mutate_syntax(seed, rng, ops) if a.mode == "syntax" else mutate_structure(seed, rng)
            if a.verbose:
                print(f"case {case}")
            problem, outcome, stderr = run_case(a.weft, text, work, a)  # outcome: a command, or a count
            if not problem:
                ran[outcome] += 1
                if a.mode == "structure" and outcome < 3:  # a change meant to keep the graph valid did not
                    print(f"case {case}, refused: {(stderr.strip().splitlines() or [''])[-1][:300]}", flush=True)
            elif problem == "hint broken":
                hinted += 1
                print(f"case {case}, a hint's promise broken (both backends agree once the matmuls' lhs_zeros and "
                      f"needed hints are dropped): {stderr.splitlines()[0]}", flush=True)
            elif problem == "ill-conditioned":
                sensitive += 1
                apart = os.path.join(a.keep, "ill-conditioned")
                os.makedirs(apart, exist_ok=True)
                shutil.copy(os.path.join(work, "case.weft"), os.path.join(apart, f"case-{case}.weft"))
                print(f"case {case}, ill-conditioned (differing only where a side overflowed, or the interpreter's "
                      f"outputs move as far when the parameters move by 1-3e-6): {stderr.splitlines()[0]}", flush=True)
            else:
                failures += 1
                os.makedirs(a.keep, exist_ok=True)
                shutil.copy(os.path.join(work, "case.weft"), os.path.join(a.keep, f"case-{case}.weft"))
                with open(os.path.join(a.keep, f"case-{case}.txt"), "w") as f:
                    f.write(f"{problem}\n$ weft {' '.join(outcome)}\n{stderr[-4000:]}")
                print(f"case {case}: {problem}: weft {' '.join(outcome)}", flush=True)
    print(f"{a.end - a.first} cases, {failures} failing, {sensitive} ill-conditioned"
          + (f", {hinted} breaking a hint's promise" if hinted else "") + "; of the rest, "
          f"{ran[0]} refused by weft compile, "
          f"{ran[1]} by the interpreter, {sum(ran[3:])} ran on both backends ({ran[5]} as a training step too)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
