// Channel-blocked storage of convolution data (see blocked_layout.h).
#include "runtime/cpu/blocked_layout.h"

#include <algorithm>
#include <numeric>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "ir/error.h"
#include "runtime/cpu/native_few_channels.h"
#include "runtime/cpu/native_steps.h"
#include "runtime/cpu/onednn_postops.h"
#include "runtime/cpu/program.h"

namespace weft::cpu {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::Shape;
using ir::ValueId;
using Ints = std::vector<int64_t>;

/// `shape` with leading 1s up to rank 4 (how elementwise ops broadcast a lower-rank operand).
Shape paddedToRank4(const Shape& shape) {
  Shape padded(4 - std::min<size_t>(shape.size(), 4), 1);
  padded.insert(padded.end(), shape.begin(), shape.end());
  return padded;
}

bool isReductionOp(OpKind op) { return op == OpKind::ReduceSum || op == OpKind::ReduceMax || op == OpKind::ReduceMin; }

/// Rewrites one body node by node (see blockedBody); `failed` once something does not carry over.
class BodyBlocker {
 public:
  explicit BodyBlocker(const Graph& body) : body_(body), out_(body.name() + "_blocked"), map_(body.size(), -1) {}

  std::optional<Graph> run() {
    for (ValueId v = 0; v < body_.size(); ++v) {
      ValueId mapped = rewrite(v);
      if (mapped < 0) return std::nullopt;
      map_[static_cast<size_t>(v)] = mapped;
    }
    for (const auto& output : body_.outputs()) {
      ValueId v = map_[static_cast<size_t>(output.value)];
      // Rows of channels read in row-major order are written as blocks of 16 (the same
      // bytes), so that the kernel's loops walk the blocks of the data it reads.
      const ir::Node& root = out_.node(v);
      const Shape& s = root.type.shape;
      if (body_.outputs().size() == 1 && !s.empty() && s.size() != 5 && s.back() > kChannelBlock &&
          s.back() % kChannelBlock == 0 && !isReductionOp(root.op)) {
        Shape split(s.begin(), s.end() - 1);
        split.insert(split.end(), {s.back() / kChannelBlock, kChannelBlock});
        v = out_.addOp(OpKind::Reshape, {v}, {{"shape", split}});
      }
      out_.addOutput(output.name, v);
    }
    return std::move(out_);
  }

 private:
  const Shape& shape(ValueId v) const { return body_.type(v).shape; }
  ValueId mapped(ValueId v) const { return map_[static_cast<size_t>(v)]; }

  /// The node copied with its operands renamed (its type does not change).
  ValueId copy(const Node& n) {
    Node c = n;
    for (ValueId& o : c.operands) o = mapped(o);
    return out_.addNode(std::move(c));
  }
  /// Operand `o` of a node whose result has rank 4, as a rank-5 value: rank-4 values are
  /// mapped already, scalars broadcast as they are, lower ranks are padded with leading 1s
  /// and viewed blocked; -1 for a channel count without a blocked view.
  ValueId asBlocked(ValueId o) {
    const Shape& s = shape(o);
    if (s.size() == 4 || s.empty()) return mapped(o);
    Shape padded = paddedToRank4(s);
    if (!blockedShape(padded)) return -1;
    return toBlockedView(out_.addOp(OpKind::Reshape, {mapped(o)}, {{"shape", padded}}), padded);
  }

  /// Blocked view `blocked` of rank-4 `s` as the row-major tensor of shape `s`.
  ValueId toRowMajor(ValueId blocked, const Shape& s) {
    if (blockingMovesData(s)) blocked = out_.addOp(OpKind::Transpose, {blocked}, {{"perm", Ints{0, 2, 3, 1, 4}}});
    return out_.addOp(OpKind::Reshape, {blocked}, {{"shape", s}});
  }
  /// Row-major rank-4 `x` of shape `s` as its blocked view.
  ValueId toBlockedView(ValueId x, const Shape& s) {
    const Shape blocked = *blockedShape(s);
    if (!blockingMovesData(s)) return out_.addOp(OpKind::Reshape, {x}, {{"shape", blocked}});
    ValueId split = out_.addOp(OpKind::Reshape, {x}, {{"shape", Shape{s[0], s[1], s[2], blocked[1], blocked[4]}}});
    return out_.addOp(OpKind::Transpose, {split}, {{"perm", Ints{0, 3, 1, 2, 4}}});
  }
  /// Node `n` as it is, over its rank-4 operands in row-major order, its rank-4 result then
  /// viewed blocked (movement ops: slices, pads, transposes; the kernel indexes through).
  ValueId inRowMajorOrder(const Node& n) {
    Node c = n;
    for (ValueId& o : c.operands) {
      const Shape& s = shape(o);
      if (s.size() == 4 && !blockedShape(s)) return -1;
      o = s.size() == 4 ? toRowMajor(mapped(o), s) : mapped(o);
    }
    ValueId r = out_.addNode(std::move(c));
    if (n.type.shape.size() != 4) return r;
    return blockedShape(n.type.shape) ? toBlockedView(r, n.type.shape) : -1;
  }

