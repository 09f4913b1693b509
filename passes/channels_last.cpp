// channels-last: stores the activations around 2-D convolutions as [N, H, W, C] instead of
// [N, C, H, W], the layout oneDNN's fast convolution kernels read and write in place, so the
// convolution steps run no reorders (they were a fifth of a ResNet training step).
//
// Algorithm:
//  1. Roles. A rank-4 value is a candidate when its node is layout-transparent (elementwise,
//     broadcast, slice, pad, concat, reduce with keepdims: the same op on the permuted tensor
//     with permuted attributes) or a channels-first windowed op with a data result (conv,
//     conv_transpose, the pools). Candidates join the candidates they read, a
//     conv_weight_grad joins its two data operands: connected groups.
//  2. Choice. A group goes channels-last when it saves more conversions than it adds
//     transposes: each convolution's data edge (operand or result) in it saves one (pools
//     read row-major data as it is: they save nothing, but cost nothing inside); each large
//     value of it read by some other node (a reshape, a pool, an output) and each large
//     full-size operand from outside it costs two (kEdgeCost). Reductions without keepdims
//     read it in place (no cost).
//  3. Rewrite, one sweep. A chosen value's node is emitted on channels-last operands (its
//     chosen operands' new values, or transposes of the others: a lower-rank operand of a
//     numpy broadcast is first reshaped to rank 4); windowed nodes get channels_last=1.
//     Each chosen value also gets a transpose back to [N, C, H, W] for readers outside the
//     group (dce drops the unread ones); the channels-last value keeps the old name, the
//     transpose is NAME.nchw. A reduction without keepdims of a chosen value reduces
//     the permuted axes and transposes its (smaller) result back when its kept dims moved.
#include <algorithm>
#include <numeric>
#include <string>
#include <unordered_set>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "passes/builtin_passes.h"
#include "passes/rewriter.h"

namespace weft::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

constexpr size_t kRank = 4;
/// Tensors up to this many elements are transposed at a group's edge for free (statistics,
/// per-channel vectors).
constexpr int64_t kSmallTensor = 4096;
/// A transpose at a group's edge, in conversions saved: a gather in a generated kernel costs
/// about what two of oneDNN's reorders do.
constexpr int64_t kEdgeCost = 2;

bool isReduce(OpKind op) { return op == OpKind::ReduceSum || op == OpKind::ReduceMax || op == OpKind::ReduceMin; }

bool keepsDims(const Node& n) { return ir::AttrReader(n.attrs, n.op).i("keepdims") != 0; }

/// True for a windowed op (conv, conv_transpose, conv_weight_grad, the pools) on rank-4
/// channels-first data.
bool isWindowed(const Graph& g, const Node& n) {
  return ir::takesChannelsLast(n.op) && g.type(n.operands[0]).rank() == static_cast<int64_t>(kRank) &&
         !ir::isChannelsLast(n.op, n.attrs);
}

/// True for the convolutions: oneDNN converts their data unless it is channels-last, where
/// the pools read row-major data as it is.
bool savesConversions(OpKind op) { return op == OpKind::Conv || op == OpKind::ConvTranspose || op == OpKind::ConvWeightGrad; }

/// True when node `n` computes the same on channels-last operands with permuted attributes.
bool isTransparent(const Graph& g, const Node& n) {
  if (n.type.rank() != static_cast<int64_t>(kRank) || n.body) return false;
  for (ValueId o : n.operands)
    if (g.type(o).rank() > static_cast<int64_t>(kRank)) return false;
  if (ir::opInfo(n.op).has(ir::kElementwise)) return true;
  switch (n.op) {
    case OpKind::Broadcast:
    case OpKind::Slice:
    case OpKind::Pad:
    case OpKind::Concat: return true;
    default: return isReduce(n.op) && keepsDims(n);
  }
}

/// True when value `v` of `g` can be stored channels-last.
bool isCandidate(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  if (isWindowed(g, n)) return ir::hasDataResult(n.op);
  return isTransparent(g, n);
}

