#!/usr/bin/env python3
"""Differential fuzzing: random graphs run on the compiled CPU backend and on the interpreter.

Each seed makes one random f32 graph (elementwise ops with broadcasts, compares and logical ops
+ select, reductions, transposes, reshapes, strided slices, concat, pad, broadcast, gather,
matmul, conv, transposed conv, pools, softmax, layer, group and batch norm, GELU, SiLU, leaky
ReLU, softplus, pow, the three losses), runs it with `weft run` on both backends
and compares every output (and, with --train, every trained parameter) within a tolerance
relative to each element and to the tensor's largest magnitude. Mismatching graphs are kept in
--keep DIR (default fuzz-mismatches) as SEED.weft. A mismatch whose outputs the interpreter
itself moves as far when every operand moves by 1e-6 (the graph's constants 0.5 and parameter
scales nudged) is reported as ill-conditioned instead, kept in DIR/ill-conditioned: rounding
explains it (layer norms of near-equal values, quotients by near-zero sums); compares of values
equal up to rounding (eq(silu(x), x)) still count as mismatches. Needs numpy (python3-numpy).

    scripts/fuzz_differential.py 0 500                      # forward graphs, seeds 0..499
    scripts/fuzz_differential.py 0 500 --train              # one SGD step of a mean-square loss
    scripts/fuzz_differential.py 0 300 --train --conv       # convolution-heavy graphs
    scripts/fuzz_differential.py 0 300 --train --attention  # causal attentions among the ops
    scripts/fuzz_differential.py 0 300 --threads 3          # work split three ways

With --train the loss is the mean square of the last value; parameters replace most operands
that are not data. Compare one step (the default): over more steps a large gradient makes the
two backends' last-bit differences grow without bound, and Adam turns rounding noise on an
exactly-zero gradient into full steps (stop 46 found only such cases). Adam compares over a few
steps with a large denominator guard, which keeps its update smooth in the gradient:

    scripts/fuzz_differential.py 0 300 --train --optimizer adam --eps 1 --steps 3
    scripts/fuzz_differential.py 0 300 --train --optimizer momentum --steps 2 --clip-norm 1
"""
import argparse
import glob
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np


class EmptyValue(Exception):
    """An op would make a value with no elements: the graph skips it."""


class Builder:
    """A graph's text under construction: its values (name, shape), inputs and parameters."""

    def __init__(self, rng, train, conv, attention=False):
        self.rng, self.train, self.conv, self.attention = rng, train, conv, attention
        self.lines, self.pool, self.inputs, self.params = [], [], [], []
        self.count = 0

    def value(self, text, shape, dtype="f32"):
        if any(d < 1 for d in shape):
            raise EmptyValue()
        name = "%%v%d" % self.count
        self.count += 1
        self.lines.append("  %s = %s : %s[%s]" % (name, text, dtype, ",".join(map(str, shape))))
        if dtype == "f32":
            self.pool.append((name, list(shape)))
        return name

    def const(self, v):
        name = "%%c%d" % self.count
        self.count += 1
        self.lines.append("  %s = constant() {value=dense<[%r]>} : f32[]" % (name, float(v)))
        return name

    def operand(self, shape):
        """A fresh input, or with --train mostly a parameter, of `shape`, centered on 0."""
        if self.train and self.rng.random() < 0.75:
            name = "%%p%d" % len(self.params)
            self.params.append((name, list(shape)))
        else:
            name = "%%in%d" % len(self.inputs)
            self.inputs.append((name, list(shape)))
        return self.value("sub(%s, %s)" % (name, self.const(0.5)), shape)

    def pick(self, fits=lambda shape: True):
        """A value whose shape fits, more often a recent one."""
        found = [p for p in self.pool if fits(p[1])]
        if not found:
            return None
        if self.rng.random() < 0.6:
            return found[-1 - self.rng.randrange(min(3, len(found)))]
        return self.rng.choice(found)


def ints(values):
    return "[" + ", ".join(map(str, values)) + "]"


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


UNARY = ["neg", "abs", "exp", "tanh", "sigmoid", "sin", "cos", "erf", "floor", "sign", "relu", "silu", "softplus",
         "gelu", "leaky_relu"]


