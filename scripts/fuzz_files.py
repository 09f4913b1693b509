#!/usr/bin/env python3
"""Mutation fuzzer of the files weft reads: damaged .npy inputs and safetensors checkpoints.

Each case damages one file weft wrote or reads (mlp_tiny's inputs x and y as .npy; a checkpoint
of mlp_tiny or vae_tiny that `weft train --data synthetic` saved): bytes of its header or
body changed, a header field (shape, dtype, offsets, lengths) rewritten, bytes cut off or
appended. Then it runs what reads the file: `weft run mlp_tiny --inputs` on both backends,
`weft train --resume` (with a new --checkpoint) and `weft sample --checkpoint`. A run passes
when it exits 0, or 1 with a message and without writing what it would have written (the run's
output folder, the new checkpoint, the PNG); it fails on a signal, another exit code, an
escaped C++ exception or sanitizer report, a message-less exit 1, a file written by a run that
failed, or running past --timeout.

    scripts/fuzz_files.py 0 500 --weft /tmp/weft_copy --keep /tmp/file-fuzz

Needs no numpy. Case N's damage depends only on N and the files the weft under test writes.
"""
import argparse
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # fuzz_text (its verdict on a run) is imported from beside this file
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_text  # noqa: E402


def npy(shape, descr, values):
    """A version 1.0 .npy file of `values` packed as `descr` ('<f4' or '<i4')."""
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape) if len(shape) == 1 else ", ".join(map(str, shape)))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    body = struct.pack("<%d%s" % (len(values), "f" if descr == "<f4" else "i"), *values)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body


def damage(data, rng):
    """`data` damaged 1-3 times, mostly in its header (the first ~200 bytes)."""
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(7)
        head = min(len(data), 200)
        if kind == 0 and data:  # bytes of the header changed
            i = rng.randrange(head)
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        elif kind == 1 and data:  # a byte anywhere
            i = rng.randrange(len(data))
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        elif kind == 2:  # a number of the header rewritten (shape, offsets, lengths)
            text = data[:head].decode("latin-1")
            spots = [m.span() for m in re.finditer(r"\d+", text)]
            if spots:
                a, b = rng.choice(spots)
                new = rng.choice(["0", "1", "-1", "3", "99999999999", "18446744073709551615", "4096", "7"])
                data = (text[:a] + new + text[b:]).encode("latin-1") + data[head:]
        elif kind == 3:  # a dtype (or a .npy's fortran_order) rewritten
            text = data[:head].decode("latin-1")
            spots = [m.span() for m in re.finditer(r"<f4|<i4|<f8|F32|I32|F64|I64|U8|BOOL|False", text)]
            if spots:
                a, b = rng.choice(spots)
                new = rng.choice(["<f8", "<i8", ">f4", "|b1", "<f2", "F64", "I64", "BF16", "U8", "X9", "True"])
                data = (text[:a] + new + text[b:]).encode("latin-1") + data[head:]
        elif kind == 4:  # cut off
            data = data[:rng.randrange(len(data) + 1)]
        elif kind == 5:  # bytes appended
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif data:  # the 8-byte length that starts a safetensors file, or a .npy's header length
            at, width = rng.choice([(0, 8), (8, 2)])
            value = struct.pack("<Q", rng.choice([0, 1, 7, len(data), len(data) * 2, 2 ** 40]))[:width]
            data = data[:at] + value + data[at + width:]
    return data


def verdict(r, timed_out, written):
    """None when the run ended well (fuzz_text's verdict, and nothing `written` by a run that
    failed), else what went wrong."""
    problem = fuzz_text.verdict(r, timed_out)
    if not problem and r.returncode == 1 and written:
        return "failed, but wrote " + ", ".join(written)
    return problem