/// True when transposing a [N, C, H, W] tensor of `type` to or from channels-last costs a
/// copy: it is large and moves dims longer than 1 (one channel or one position is a reshape).
bool costsTranspose(const ir::TensorType& type) {
  if (type.numel() <= kSmallTensor || type.rank() != static_cast<int64_t>(kRank)) return type.numel() > kSmallTensor;
  return !ir::movesOnlyUnitDims(type.shape, ir::toChannelsLastPerm(kRank));
}

/// Disjoint sets over values.
struct Groups {
  std::vector<ValueId> parent;
  explicit Groups(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  ValueId find(ValueId v) {
    while (parent[static_cast<size_t>(v)] != v) v = parent[static_cast<size_t>(v)] = at(at(v));
    return v;
  }
  void join(ValueId a, ValueId b) { parent[static_cast<size_t>(find(a))] = find(b); }
  ValueId at(ValueId v) const { return parent[static_cast<size_t>(v)]; }
};

/// Steps 1 and 2 over graph `g`: the candidates, their groups, what each group saves and what
/// it costs.
class Choice {
 public:
  explicit Choice(const Graph& g) : g_(g), candidate_(static_cast<size_t>(g.size()), 0), groups_(candidate_.size()) {
    for (ValueId v = 0; v < g.size(); ++v) candidate_[static_cast<size_t>(v)] = isCandidate(g, v) ? 1 : 0;
    for (ValueId v = 0; v < g.size(); ++v) {
      if (isWindowed(g, g.node(v))) windowed(v);
      else if (isCand(v)) transparent(v);
    }
    chargeValuesReadOutside();
  }

  /// For every value, whether it goes channels-last: a candidate whose group saves more than
  /// it costs.
  std::vector<char> chosen() {
    std::vector<int64_t> saved(candidate_.size(), 0), added(candidate_.size(), 0);  // per group root
    for (auto [v, k] : savings_) saved[static_cast<size_t>(groups_.find(v))] += k;
    for (auto [v, k] : costs_) added[static_cast<size_t>(groups_.find(v))] += k;
    std::vector<char> chosen(candidate_.size(), 0);
    for (ValueId v = 0; v < g_.size(); ++v) {
      auto root = static_cast<size_t>(groups_.find(v));
      chosen[static_cast<size_t>(v)] = isCand(v) && saved[root] > added[root] ? 1 : 0;
    }
    return chosen;
  }

 private:
  bool isCand(ValueId v) const { return candidate_[static_cast<size_t>(v)] != 0; }

  /// A windowed node joins its candidate data operands and result; a convolution saves one
  /// conversion per such edge, an outside data operand costs a transpose in.
  void windowed(ValueId v) {
    const Node& n = g_.node(v);
    const int64_t saves = savesConversions(n.op) ? 1 : 0;
    std::vector<ValueId> data;
    for (size_t i = 0; i < n.operands.size(); ++i)
      if (ir::isDataOperand(n.op, i)) data.push_back(n.operands[i]);
    if (isCand(v)) data.push_back(v);
    ValueId anchor = -1;
    for (ValueId d : data)
      if (isCand(d)) {
        savings_.push_back({d, saves});
        if (anchor >= 0) groups_.join(anchor, d);
        anchor = d;
      }
    if (anchor < 0) return;
    for (ValueId d : data)
      if (!isCand(d) && costsTranspose(g_.type(d))) costs_.push_back({anchor, kEdgeCost});
  }

  /// A transparent node joins its candidate operands; a large full-size outside operand costs
  /// a transpose in.
  void transparent(ValueId v) {
    const Node& n = g_.node(v);
    for (ValueId o : n.operands) {
      if (isCand(o)) groups_.join(v, o);
      else if (g_.type(o).numel() == n.type.numel() && costsTranspose(g_.type(o))) costs_.push_back({v, kEdgeCost});
    }
  }