  ValueId rewrite(ValueId v) {
    const Node& n = body_.node(v);
    const bool rank4 = n.type.shape.size() == 4;
    bool readsRank4 = false;
    for (ValueId o : n.operands) readsRank4 = readsRank4 || shape(o).size() == 4;
    if (!rank4 && !readsRank4) return n.op == OpKind::Input ? out_.addInput(n.name, n.type) : copy(n);
    switch (n.op) {
      case OpKind::Input: {
        auto blocked = blockedShape(n.type.shape);
        return blocked ? out_.addInput(n.name, {n.type.dtype, *blocked}) : -1;
      }
      case OpKind::Reshape: {
        const Shape &from = shape(n.operands[0]), &to = n.type.shape;
        for (const Shape* side : {&from, &to})
          if (side->size() == 4 && !blockedShape(*side)) return -1;
        auto keeps = [](const Shape& side) { return side.size() != 4 || !blockingMovesData(side); };
        if (keeps(from) && keeps(to))  // both blocked views are the buffer as it is
          return out_.addOp(OpKind::Reshape, {mapped(n.operands[0])}, {{"shape", rank4 ? *blockedShape(to) : to}});
        ValueId x = from.size() == 4 ? toRowMajor(mapped(n.operands[0]), from) : mapped(n.operands[0]);
        x = out_.addOp(OpKind::Reshape, {x}, {{"shape", to}});
        return rank4 ? toBlockedView(x, to) : x;
      }
      case OpKind::Broadcast: {
        auto blocked = blockedShape(n.type.shape);
        ValueId x = asBlocked(n.operands[0]);
        if (!blocked || x < 0) return -1;
        return out_.addOp(OpKind::Broadcast, {x}, {{"shape", *blocked}});
      }
      case OpKind::ReduceSum:
      case OpKind::ReduceMax:
      case OpKind::ReduceMin: return reduce(v, n);
      default: break;
    }
    if (!ir::opInfo(n.op).has(ir::kElementwise)) return inRowMajorOrder(n);
    if (!rank4 || !blockedShape(n.type.shape)) return -1;
    std::vector<ValueId> operands;
    for (ValueId o : n.operands) {
      operands.push_back(asBlocked(o));
      if (operands.back() < 0) return -1;
    }
    return out_.addOp(n.op, operands, n.attrs);
  }

  /// A reduction of a rank-4 value: its axes on the blocked view (channels: dims 1 and 4).
  /// One that drops its dims stays the body's root (the kernels end in their reduction),
  /// with a shape of its own: allowed where the kept dims keep their bytes' order, so the
  /// same buffer holds it (reducing [N, H, W, C] over N, H, W gives [C/16, 16] for [C]).
  ValueId reduce(ValueId v, const Node& n) {
    const Shape& in = shape(n.operands[0]);
    if (in.size() != 4 || !blockedShape(in)) return -1;
    ir::AttrReader attr(n.attrs, n.op);
    std::vector<int64_t> axes;
    Shape kept = in;
    static constexpr int64_t kBlockedAxis[3] = {0, 2, 3};
    for (int64_t a : attr.ints("axes")) {
      if (a < 0 || a > 3) return -1;
      kept[static_cast<size_t>(a)] = 1;
      if (a == 3) axes.insert(axes.end(), {1, 4});
      else axes.push_back(kBlockedAxis[a]);
    }
    std::sort(axes.begin(), axes.end());
    const int64_t keepdims = attr.i("keepdims");
    bool isOutput = false;  // the root, or a side sum (ir/side_sums.h): no value of the body reads it
    for (const auto& output : body_.outputs()) isOutput = isOutput || output.value == v;
    if (keepdims == 0 && !isOutput) return -1;
    if (body_.outputs()[0].value != v && in.back() > 1 && std::find(axes.begin(), axes.end(), 4) != axes.end())
      return -1;  // a row body's reduction of the channels: the rows as stored
    if (keepdims == 0 && blockingMovesData(kept)) return inRowMajorOrder(n);
    const bool perChannel = kept == Shape{1, 1, 1, in[3]} && in[3] > kChannelBlock;
    if (perChannel && body_.outputs()[0].value == v) {
      // Per-channel sums (batch norm's) read the blocks of one position together, so that each
      // step of the reduction adds C channels into the accumulators as channels-last data does,
      // not 16: [N, H, W, C/16, 16] over N, H, W (the same bytes as the blocked result).
      ValueId positions = out_.addOp(OpKind::Transpose, {mapped(n.operands[0])}, {{"perm", Ints{0, 2, 3, 1, 4}}});
      return out_.addOp(n.op, {positions}, {{"axes", Ints{0, 1, 2}}, {"keepdims", keepdims}});
    }
    return out_.addOp(n.op, {mapped(n.operands[0])}, {{"axes", axes}, {"keepdims", keepdims}});
  }