def commands(name, at):
    """What reads file `name` (paths through `at`): (weft's arguments, the files it writes) each."""
    if name.endswith(".npy"):
        return [(["run", "mlp_tiny", "--inputs", at("x.npy") + "," + at("y.npy"), "--out", at("out"),
                  "--backend=" + backend], ["out"]) for backend in ("reference", "cpu")]
    model = name[:-len(".safetensors")]
    runs = [(["train", model, "--resume", at(name), "--steps", "4", "--no-eval", "--checkpoint",
              at("new.safetensors")], ["new.safetensors"])]
    if model == "vae_tiny":
        runs.append((["sample", model, "--checkpoint", at(name), "--out", at("grid.png"), "--n", "4"], ["grid.png"]))
    return runs


def run_case(weft, files, name, case_dir, timeout):
    """Writes `files` to `case_dir` and runs what reads `name`: (problem, command, stderr) of
    the first run that went wrong, or (None, runs that refused, None)."""
    shutil.rmtree(case_dir, ignore_errors=True)
    os.makedirs(case_dir)
    for file_name, data in files.items():
        with open(os.path.join(case_dir, file_name), "wb") as f:
            f.write(data)
    at = lambda f: os.path.join(case_dir, f)
    refused = 0
    for command, outputs in commands(name, at):
        timed_out, r = False, None
        try:
            r = subprocess.run([weft] + command, capture_output=True, text=True, timeout=timeout, errors="replace")
        except subprocess.TimeoutExpired:
            timed_out = True
        problem = verdict(r, timed_out, [o for o in outputs if os.path.exists(at(o))])
        if problem:
            return problem, " ".join(c.replace(case_dir + os.sep, "") for c in command), r.stderr if r else ""
        refused += r.returncode != 0
    return None, refused, None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", type=int)
    p.add_argument("end", type=int)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("--weft", default=os.path.join(root, "build", "bin", "weft"))
    p.add_argument("--keep", default="file-fuzz-failures", help="folder for failing cases")
    p.add_argument("--timeout", type=float, default=120)
    a = p.parse_args()
    if not os.access(a.weft, os.X_OK):
        sys.exit("fuzz_files: %s is not an executable weft (bash scripts/build.sh builds one)" % a.weft)
    work = tempfile.mkdtemp(prefix="weft-file-fuzz-")
    os.environ["WEFT_CACHE_DIR"] = os.path.join(work, "kernels")
    case_dir = os.path.join(work, "case")
    try:
        originals = {
            "x.npy": npy([4, 16], "<f4", [((i * 37) % 101) / 101.0 for i in range(64)]),
            "y.npy": npy([4], "<i4", [0, 3, 1, 4]),
        }
        for model in ("mlp_tiny", "vae_tiny"):
            path = os.path.join(work, model + ".safetensors")
            r = subprocess.run([a.weft, "train", model, "--data", "synthetic", "--steps", "2", "--no-eval",
                                "--checkpoint", path], capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                sys.exit("fuzz_files: weft train %s failed: %s" % (model, r.stderr.strip()))
            with open(path, "rb") as f:
                originals[model + ".safetensors"] = f.read()
        for name in ("x.npy", "mlp_tiny.safetensors", "vae_tiny.safetensors"):  # undamaged, each run succeeds
            problem, refused, _ = run_case(a.weft, originals, name, case_dir, a.timeout)
            if problem or refused:
                sys.exit("fuzz_files: the undamaged %s fails: %s" % (name, problem or "refused"))
        failures, refused = 0, 0
        for case in range(a.first, a.end):
            rng = random.Random(case)
            name = rng.choice(sorted(originals))
            files = dict(originals)
            files[name] = damage(originals[name], rng)
            problem, outcome, stderr = run_case(a.weft, files, name, case_dir, a.timeout)
            if not problem:
                refused += outcome
                continue
            failures += 1
            os.makedirs(a.keep, exist_ok=True)
            shutil.copy(os.path.join(case_dir, name), os.path.join(a.keep, "case-%d-%s" % (case, name)))
            with open(os.path.join(a.keep, "case-%d.txt" % case), "w") as f:
                f.write("%s\n$ weft %s\n%s" % (problem, outcome, stderr[-4000:]))
            print("case %d (%s): %s: weft %s" % (case, name, problem, outcome), flush=True)
        print("%d cases, %d failing; %d runs refused the damaged file with a message" %
              (a.end - a.first, failures, refused))
        return 1 if failures else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