  /// A large candidate read outside its group (by a node that is no candidate, except the
  /// windowed ones and reductions without keepdims, which read it in place; or as an output
  /// or update) costs a transpose out.
  void chargeValuesReadOutside() {
    std::vector<char> readOutside(candidate_.size(), 0);
    for (ValueId v = 0; v < g_.size(); ++v) {
      const Node& n = g_.node(v);
      if (isCand(v) || isWindowed(g_, n) || (isReduce(n.op) && !keepsDims(n))) continue;
      for (ValueId o : n.operands) readOutside[static_cast<size_t>(o)] = 1;
    }
    for (const auto& out : g_.outputs()) readOutside[static_cast<size_t>(out.value)] = 1;
    for (const auto& u : g_.updates()) readOutside[static_cast<size_t>(u.value)] = 1;
    for (ValueId v = 0; v < g_.size(); ++v)
      if (isCand(v) && readOutside[static_cast<size_t>(v)] && costsTranspose(g_.type(v))) costs_.push_back({v, kEdgeCost});
  }

  const Graph& g_;
  std::vector<char> candidate_;
  Groups groups_;
  std::vector<std::pair<ValueId, int64_t>> savings_, costs_;  // (value, amount), charged to its group
};

/// `values` (one per dim of [N, C, H, W]) in [N, H, W, C] order.
std::vector<int64_t> permuted(const std::vector<int64_t>& values) { return ir::toChannelsLast(values); }

/// Where dim `axis` of [N, C, H, W] lies in [N, H, W, C].
int64_t lastPosition(int64_t axis) {
  std::vector<int64_t> perm = ir::toChannelsLastPerm(kRank);
  return std::find(perm.begin(), perm.end(), axis) - perm.begin();
}

/// The axes list `axes` of [N, C, H, W] as sorted axes of [N, H, W, C].
std::vector<int64_t> lastAxes(const std::vector<int64_t>& axes) {
  std::vector<int64_t> out;
  for (int64_t a : axes) out.push_back(lastPosition(a));
  std::sort(out.begin(), out.end());
  return out;
}

/// Step 3 for one sweep over the graph.
class Rewrite {
 public:
  Rewrite(const Graph& source, std::vector<char> chosen)
      : chosen_(std::move(chosen)), last_(static_cast<size_t>(source.size()), -1) {
    for (const Node& n : source.nodes())
      if (!n.name.empty()) names_.insert(n.name);
  }

  std::optional<ValueId> node(Rewriter& rw, ValueId v) {
    const Node& n = rw.source().node(v);
    if (chosen_[static_cast<size_t>(v)]) return chosenNode(rw, v, n);
    if (n.op == OpKind::ConvWeightGrad && isWindowed(rw.source(), n) &&
        (isChosen(n.operands[0]) || isChosen(n.operands[1]))) {
      ir::Attrs attrs = n.attrs;
      attrs["channels_last"] = int64_t{1};
      return rw.emitterFor(v).op(n.op, {lastOf(rw, v, n.operands[0]), lastOf(rw, v, n.operands[1])}, attrs);
    }
    if (isReduce(n.op) && !keepsDims(n) && isChosen(n.operands[0])) return reduction(rw, v, n);
    return std::nullopt;
  }

 private:
  bool isChosen(ValueId v) const { return chosen_[static_cast<size_t>(v)] != 0; }

  /// Old value `o` as a channels-last value of the new graph (for a reader made for `v`).
  ValueId lastOf(Rewriter& rw, ValueId v, ValueId o) {
    if (last_[static_cast<size_t>(o)] >= 0) return last_[static_cast<size_t>(o)];
    Emitter e = rw.emitterFor(v);
    ValueId x = rw.map(o);
    ir::Shape shape = e.shape(x);
    if (shape.size() < kRank && ir::numElements(shape) == 1) return last_[static_cast<size_t>(o)] = x;  // a scalar
    if (shape.size() < kRank) {  // numpy broadcasting aligns it to the right
      shape.insert(shape.begin(), kRank - shape.size(), 1);
      x = e.reshape(x, shape);
    }
    return last_[static_cast<size_t>(o)] = e.transpose(x, ir::toChannelsLastPerm(kRank));
  }