  const Graph& body_;
  Graph out_;
  std::vector<ValueId> map_;
};

/// The facts blockedValues decides by.
struct Facts {
  const Graph& g;
  std::vector<std::vector<std::pair<ValueId, size_t>>> readers;  ///< (node, operand index) per value
  std::vector<bool> pinned;                                       ///< an output or update value
  std::vector<int8_t> kernelBlocks;  ///< per node: -1 not a kernel, 0 body does not carry over, 1 it does

  Facts(const Graph& graph, const std::function<bool(ValueId)>& runsKernel)
      : g(graph), readers(static_cast<size_t>(graph.size())), pinned(static_cast<size_t>(graph.size()), false),
        kernelBlocks(static_cast<size_t>(graph.size()), -1) {
    for (ValueId v = 0; v < g.size(); ++v)
      for (size_t i = 0; i < g.node(v).operands.size(); ++i)
        readers[static_cast<size_t>(g.node(v).operands[i])].emplace_back(v, i);
    for (const auto& out : g.outputs()) pinned[static_cast<size_t>(out.value)] = true;
    for (const auto& u : g.updates()) pinned[static_cast<size_t>(u.value)] = true;
    for (ValueId v = 0; v < g.size(); ++v)
      if (runsGeneratedKernel(g.node(v)) && (!runsKernel || runsKernel(v)))
        kernelBlocks[static_cast<size_t>(v)] = 0;
  }

