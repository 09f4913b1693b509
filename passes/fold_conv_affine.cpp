// fold-conv-affine: a convolution followed by a chain of per-output-channel affine ops, as
// batch norm in evaluation form leaves it ((conv - mean) * scale + shift), becomes one
// convolution with its weights scaled per output channel plus one per-channel add, which
// the CPU backend runs as the convolution's bias. Algorithm, one forward sweep:
//  1. A chain is conv -> op -> ... -> op where each op is add, sub (chain - c) or mul with
//     a per-channel operand c (f32, 1 everywhere but the channel dim, right-aligned against
//     the conv's result), and the conv and every op but the last have one reader: the next.
//  2. At the chain's last op (its reader is no further op of a chain) the chain is
//     y = conv * A + B with A, B per channel: A multiplies the mul operands, B accumulates
//     adds and subtractions and is scaled by each later mul.
//  3. The last op is replaced by conv(x, w * A[o]) + B (A reshaped to [O, 1, ...] over the
//     weight's dims); the old conv and ops lose their readers and are dce's business.
// The weights and A, B are computed per run (a few thousand elements), the activation once.
#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "passes/builtin_passes.h"
#include "passes/rewriter.h"

namespace weft::passes {
namespace {

using ir::OpKind;
using ir::ValueId;

/// Per value: how many nodes (and outputs) read it, and the last node that does.
struct Readers {
  std::vector<int> count;
  std::vector<ValueId> last;

  explicit Readers(const ir::Graph& g)
      : count(static_cast<size_t>(g.size()), 0), last(static_cast<size_t>(g.size()), -1) {
    for (ValueId v = 0; v < g.size(); ++v)
      for (ValueId o : g.node(v).operands) {
        ++count[static_cast<size_t>(o)];
        last[static_cast<size_t>(o)] = v;
      }
    for (const auto& out : g.outputs()) ++count[static_cast<size_t>(out.value)];
  }
  /// The one node reading `v`, or -1 when there is not exactly one reader (or it is an output).
  ValueId only(ValueId v) const { return count[static_cast<size_t>(v)] == 1 ? last[static_cast<size_t>(v)] : -1; }
};

/// True when `t` holds one value per channel of a conv result of shape `out` ([N, O, ...]).
bool perChannel(const ir::TensorType& t, const ir::Shape& out) {
  if (t.dtype != ir::DType::f32 || t.shape.size() > out.size()) return false;
  size_t offset = out.size() - t.shape.size();
  for (size_t d = 0; d < t.shape.size(); ++d)
    if (t.shape[d] != 1 && !(d + offset == 1 && t.shape[d] == out[1])) return false;
  return true;
}

/// One step of a chain: node `v` applied to the chain value `chain` with operand `c`.
struct Link {
  OpKind op;
  ValueId chain, c;
};

/// The link node `v` is, or nullopt.
std::optional<Link> linkOf(const ir::Graph& g, ValueId v) {
  const ir::Node& n = g.node(v);
  if ((n.op != OpKind::Add && n.op != OpKind::Sub && n.op != OpKind::Mul) || n.operands.size() != 2) return std::nullopt;
  for (int side = 0; side < 2; ++side) {
    ValueId chain = n.operands[static_cast<size_t>(side)], c = n.operands[static_cast<size_t>(1 - side)];
    if (n.op == OpKind::Sub && side == 1) break;  // c - chain would negate A: not folded
    if (g.type(chain) != n.type) continue;
    if (perChannel(g.type(c), n.type.shape)) return Link{n.op, chain, c};
  }
  return std::nullopt;
}

/// The links from a conv to node `last` (in order) when they form a chain (step 1).
std::optional<std::vector<Link>> chainEndingAt(const ir::Graph& g, const Readers& readers, ValueId last) {
  std::vector<Link> links;
  ValueId v = last;
  while (auto link = linkOf(g, v)) {
    links.insert(links.begin(), *link);
    v = link->chain;
    if (readers.count[static_cast<size_t>(v)] != 1) return std::nullopt;
    const ir::Node& n = g.node(v);
    if (n.op == OpKind::Conv && !ir::isChannelsLast(n.op, n.attrs)) {  // channel axis 1
      if (n.type.dtype != ir::DType::f32 || n.type.shape.size() < 3) return std::nullopt;
      return links;
    }
  }
  return std::nullopt;
}

/// True when `v`'s only reader continues a chain through it.
bool chainContinues(const ir::Graph& g, const Readers& readers, ValueId v) {
  ValueId reader = readers.only(v);
  if (reader < 0) return false;
  auto link = linkOf(g, reader);
  return link && link->chain == v;
}

}  // namespace

bool foldConvAffine(ir::Graph& g) {
  Readers readers(g);
  return rewriteNodes(g, [&](Rewriter& rw, ValueId v) -> std::optional<ValueId> {
    const ir::Graph& s = rw.source();
    if (!linkOf(s, v) || chainContinues(s, readers, v)) return std::nullopt;
    auto links = chainEndingAt(s, readers, v);
    if (!links || (links->size() == 1 && links->front().op == OpKind::Add)) return std::nullopt;  // already a bias
    Emitter e = rw.emitterFor(v);
    std::optional<ValueId> scale, shift;  // y = conv * scale + shift
    for (const Link& link : *links) {
      ValueId c = rw.map(link.c);
      if (link.op == OpKind::Mul) {
        scale = scale ? e.mul(*scale, c) : c;
        if (shift) shift = e.mul(*shift, c);
      } else if (link.op == OpKind::Add) {
        shift = shift ? e.add(*shift, c) : c;
      } else {
        shift = shift ? e.sub(*shift, c) : e.neg(c);
      }
    }
    const ir::Node& conv = s.node(links->front().chain);
    ValueId weights = rw.map(conv.operands[1]);
    if (scale) {
      const ir::Shape& w = rw.target().type(weights).shape;
      ir::Shape perOutput(w.size(), 1);
      perOutput[0] = w[0];
      ValueId column = rw.target().type(*scale).numel() == w[0]
                           ? e.reshape(*scale, perOutput)
                           : e.op(OpKind::Broadcast, {e.reshape(*scale, ir::Shape(w.size(), 1))}, {{"shape", perOutput}});
      weights = e.mul(weights, column);
    }
    ValueId y = e.op(OpKind::Conv, {rw.map(conv.operands[0]), weights}, conv.attrs);
    return shift ? e.add(y, *shift) : y;
  });
}

}  // namespace weft::passes