  ValueId chosenNode(Rewriter& rw, ValueId v, const Node& n) {
    std::vector<ValueId> operands;
    for (size_t i = 0; i < n.operands.size(); ++i) {
      bool weight = isWindowed(rw.source(), n) && !ir::isDataOperand(n.op, i);
      operands.push_back(weight ? rw.map(n.operands[i]) : lastOf(rw, v, n.operands[i]));
    }
    ir::Attrs attrs = n.attrs;
    ir::AttrReader a(n.attrs, n.op);
    if (isWindowed(rw.source(), n)) attrs["channels_last"] = int64_t{1};
    switch (n.op) {
      case OpKind::Broadcast: attrs["shape"] = permuted(a.ints("shape")); break;
      case OpKind::Slice:
        for (const char* name : {"start", "limit", "stride"}) attrs[name] = permuted(a.ints(name));
        break;
      case OpKind::Pad:
        for (const char* name : {"low", "high"}) attrs[name] = permuted(a.ints(name));
        break;
      case OpKind::Concat: attrs["axis"] = lastPosition(a.i("axis")); break;
      default:
        if (isReduce(n.op)) attrs["axes"] = lastAxes(a.ints("axes"));
        break;
    }
    Emitter e = rw.emitterFor(v);
    ValueId made = e.op(n.op, operands, attrs);
    if (e.shape(made) != ir::toChannelsLast(n.type.shape))
      throw std::logic_error("channels-last: " + std::string(ir::opName(n.op)) + " changed its shape");
    last_[static_cast<size_t>(v)] = made;
    ValueId back = e.transpose(made, ir::toChannelsFirstPerm(kRank));  // for readers outside the group
    nameBoth(rw, n.name, made, back);
    return back;
  }

  /// Names the channels-last value `made` like the old value and its transpose back
  /// `NAME.nchw` (which dce drops when nothing outside the group reads it), unless the source
  /// graph uses that name; then the rewriter's rule names the transpose. (The new graph holds
  /// only source names besides these: the old value's own name is still free here.)
  void nameBoth(Rewriter& rw, const std::string& name, ValueId made, ValueId back) {
    const std::string backName = name + ".nchw";
    if (name.empty() || names_.count(backName)) return;
    rw.target().node(made).name = name;
    rw.target().node(back).name = backName;
  }

  ValueId reduction(Rewriter& rw, ValueId v, const Node& n) {
    const std::vector<int64_t> axes = ir::AttrReader(n.attrs, n.op).ints("axes");
    Emitter e = rw.emitterFor(v);
    ir::Attrs attrs = n.attrs;
    attrs["axes"] = lastAxes(axes);
    ValueId r = e.op(n.op, {lastOf(rw, v, n.operands[0])}, attrs);
    // The kept dims, in [N, C, H, W] order and in the order the new reduction leaves them.
    std::vector<int64_t> kept, keptLast;
    for (int64_t d = 0; d < static_cast<int64_t>(kRank); ++d)
      if (std::find(axes.begin(), axes.end(), d) == axes.end()) kept.push_back(d);
    for (int64_t d : ir::toChannelsLastPerm(kRank))
      if (std::find(axes.begin(), axes.end(), d) == axes.end()) keptLast.push_back(d);
    if (kept == keptLast) return r;
    std::vector<int64_t> perm;
    for (int64_t d : kept) perm.push_back(std::find(keptLast.begin(), keptLast.end(), d) - keptLast.begin());
    return e.transpose(r, perm);
  }

  std::vector<char> chosen_;
  std::vector<ValueId> last_;  // old value -> its channels-last value in the new graph, or -1
  std::unordered_set<std::string> names_;  // the source graph's value names
};

}  // namespace

bool convertToChannelsLast(ir::Graph& g) {
  std::vector<char> chosen = Choice(g).chosen();
  if (std::none_of(chosen.begin(), chosen.end(), [](char c) { return c != 0; })) return false;
  Rewrite rewrite(g, std::move(chosen));
  return rewriteNodes(g, [&](Rewriter& rw, ValueId v) { return rewrite.node(rw, v); });
}

}  // namespace weft::passes