  bool isKernel(ValueId v) const { return kernelBlocks[static_cast<size_t>(v)] >= 0; }
  /// True when kernel v's body carries over to blocked views (computed once).
  bool kernelCarriesOver(ValueId v) {
    int8_t& state = kernelBlocks[static_cast<size_t>(v)];
    if (state == 0) state = blockedBody(*g.node(v).body) ? 1 : 2;
    return state == 1;
  }
};

/// The conv of a fused node of kind "conv" whose data are its input, its result and at most
/// one residual: conv(in0, in1) followed by elementwise ops with per-channel or scalar
/// operands (bias, activations), which oneDNN runs as bias and post-ops, and at most one
/// input of the result's type that a single add reads (the residual, which oneDNN's sum
/// post-op adds from the destination); `residual` is set to that input's operand index, or
/// -1. Null for anything else.
const Node* fusedConvOf(const Node& n, int* residual = nullptr) {
  if (residual) *residual = -1;
  if (n.op != OpKind::Fused || !n.body || ir::AttrReader(n.attrs, n.op).s("kind") != "conv") return nullptr;
  const Graph& body = *n.body;
  const std::vector<ValueId> inputs = body.inputs();
  const Node* conv = nullptr;
  for (const Node& b : body.nodes())
    if (b.op == OpKind::Conv) conv = conv ? nullptr : &b;
  if (!conv || inputs.size() < 2 || conv->operands != std::vector<ValueId>{inputs[0], inputs[1]}) return nullptr;
  if (!onednn::parseFusedContraction(body)) return nullptr;  // no oneDNN step will take it as it is
  const int64_t channels = n.type.shape.empty() ? 0 : n.type.shape.back();
  int found = -1;
  for (size_t k = 2; k < inputs.size(); ++k) {
    if (body.type(inputs[k]).numel() <= channels) continue;
    int readers = 0;
    bool added = true;
    for (const Node& b : body.nodes())
      for (ValueId o : b.operands)
        if (o == inputs[k]) ++readers, added = added && b.op == OpKind::Add;
    if (found >= 0 || body.type(inputs[k]) != n.type || readers != 1 || !added) return nullptr;
    found = static_cast<int>(k);
  }
  if (residual) *residual = found;
  return conv;
}

/// True when conv-family node `v` reads operand `index` (-1: writes its result) as a whole
/// channels-last tensor oneDNN can take blocked (see the geometry notes in onednn_conv.cpp).
bool convTakesBlocked(const Graph& g, ValueId v, int index) {
  const Node& outer = g.node(v);
  int residual = -1;
  const Node* fusedConv = fusedConvOf(outer, &residual);
  if (fusedConv && index > 0 && index != residual) return false;  // its weight or a per-channel operand
  const Node& n = fusedConv ? *fusedConv : outer;
  if (n.op != OpKind::Conv && n.op != OpKind::ConvTranspose && n.op != OpKind::ConvWeightGrad) return false;
  if (!ir::isChannelsLast(n.op, n.attrs) || n.type.dtype != ir::DType::f32 || outer.operands.size() < 2 ||
      (!fusedConv && outer.operands.size() != 2))
    return false;
  ir::AttrReader attr(n.attrs, n.op);
  if (attr.i("groups") != 1 || runsFewChannelConv(g, v) || nativeStepFor(g, v)) return false;
  const auto &stride = attr.ints("stride"), &padding = attr.ints("padding"), &dilation = attr.ints("dilation");
  // The extents a window of `taps` taps reaches from `in` positions.
  auto reaches = [&](const Shape& from, const Shape& taps, const Shape& extent) {
    for (size_t d = 0; d < 2; ++d) {
      int64_t reach = (from[d + 1] - 1) * stride[d] - padding[d] + dilation[d] * (taps[d] - 1) + 1;
      if (reach < extent[d + 1]) return false;
    }
    return true;
  };
  const Shape &x = g.type(outer.operands[0]).shape, &second = g.type(outer.operands[1]).shape;
  switch (n.op) {
    case OpKind::Conv: return index == 0 || index == -1 || index == residual;
    case OpKind::ConvTranspose:  // its result whole only where some input reaches every position
      return index == 0 || (index == -1 && reaches(x, {second[2], second[3]}, n.type.shape));
    default: {  // conv_weight_grad(x, dy): x whole only where dy's windows read all of it
      if (index == 1) return true;
      return index == 0 && reaches(second, attr.ints("kernel"), x);
    }
  }
}

/// True when pooling node `v` (max_pool, avg_pool) reads its operand (`index` 0) or writes
/// its result (-1) as a whole channels-last 2-D f32 tensor, which oneDNN's pooling takes
/// blocked (padding short of a window, as compilePool wants).
bool poolTakesBlocked(const Graph& g, ValueId v, int index) {
  const Node& n = g.node(v);
  if ((n.op != OpKind::MaxPool && n.op != OpKind::AvgPool) || index > 0) return false;
  if (!ir::isChannelsLast(n.op, n.attrs) || n.type.dtype != ir::DType::f32 || n.type.rank() != 4) return false;
  ir::AttrReader attr(n.attrs, n.op);
  const Ints &window = attr.ints("window"), &padding = attr.ints("padding");
  for (size_t d = 0; d < window.size(); ++d)
    if (padding[d] >= window[d]) return false;
  return !nativeStepFor(g, v);
}

/// Disjoint sets of values.
struct Components {
  std::vector<ValueId> parent;
  explicit Components(int32_t n) : parent(static_cast<size_t>(n)) { std::iota(parent.begin(), parent.end(), 0); }
  ValueId find(ValueId v) {
    while (parent[static_cast<size_t>(v)] != v) v = parent[static_cast<size_t>(v)] = parent[static_cast<size_t>(parent[static_cast<size_t>(v)])];
    return v;
  }
  void join(ValueId a, ValueId b) { parent[static_cast<size_t>(find(a))] = find(b); }
};

}  // namespace

bool channelBlocksFit() {
  static const bool fit = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
    return (isa & avx512) == avx512;  // each ISA's value holds the bits of those it extends
  }();
  return fit;
}

std::optional<Shape> blockedShape(const Shape& shape) {
  if (shape.size() != 4) return std::nullopt;
  const int64_t channels = shape[3];
  if (channels == 1) return Shape{shape[0], 1, shape[1], shape[2], 1};
  if (channels % kChannelBlock != 0) return std::nullopt;
  return Shape{shape[0], channels / kChannelBlock, shape[1], shape[2], kChannelBlock};
}

bool blockingMovesData(const Shape& shape) {
  return shape.size() == 4 && shape[3] > kChannelBlock && shape[1] * shape[2] > 1;
}

std::optional<Graph> blockedBody(const Graph& body) { return BodyBlocker(body).run(); }