def add_op(b):
    """Appends one random op reading earlier values (or nothing when the pick does not fit)."""
    r = b.rng
    if b.attention and r.random() < 0.35:
        return add_attention(b)
    a, sa = b.pick()
    kind = r.choice(["conv", "conv", "conv", "conv_transpose"]) if b.conv and r.random() < 0.45 else r.choice(
        ["unary", "positive", "binary", "binary", "binary", "reduce", "transpose", "reshape", "slice", "concat", "pad",
         "broadcast", "matmul", "matmul", "softmax", "layer_norm", "conv", "conv", "pool", "select", "group_norm",
         "conv_transpose", "batch_norm", "gather", "loss"])
    rank = len(sa)
    if kind == "unary":
        op = r.choice(UNARY)
        if op == "exp":  # at most e^16: larger values' squares overflow f32 (the interpreter's f64 not)
            a = b.value("minimum(%s, %s)" % (b.value("mul(%s, %s)" % (a, b.const(0.25)), sa), b.const(16.0)), sa)
        attrs = {"gelu": " {approximate=%d}" % r.randrange(2), "leaky_relu": " {alpha=%r}" % r.choice([0.2, 0.01])}
        return b.value("%s(%s)%s" % (op, a, attrs.get(op, "")), sa)
    if kind == "positive":
        shifted = b.value("add(%s, %s)" % (b.value("abs(%s)" % a, sa), b.const(0.5)), sa)
        if r.random() < 0.25:  # a positive base to a constant or a bounded power
            power = b.const(r.choice([2.0, 0.5, -1.5, 3.0])) if r.random() < 0.6 else b.value("tanh(%s)" % a, sa)
            return b.value("pow(%s, %s)" % (shifted, power), sa)
        return b.value("%s(%s)" % (r.choice(["log", "sqrt", "rsqrt"]), shifted), sa)
    if kind == "binary":
        op = r.choice(["add", "sub", "mul", "maximum", "minimum", "div"])
        other = b.pick(lambda s: s == sa)
        if other is None or r.random() < 0.3:
            if rank > 0 and r.random() < 0.6:  # a broadcast partner: a reduced a
                axis = r.randrange(rank)
                reduced = [1 if i == axis else d for i, d in enumerate(sa)]
                other = (b.value("reduce_sum(%s) {axes=[%d], keepdims=1}" % (a, axis), reduced), reduced)
            else:
                other = (b.const(r.choice([0.5, -1.5, 2.0, 0.0])), [])
        name, shape = other
        if op == "div":  # a denominator of at least 1 in magnitude
            name = b.value("add(%s, %s)" % (b.value("abs(%s)" % name, shape), b.const(1.0)), shape) if shape else b.const(1.7)
        swap = r.random() >= 0.7 and op != "div"  # a divisor near 0 would make ill-conditioned quotients
        lhs, rhs = (name, a) if swap else (a, name)
        return b.value("%s(%s, %s)" % (op, lhs, rhs), sa)
    if kind == "reduce" and rank > 0:
        op = r.choice(["reduce_sum", "reduce_max", "reduce_min", "reduce_mean", "logsumexp"])
        axes = sorted(r.sample(range(rank), r.randrange(1, rank + 1)))
        keep = r.randrange(2)
        shape = [1 if i in axes else d for i, d in enumerate(sa)] if keep else [d for i, d in enumerate(sa) if i not in axes]
        return b.value("%s(%s) {axes=%s, keepdims=%d}" % (op, a, ints(axes), keep), shape)
    if kind == "transpose" and rank >= 2:
        perm = list(range(rank))
        r.shuffle(perm)
        return b.value("transpose(%s) {perm=%s}" % (a, ints(perm)), [sa[p] for p in perm])
    if kind == "reshape" and rank >= 1:
        total = numel(sa)
        first = r.choice([d for d in range(1, total + 1) if total % d == 0])
        shape = [total] if r.random() < 0.3 else [first, total // first]
        return b.value("reshape(%s) {shape=%s}" % (a, ints(shape)), shape)
    if kind == "slice" and rank >= 1:
        start = [r.randrange(0, max(1, d // 2)) for d in sa]
        limit = [r.randrange(s + 1, d + 1) for s, d in zip(start, sa)]
        stride = [r.choice([1, 1, 2]) for _ in sa]
        shape = [(l - s + t - 1) // t for s, l, t in zip(start, limit, stride)]
        return b.value("slice(%s) {start=%s, limit=%s, stride=%s}" % (a, ints(start), ints(limit), ints(stride)), shape)
    if kind == "concat" and rank >= 1:
        axis = r.randrange(rank)
        other, so = b.pick(lambda s: len(s) == rank and all(x == y for i, (x, y) in enumerate(zip(s, sa)) if i != axis))
        shape = list(sa)
        shape[axis] += so[axis]
        return b.value("concat(%s, %s) {axis=%d}" % (a, other, axis), shape)
    if kind == "pad" and rank >= 1:
        low, high = [r.randrange(3) for _ in sa], [r.randrange(3) for _ in sa]
        return b.value("pad(%s) {low=%s, high=%s, value=%r}" % (a, ints(low), ints(high), r.choice([0.0, -1.0])),
                       [d + l + h for d, l, h in zip(sa, low, high)])
    if kind == "broadcast" and rank <= 3:
        shape = [r.choice([2, 3])] + sa
        return b.value("broadcast(%s) {shape=%s}" % (a, ints(shape)), shape)
    if kind == "matmul" and rank >= 2:
        m, k, n = sa[-2], sa[-1], r.choice([1, 3, 8, 17, 32])
        transposed = r.randrange(2)
        rhs = ([n, k] if transposed else [k, n])
        if r.random() < 0.5:
            rhs = sa[:-2] + rhs
        return b.value("matmul(%s, %s) {transpose_rhs=%d}" % (a, b.operand(rhs), transposed), sa[:-2] + [m, n])
    if kind == "softmax" and rank >= 1:
        return b.value("%s(%s) {axis=%d}" % (r.choice(["softmax", "log_softmax"]), a, r.randrange(rank)), sa)
    if kind == "layer_norm" and rank >= 1:
        d = sa[-1]
        return b.value("layer_norm(%s, %s, %s) {axis=%d, eps=1e-05}" % (a, b.operand([d]), b.operand([d]), rank - 1), sa)
    if kind == "conv" and rank == 4 and min(sa[2:]) >= 3:
        n, c, h, w = sa
        out = r.choice([16, 32, 16, 48] if b.conv else [1, 4, 16, 17])
        size = r.choice([3, 3, 1, 4] if b.conv else [1, 2, 3])
        stride, padding = r.choice([1, 2]), r.randrange(0, size)
        weights = b.operand([out, c, size, size])
        oh, ow = ((e + 2 * padding - size) // stride + 1 for e in (h, w))
        return b.value("conv(%s, %s) {stride=[%d, %d], padding=[%d, %d], dilation=[1, 1], groups=1}" %
                       (a, weights, stride, stride, padding, padding), [n, out, oh, ow])
    if kind == "conv_transpose" and rank == 4 and max(sa[2:]) <= 32:
        n, c, h, w = sa
        out = r.choice([16, 32, 8, 16] if b.conv else [1, 3, 8, 16])
        size, stride = r.choice([(4, 2), (4, 2), (3, 2), (3, 1), (2, 2), (1, 1)])
        padding, extra = r.randrange(0, size), r.randrange(0, stride)
        weights = b.operand([c, out, size, size])
        oh, ow = ((e - 1) * stride + size + extra - 2 * padding for e in (h, w))
        return b.value("conv_transpose(%s, %s) {stride=[%d, %d], padding=[%d, %d], output_padding=[%d, %d], "
                       "dilation=[1, 1], groups=1}" % (a, weights, stride, stride, padding, padding, extra, extra),
                       [n, out, oh, ow])
    if kind == "batch_norm" and rank in (2, 4) and numel(sa) // sa[1] >= 4:
        c = sa[1]
        return b.value("batch_norm(%s, %s, %s) {eps=1e-05}" % (a, b.operand([c]), b.operand([c])), sa)
    if kind == "gather" and rank >= 1:
        axis = r.randrange(rank)
        count = r.choice([1, 3, sa[axis], 2 * sa[axis]])
        indices = b.value("constant() {value=dense<%s>}" % ints([r.randrange(sa[axis]) for _ in range(count)]),
                          [count], dtype="i64")
        return b.value("gather(%s, %s) {axis=%d}" % (a, indices, axis), sa[:axis] + [count] + sa[axis + 1:])
    if kind == "loss" and rank >= 1:
        reduce = r.choice(["none", "mean", "sum"])
        if r.random() < 0.4 and sa[-1] >= 2:
            rows = numel(sa[:-1])
            labels = b.value("constant() {value=dense<%s>}" % ints([r.randrange(sa[-1]) for _ in range(rows)]),
                             [rows], dtype="i64")
            if rank != 2:
                labels = b.value("reshape(%s) {shape=%s}" % (labels, ints(sa[:-1])), sa[:-1], dtype="i64")
            return b.value('cross_entropy(%s, %s) {reduce="%s"}' % (a, labels, reduce),
                           sa[:-1] if reduce == "none" else [])
        other = b.pick(lambda s: s == sa)[0]
        if other == a or r.random() < 0.3:
            other = b.operand(sa)
        op = r.choice(["bce_with_logits", "mse_loss"])
        return b.value('%s(%s, %s) {reduce="%s"}' % (op, a, other, reduce), sa if reduce == "none" else [])
    if kind == "pool" and rank == 4 and min(sa[2:]) >= 2:
        window = r.choice([2, 3]) if min(sa[2:]) >= 3 else 2
        stride, padding = r.choice([1, 2]), r.randrange(0, window // 2 + 1)
        oh, ow = ((e + 2 * padding - window) // stride + 1 for e in sa[2:])
        return b.value("%s(%s) {window=[%d, %d], stride=[%d, %d], padding=[%d, %d]}" %
                       (r.choice(["max_pool", "avg_pool"]), a, window, window, stride, stride, padding, padding),
                       sa[:2] + [oh, ow])
    if kind == "select":
        other = b.pick(lambda s: s == sa)[0]
        if other != a and r.random() < 0.8:  # values of two paths may agree up to rounding (silu(x) and x, x > 17)
            other = b.value("add(%s, %s)" % (other, b.const(r.choice([0.0137, -0.0219]))), sa)
        cond = b.value("%s(%s, %s)" % (r.choice(["gt", "lt", "ge", "le", "eq", "ne"]), a, other), sa, dtype="bool")
        if r.random() < 0.3:  # two conditions joined, or one negated
            if r.random() < 0.5:
                cond = b.value("logical_not(%s)" % cond, sa, dtype="bool")
            else:
                sign = b.value("gt(%s, %s)" % (a, b.const(0.0)), sa, dtype="bool")
                cond = b.value("%s(%s, %s)" % (r.choice(["logical_and", "logical_or"]), cond, sign), sa, dtype="bool")
        return b.value("select(%s, %s, %s)" % (cond, a, b.const(0.0) if r.random() < 0.5 else other), sa)
    if kind == "group_norm" and rank == 4:
        c = sa[1]
        groups = r.choice([g for g in (1, 2, 4) if c % g == 0])
        return b.value("group_norm(%s, %s, %s) {groups=%d, eps=1e-05}" % (a, b.operand([c]), b.operand([c]), groups), sa)
    return None


def add_attention(b):
    """Appends a causal attention as the models write it, softmax(mask(q k^T * scale)) v, T
    often no multiple of the native step's 12-row and 16-column blocks: q a recent [B, T, D]
    value (or a fresh operand), k and v fresh operands; or q, k and v H heads each of one
    fresh [B, T, 3 H Dh] value (slices reshaped to [B, T, H, Dh] and transposed to [B, H, T,
    Dh], the result transposed and reshaped back to [B, T, H Dh]), as gpt's fused qkv
    projection makes them, whose gradient runs as one step too."""
    r = b.rng
    if r.random() < 0.5:
        found = b.pick(lambda s: len(s) == 3 and s[1] >= 2)
        if found is None or r.random() < 0.3:
            batch, t, d = r.choice([1, 2, 3]), r.choice([5, 8, 13, 16, 37, 64]), r.choice([4, 12, 16, 33])
            q = b.operand([batch, t, d])
        else:
            q, (batch, t, d) = found[0], found[1]
        width = r.choice([d, 8, 20])
        k, v = b.operand([batch, t, d]), b.operand([batch, t, width])
        dims, heads = [batch], 0
    else:
        batch, t, heads, d = r.choice([1, 2]), r.choice([5, 8, 13, 16, 37]), r.choice([1, 2, 3]), r.choice([4, 8, 12])
        width, dims = d, [batch, heads]
        qkv = b.operand([batch, t, 3 * heads * d])
        q, k, v = (b.value("transpose(%s) {perm=[0, 2, 1, 3]}" % b.value("reshape(%s) {shape=%s}" % (
            b.value("slice(%s) {start=[0, 0, %d], limit=[%d, %d, %d], stride=[1, 1, 1]}" %
                    (qkv, start, batch, t, start + heads * d), [batch, t, heads * d]), ints([batch, t, heads, d])),
            [batch, t, heads, d]), [batch, heads, t, d]) for start in (0, heads * d, 2 * heads * d))
    inner = len(b.pool)  # the values inside the attention: later ops read its result alone
    scale = r.choice([0.125, 0.5, 1.0])
    if r.random() < 0.4:  # the attention op, as the DSL writes it (gpt), sometimes not causal
        result = b.value("attention(%s, %s, %s) {causal=%d, scale=%r}" % (q, k, v, r.random() < 0.75, scale),
                         dims + [t, width])
    else:
        scores = b.value("matmul(%s, %s) {transpose_rhs=1}" % (q, k), dims + [t, t])
        scaled = b.value("mul(%s, %s)" % (scores, b.const(scale)), dims + [t, t])
        columns = b.value("iota() {axis=1, dtype=i64, shape=[%d, %d]}" % (t, t), [t, t], dtype="i64")
        rows = b.value("iota() {axis=0, dtype=i64, shape=[%d, %d]}" % (t, t), [t, t], dtype="i64")
        mask = b.value("gt(%s, %s)" % (columns, rows), [t, t], dtype="bool")
        masked = b.value("select(%s, %s, %s)" % (mask, b.const(float("-inf")), scaled), dims + [t, t])
        probabilities = b.value("softmax(%s) {axis=%d}" % (masked, len(dims) + 1), dims + [t, t])
        result = b.value("matmul(%s, %s)" % (probabilities, v), dims + [t, width])
    del b.pool[inner:]
    if not heads:
        b.pool.append((result, [batch, t, width]))
        return result
    merged = b.value("transpose(%s) {perm=[0, 2, 1, 3]}" % result, [batch, t, heads, d])
    del b.pool[-1]
    return b.value("reshape(%s) {shape=%s}" % (merged, ints([batch, t, heads * d])), [batch, t, heads * d])


def graph_text(seed, train, conv, attention=False):
    """The text of seed's graph: outputs o0, o1, ... (and loss with `train`)."""
    rng = random.Random(seed)
    b = Builder(rng, train, conv, attention)
    if conv:
        shapes = [[rng.choice([2, 3]), rng.choice([8, 16, 32]), rng.choice([8, 12, 16]), rng.choice([8, 12, 16])]]
    else:
        shapes = [[rng.choice([1, 2, 4]), rng.choice([1, 3, 8, 16]), rng.choice([5, 8, 12]), rng.choice([5, 8, 12])],
                  [rng.choice([2, 8, 33]), rng.choice([16, 31, 64])], [rng.choice([3, 40])]]
    for shape in rng.sample(shapes, rng.randrange(1, len(shapes) + 1)):
        b.operand(shape)
    for _ in range(rng.randrange(4, 24)):
        kept = len(b.lines), len(b.pool), len(b.inputs), len(b.params)
        try:
            add_op(b)
        except EmptyValue:  # undo what the op had added
            del b.lines[kept[0]:], b.pool[kept[1]:], b.inputs[kept[2]:], b.params[kept[3]:]
        if numel(b.pool[-1][1]) > 300000:
            break
    outputs = []
    for name, _ in rng.sample(b.pool[-4:], min(len(b.pool), rng.randrange(1, 3))) + [b.pool[-1]]:
        if name not in outputs:
            outputs.append(name)
    ret = ", ".join("o%d=%s" % (i, name) for i, name in enumerate(outputs))
    if train:
        last, shape = b.pool[-1]
        square = b.value("mul(%s, %s)" % (last, last), shape)
        b.lines.append("  %%loss = reduce_mean(%s) {axes=%s, keepdims=0} : f32[]" % (square, ints(range(len(shape)))))
        ret += ", loss=%loss"
    head = "graph @fuzz(" + ", ".join("%s: f32[%s]" % (n, ",".join(map(str, s))) for n, s in b.inputs) + ") {"
    params = ['  param %s: f32[%s] {init="uniform", scale=0.5, seed=%d}' % (n, ",".join(map(str, s)), 11 + i)
              for i, (n, s) in enumerate(b.params)]
    return "\n".join([head] + params + b.lines + ["  return " + ret, "}"]) + "\n"


def run(args, path, backend, out, seed):
    """weft run on one backend: its .npy files by relative path, or None when it fails."""
    shutil.rmtree(out, ignore_errors=True)  # the files of the seed before are not this one's
    command = [args.weft, "run", path, "--backend=" + backend, "--out=" + out, "--seed=%d" % seed]
    if backend == "cpu" and args.threads:
        command.append("--threads=%d" % args.threads)
    if args.train:
        command += ["--train", "--steps=%d" % args.steps, "--lr=%g" % args.lr, "--optimizer", args.optimizer]
        command += ["--%s=%g" % (option, value) for option, value in
                    (("weight-decay", args.weight_decay), ("clip-norm", args.clip_norm), ("eps", args.eps))
                    if value is not None]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return None, done.stderr.strip()
    files = glob.glob(out + "/*.npy") + glob.glob(out + "/params/*.npy")
    return {os.path.relpath(f, out): np.load(f).astype(np.float64) for f in files}, ""


def mismatch(want, got, tolerance):
    """A description of where `got` leaves the tolerance around `want`, or None."""
    if got.shape != want.shape:
        return "shape %s against %s" % (got.shape, want.shape)
    with np.errstate(invalid="ignore"):
        err = np.abs(want - got)
        largest = np.nanmax(np.abs(want)) if want.size and not np.all(np.isnan(want)) else 0.0
        bad = ~((np.isnan(want) & np.isnan(got)) | (want == got) | (err <= tolerance * (1 + np.abs(want) + largest)))
    if not bad.any():
        return None
    i = int(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf), -1)))
    return "%d of %d elements, e.g. interpreter %r, cpu %r" % (bad.sum(), bad.size, want.flat[i], got.flat[i])


def ill_conditioned(args, path, seed, want, names, work):
    """True when the interpreter's own outputs `names` leave the tolerance once every operand
    moves by 1e-6 relative (the graph's centering constants and parameter scales nudged): the
    backends' different rounding then explains a mismatch as well as a bug would."""
    with open(path) as f:
        text = f.read()
    nudged = path[:-len(".weft")] + ".nudged.weft"
    with open(nudged, "w") as f:
        f.write(text.replace("dense<[0.5]>", "dense<[0.5000005]>").replace("scale=0.5,", "scale=0.5000005,"))
    moved, _ = run(args, nudged, "reference", os.path.join(work, "nudged"), seed)
    return moved is not None and all(
        mismatch(want[name], moved.get(name, np.full(want[name].shape, np.nan)), args.tolerance) for name in names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("first", type=int)
    parser.add_argument("end", type=int)
    parser.add_argument("--train", action="store_true", help="compare training steps of a mean-square loss")
    parser.add_argument("--conv", action="store_true", help="convolution-heavy graphs (8-32 channels)")
    parser.add_argument("--attention", action="store_true", help="graphs with causal attentions (a third of the ops)")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--weight-decay", type=float, help="the optimizer's (default: weft run's)")
    parser.add_argument("--clip-norm", type=float, help="clip the gradients to this global norm")
    parser.add_argument("--eps", type=float, help="adam's denominator guard; near the gradients' size (1) "
                        "an update is smooth in them, so that steps past the first compare")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, help="the CPU backend's worker threads (default: weft run's); "
                        "odd counts split work in shares that no two-thread run makes")
    parser.add_argument("--weft", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "weft"))
    parser.add_argument("--keep", default="fuzz-mismatches")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="weft-fuzz-")
    found = skipped = sensitive = 0
    try:
        for seed in range(args.first, args.end):
            path = os.path.join(work, "%d.weft" % seed)
            with open(path, "w") as f:
                f.write(graph_text(seed, args.train, args.conv, args.attention))
            want, why = run(args, path, "reference", os.path.join(work, "ref"), seed)
            if want is None:  # e.g. a loss that reaches no parameter
                skipped += 1
                continue
            got, why = run(args, path, "cpu", os.path.join(work, "cpu"), seed)
            bad = {} if got is None else {
                name: m for name in sorted(want)
                if (m := mismatch(want[name], got.get(name, np.full(want[name].shape, np.nan)), args.tolerance))}
            problems = ["the CPU backend failed: " + why] if got is None else ["%s: %s" % kv for kv in bad.items()]
            if problems and bad and ill_conditioned(args, path, seed, want, bad, work):
                sensitive += 1
                os.makedirs(os.path.join(args.keep, "ill-conditioned"), exist_ok=True)
                shutil.copy(path, os.path.join(args.keep, "ill-conditioned", "%d.weft" % seed))
                print("seed %d, ill-conditioned (the interpreter's outputs move as far when the operands move by "
                      "1e-6): %s" % (seed, "; ".join(problems)), flush=True)
            elif problems:
                found += 1
                os.makedirs(args.keep, exist_ok=True)
                shutil.copy(path, os.path.join(args.keep, "%d.weft" % seed))
                print("seed %d: %s" % (seed, "; ".join(problems)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("seeds %d..%d: %d mismatched, %d ill-conditioned, %d skipped (the interpreter refused them)" %
          (args.first, args.end - 1, found, sensitive, skipped))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