std::vector<bool> blockedValues(const Graph& g, const MemoryPlan& plan, const std::function<bool(ValueId)>& runsKernel,
                                bool blocking) {
  if (!blocking) return std::vector<bool>(static_cast<size_t>(g.size()), false);
  Facts facts(g, runsKernel);
  auto isData = [&](ValueId v) {
    const ir::TensorType& t = g.type(v);
    return t.dtype == ir::DType::f32 && blockingMovesData(t.shape) && blockedShape(t.shape).has_value();
  };
  // A value may be blocked on its own: stored in the arena, pinned by nothing, written and
  // read only by steps that take it blocked.
  auto takesBlocked = [&](ValueId node, int index) {
    return convTakesBlocked(g, node, index) || poolTakesBlocked(g, node, index) || nativeTakesBlocked(g, node, index) ||
           (facts.isKernel(node) && facts.kernelCarriesOver(node));
  };
  std::vector<bool> eligible(static_cast<size_t>(g.size()), false), touchesConv(static_cast<size_t>(g.size()), false);
  for (ValueId v = 0; v < g.size(); ++v) {
    const auto i = static_cast<size_t>(v);
    if (!isData(v) || facts.pinned[i] || plan.values[i].storage != Storage::Arena) continue;
    bool ok = takesBlocked(v, -1);
    bool conv = convTakesBlocked(g, v, -1);
    for (const auto& [reader, index] : facts.readers[i]) {
      ok = ok && takesBlocked(reader, static_cast<int>(index));
      conv = conv || convTakesBlocked(g, reader, static_cast<int>(index));
    }
    eligible[i] = ok;
    touchesConv[i] = conv;
  }
  // The data of a node: its rank-4 operands and result that blocking moves.
  auto dataOf = [&](ValueId v) {
    std::vector<ValueId> data;
    if (isData(v)) data.push_back(v);
    for (ValueId o : g.node(v).operands)
      if (isData(o) && std::find(data.begin(), data.end(), o) == data.end()) data.push_back(o);
    return data;
  };
  // A kernel's data go together: blocked all or none.
  Components parts(g.size());
  auto joinAll = [&](const std::vector<ValueId>& data) {
    for (size_t k = 1; k < data.size(); ++k) parts.join(data[0], data[k]);
  };
  for (ValueId v = 0; v < g.size(); ++v)
    if (facts.isKernel(v)) {
      joinAll(dataOf(v));
    } else if (int residual = -1; fusedConvOf(g.node(v), &residual) && residual > 0) {
      parts.join(g.node(v).operands[static_cast<size_t>(residual)], v);  // the sum post-op starts from it
    }
  std::vector<bool> blocked(static_cast<size_t>(g.size()), false);
  auto decide = [&] {
    std::vector<bool> ok(static_cast<size_t>(g.size()), true), anyConv(static_cast<size_t>(g.size()), false);
    for (ValueId v = 0; v < g.size(); ++v) {
      if (!isData(v)) continue;
      const auto root = static_cast<size_t>(parts.find(v));
      ok[root] = ok[root] && eligible[static_cast<size_t>(v)];
      anyConv[root] = anyConv[root] || touchesConv[static_cast<size_t>(v)];
    }
    for (ValueId v = 0; v < g.size(); ++v) {
      const auto root = static_cast<size_t>(parts.find(v));
      blocked[static_cast<size_t>(v)] = isData(v) && ok[root] && anyConv[root];
    }
  };
  // A convolution with data in both layouts converts the row-major ones in copies; where the
  // arena has no room for them at its step, its data go together too (decided again, since
  // a joined part may fall back to row-major and leave another convolution mixed).
  for (int round = 0; round < 8; ++round) {
    decide();
    bool joined = false;
    for (ValueId v = 0; v < g.size(); ++v) {
      const Node& n = g.node(v);
      if (n.op != OpKind::Conv && n.op != OpKind::ConvTranspose && n.op != OpKind::ConvWeightGrad &&
          !fusedConvOf(n))
        continue;
      std::vector<ValueId> data = dataOf(v);
      int64_t copies = 0;
      bool anyBlocked = false;
      for (ValueId d : data) {
        anyBlocked = anyBlocked || blocked[static_cast<size_t>(d)];
        if (!blocked[static_cast<size_t>(d)]) copies += static_cast<int64_t>(g.type(d).byteSize());
      }
      if (!anyBlocked || copies == 0) continue;
      const bool room = copies <= plan.values[static_cast<size_t>(v)].scratchBytes || freeArenaOffset(plan, v, copies) >= 0;
      if (room) continue;
      for (ValueId d : data)
        if (parts.find(d) != parts.find(data[0])) joined = true;
      joinAll(data);
    }
    if (!joined) break;
  }
  decide();
  return blocked;
}

}  // namespace weft::cpu
