// Dimension coalescing of kernel bodies. Algorithm:
//  1. The iteration space starts as the output's shape, or for an output reduction its
//     operand's (the root): one iteration dim per root dim, each reduced or kept.
//  2. The aligned values are those read at the iteration's index; each gets a map from its
//     own dims to runs of iteration dims. The root's dim i is iteration dim i. Operands of
//     elementwise ops and broadcasts align numpy-style (right-aligned) with their consumer's
//     dims; an extent-1 dim against a longer one is broadcast (it spans no iteration dim).
//     A reshape's operand aligns when its dims and the reshape's (spanned runs) share a
//     refinement: the union of both shapes' suffix products forms a divisor chain. The
//     iteration dims are then split at the operand's cuts (group norm's [N,G,C/G*H*W] view of
//     [N,C,H,W] splits C into [G, C/G]), so that the reshape reads index for index; without
//     one, the operand keeps its shape and is read through the reshape's index map. A
//     transpose of a body input aligns that input with its dims permuted (its dims then span
//     iteration dims out of their order): a flatten of channels-last data, [N,H,W,C] read as
//     [N, C*H*W], loops over [N, C, H*W] reading [N, H*W, C], instead of working out four
//     coordinates from each element's index. Any other op among the aligned values, or
//     another consumer of one, stops here.
//  3. Iteration dims of extent 1 are dropped; adjacent ones merge when every aligned value
//     spans both (one right after the other among its own dims) or neither, and both are
//     reduced or both kept; a reduction of every dim keeps its first one apart (see
//     kMinFullReductionRow).
//  4. A copy of the body gets each aligned value's shape over the merged dims (the product
//     of those it spans, else 1; a transposed input's in its own order, its transpose's
//     perm to match), with its broadcast or reshape shape, constant type and the
//     reduction's axes to match. The copy is verified (types re-inferred); a copy that does
//     not verify is dropped.
#include "backends/cpu/codegen/coalesce_dims.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "ir/attrs.h"
#include "ir/ops.h"
#include "backends/cpu/codegen/kernel_plan.h"
#include "ir/verifier.h"

namespace weft::cpu::codegen {
namespace {

using ir::OpKind;
using ir::Shape;
using ir::ValueId;

/// Iteration dims are named by ids; `order` lists them outermost first.
using DimRun = std::vector<int>;

/// The iteration space and how every aligned value maps onto it (steps 1-2).
class IterationSpace {
 public:
  IterationSpace(const ir::Graph& g, ValueId root, const std::vector<bool>& reducedRootDims) : g_(g) {
    const Shape& shape = g.type(root).shape;
    maps_.resize(static_cast<size_t>(g.size()));
    std::vector<DimRun> rootMap;
    for (size_t d = 0; d < shape.size(); ++d) {
      int id = newDim(shape[d], reducedRootDims[d]);
      order_.push_back(id);
      rootMap.push_back({id});
    }
    maps_[static_cast<size_t>(root)] = std::move(rootMap);
  }

  /// Aligns everything read from `root`; false when a value is read in a way step 2 stops at.
  bool alignFrom(ValueId root) {
    std::vector<ValueId> work = {root};
    std::vector<bool> done(static_cast<size_t>(g_.size()), false);
    while (!work.empty()) {
      ValueId v = work.back();
      work.pop_back();
      if (done[static_cast<size_t>(v)]) continue;
      done[static_cast<size_t>(v)] = true;
      const ir::Node& n = g_.node(v);
      if (n.op == OpKind::Input || n.op == OpKind::Constant) continue;
      if (n.op == OpKind::Reshape) {
        if (alignReshapeOperand(v)) work.push_back(n.operands[0]);
        continue;
      }
      if (n.op == OpKind::Transpose) {  // of an input, which needs no aligning beyond its own
        if (g_.node(n.operands[0]).op != OpKind::Input || !alignTransposeOperand(v)) return false;
        continue;
      }
      if (n.op != OpKind::Broadcast && !ir::opInfo(n.op).has(ir::kElementwise)) return false;
      for (ValueId o : n.operands) {
        if (!alignBroadcast(v, o)) return false;
        work.push_back(o);
      }
    }
    return true;
  }

  /// True when `v` is aligned.
  bool aligned(ValueId v) const { return maps_[static_cast<size_t>(v)].has_value(); }
  /// The iteration dims `v` spans (those of its own dims whose extent is not 1).
  std::vector<bool> spanned(ValueId v) const {
    std::vector<bool> spans(extents_.size(), false);
    for (int id : spannedRun(v)) spans[static_cast<size_t>(id)] = true;
    return spans;
  }
  /// The iteration dims, outermost first.
  const std::vector<int>& order() const { return order_; }
  /// The extent of iteration dim `id`.
  int64_t extent(int id) const { return extents_[static_cast<size_t>(id)]; }
  /// True when iteration dim `id` is reduced.
  bool reduced(int id) const { return reduced_[static_cast<size_t>(id)]; }

 private:
  int newDim(int64_t extent, bool reduced) {
    extents_.push_back(extent);
    reduced_.push_back(reduced);
    return static_cast<int>(extents_.size()) - 1;
  }

  int64_t product(const DimRun& run) const {
    int64_t p = 1;
    for (int id : run) p *= extent(id);
    return p;
  }

  /// Gives `v` the map `map`, or checks it against the one it has (spanned dims only).
  bool assign(ValueId v, std::vector<DimRun> map) {
    auto& slot = maps_[static_cast<size_t>(v)];
    const Shape& shape = g_.type(v).shape;
    if (!slot) {
      slot = std::move(map);
      return true;
    }
    for (size_t j = 0; j < shape.size(); ++j)
      if (shape[j] != 1 && (*slot)[j] != map[j]) return false;
    return true;
  }

  /// Aligns operand `o` of elementwise op or broadcast `v` (right-aligned).
  bool alignBroadcast(ValueId v, ValueId o) {
    const auto& map = *maps_[static_cast<size_t>(v)];
    const Shape &shape = g_.type(v).shape, &operand = g_.type(o).shape;
    if (operand.size() > shape.size()) return false;
    size_t offset = shape.size() - operand.size();
    std::vector<DimRun> operandMap;
    for (size_t j = 0; j < operand.size(); ++j) {
      if (operand[j] != 1 && operand[j] != shape[j + offset]) return false;
      operandMap.push_back(map[j + offset]);
    }
    return assign(o, std::move(operandMap));
  }

  /// Splits iteration dim `id` into dims of `factors` (outermost first) everywhere.
  void split(int id, const std::vector<int64_t>& factors) {
    DimRun parts;
    for (int64_t f : factors) parts.push_back(newDim(f, reduced(id)));
    auto replace = [&](DimRun& run) {
      auto it = std::find(run.begin(), run.end(), id);
      if (it == run.end()) return;
      it = run.erase(it);
      run.insert(it, parts.begin(), parts.end());
    };
    replace(order_);
    for (auto& map : maps_)
      if (map)
        for (DimRun& run : *map) replace(run);
  }

  /// Aligns the operand of transpose `v`: its dim perm[i] is the transpose's dim i.
  bool alignTransposeOperand(ValueId v) {
    const std::vector<int64_t> perm = ir::AttrReader(g_.node(v).attrs, OpKind::Transpose).ints("perm");
    const auto& map = *maps_[static_cast<size_t>(v)];
    std::vector<DimRun> operandMap(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) operandMap[static_cast<size_t>(perm[i])] = map[i];
    return assign(g_.node(v).operands[0], std::move(operandMap));
  }

 public:
  /// The iteration dims aligned value `v` spans, in its own (row-major) order.
  DimRun spannedRun(ValueId v) const {
    const Shape& shape = g_.type(v).shape;
    const std::vector<DimRun>& map = *maps_[static_cast<size_t>(v)];
    DimRun run;
    for (size_t j = 0; j < shape.size(); ++j)
      if (shape[j] != 1) run.insert(run.end(), map[j].begin(), map[j].end());
    return run;
  }

 private:
  /// Aligns the operand of reshape `v` through a shared refinement (step 2); false when the
  /// shapes have none (the operand then stays unaligned).
  bool alignReshapeOperand(ValueId v) {
    ValueId o = g_.node(v).operands[0];
    DimRun run = spannedRun(v);
    std::vector<int64_t> cuts = {1};  // suffix products of both shapes
    for (size_t k = run.size(); k-- > 0;) cuts.push_back(cuts.back() * extent(run[k]));
    int64_t total = 1;
    const Shape& operand = g_.type(o).shape;
    for (size_t j = operand.size(); j-- > 0;) cuts.push_back(total *= operand[j]);
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    for (size_t k = 1; k < cuts.size(); ++k)
      if (cuts[k] % cuts[k - 1] != 0) return false;
    // Split each spanned dim at the cuts strictly inside its range of suffix products.
    int64_t inner = 1;
    for (size_t k = run.size(); k-- > 0;) {
      int64_t outer = inner * extent(run[k]);
      std::vector<int64_t> factors;
      int64_t below = outer;
      for (size_t c = cuts.size(); c-- > 0;)
        if (cuts[c] < outer && cuts[c] >= inner) {
          factors.push_back(below / cuts[c]);
          below = cuts[c];
        }
      if (factors.size() > 1) split(run[k], factors);
      inner = outer;
    }
    run = spannedRun(v);  // refined
    std::vector<DimRun> operandMap;
    size_t next = 0;
    for (int64_t extentOfDim : operand) {
      DimRun dims;
      while (extentOfDim != 1 && product(dims) < extentOfDim && next < run.size()) dims.push_back(run[next++]);
      if (product(dims) != extentOfDim) return false;
      operandMap.push_back(std::move(dims));
    }
    return assign(o, std::move(operandMap));
  }

  const ir::Graph& g_;
  std::vector<int64_t> extents_;  ///< by dim id
  std::vector<bool> reduced_;     ///< by dim id
  std::vector<int> order_;        ///< the current dims, outermost first
  std::vector<std::optional<std::vector<DimRun>>> maps_;  ///< per value: own dim -> iteration dims
};

/// True when some live consumer other than a reshape or the output reduction reads an
/// aligned value without being aligned itself (its shape would change under it).
bool readElsewhere(const ir::Graph& g, const IterationSpace& space, ValueId out) {
  std::vector<bool> live = reachable(g, out);
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (!live[static_cast<size_t>(v)] || space.aligned(v) || v == out || n.op == OpKind::Reshape) continue;
    for (ValueId o : n.operands)
      if (space.aligned(o)) return true;
  }
  return false;
}

}  // namespace

std::optional<ir::Graph> coalesceDims(const ir::Graph& body) {
  if (body.outputs().size() != 1) return std::nullopt;
  ValueId out = body.outputs()[0].value;
  if (out < 0 || out >= body.size()) return std::nullopt;
  const ir::Node& outNode = body.node(out);
  for (ValueId v = 0; v < body.size(); ++v)  // a row body (reductions inside) loops over its rows as they are
    if (v != out && isReduction(body.node(v).op)) return std::nullopt;
  bool reduces = isReduction(outNode.op);
  std::vector<int64_t> axes;
  if (reduces) {
    axes = ir::AttrReader(outNode.attrs, outNode.op).ints("axes");
    if (axes.empty()) return std::nullopt;
  }
  ValueId root = reduces ? outNode.operands[0] : out;
  std::vector<bool> reducedRootDims(body.type(root).shape.size(), false);
  for (int64_t a : axes) reducedRootDims[static_cast<size_t>(a)] = true;

  IterationSpace space(body, root, reducedRootDims);
  if (!space.alignFrom(root) || readElsewhere(body, space, out)) return std::nullopt;

  // Step 3: merge adjacent dims that every aligned value spans alike.
  std::vector<std::vector<bool>> spans(static_cast<size_t>(body.size()));  // empty: not aligned
  std::vector<DimRun> runs(static_cast<size_t>(body.size()));             // the dims each spans, in its order
  for (ValueId v = 0; v < body.size(); ++v)
    if (space.aligned(v)) {
      spans[static_cast<size_t>(v)] = space.spanned(v);
      runs[static_cast<size_t>(v)] = space.spannedRun(v);
    }
  // True when aligned value v spans iteration dim `next` right after dim `previous`.
  auto follows = [&](ValueId v, int previous, int next) {
    const DimRun& run = runs[static_cast<size_t>(v)];
    auto at = std::find(run.begin(), run.end(), previous);
    return at != run.end() && at + 1 != run.end() && *(at + 1) == next;
  };
  std::vector<DimRun> groups;
  // An f32 sum of every dim keeps its first dim apart from a long rest, so that its kernel's
  // calls can split that dim into partial sums (kernel_plan.cpp) instead of one call folding
  // it all (vae's loss over [128, 784] on one thread).
  std::vector<int> dims;
  for (int id : space.order())
    if (space.extent(id) != 1) dims.push_back(id);
  bool reducesAll = reduces && outNode.op == OpKind::ReduceSum && outNode.type.dtype == ir::DType::f32 && !dims.empty();
  int64_t rest = 1;
  for (size_t k = 0; k < dims.size(); ++k) {
    reducesAll = reducesAll && space.reduced(dims[k]);
    if (k > 0) rest *= space.extent(dims[k]);
  }
  const bool firstApart = reducesAll && space.extent(dims[0]) >= kMinPartialExtent && rest >= kMinFullReductionRow;
  for (int id : space.order()) {
    if (space.extent(id) == 1) continue;  // spans nothing: every shape drops it
    bool joins = !groups.empty() && space.reduced(id) == space.reduced(groups.back()[0]) &&
                 !(firstApart && groups.size() == 1 && groups[0][0] == dims[0]);
    for (ValueId v = 0; v < body.size() && joins; ++v) {
      const std::vector<bool>& s = spans[static_cast<size_t>(v)];
      if (s.empty()) continue;
      const bool spansId = s[static_cast<size_t>(id)];
      joins = spansId == s[static_cast<size_t>(groups.back()[0])] && (!spansId || follows(v, groups.back().back(), id));
    }
    if (joins) groups.back().push_back(id);
    else groups.push_back({id});
  }

  if (groups.empty()) return std::nullopt;

  // Step 4: the rewritten copy.
  ir::Graph copy = body;
  bool changed = false;
  // A transposed input's dims in its own order: the groups it spans by where they begin in
  // its run, then those it does not (extent 1); `order[j]` is the group of its dim j.
  auto ownOrder = [&](ValueId v) {
    const DimRun& run = runs[static_cast<size_t>(v)];
    const std::vector<bool>& s = spans[static_cast<size_t>(v)];
    std::vector<size_t> order, rest;
    for (int id : run)
      for (size_t k = 0; k < groups.size(); ++k)
        if (groups[k][0] == id) order.push_back(k);
    for (size_t k = 0; k < groups.size(); ++k)
      if (!s[static_cast<size_t>(groups[k][0])]) rest.push_back(k);
    order.insert(order.end(), rest.begin(), rest.end());
    return order;
  };
  std::vector<std::vector<ValueId>> transposesOf(static_cast<size_t>(body.size()));  // of an input (alignFrom)
  for (ValueId t = 0; t < body.size(); ++t)
    if (const ValueId in = body.node(t).op == OpKind::Transpose ? body.node(t).operands[0] : -1;
        in >= 0 && body.node(in).op == OpKind::Input)
      transposesOf[static_cast<size_t>(in)].push_back(t);
  for (ValueId v = 0; v < body.size(); ++v) {
    if (!space.aligned(v)) continue;
    const std::vector<bool>& s = spans[static_cast<size_t>(v)];
    const std::vector<ValueId>& transposes = transposesOf[static_cast<size_t>(v)];
    std::vector<size_t> order(groups.size());
    std::iota(order.begin(), order.end(), size_t{0});
    if (!transposes.empty()) order = ownOrder(v);
    if (order.size() != groups.size()) return std::nullopt;  // a group begins inside the input's run
    Shape shape;
    for (size_t k : order) {
      int64_t extent = 1;
      if (s[static_cast<size_t>(groups[k][0])])
        for (int id : groups[k]) extent *= space.extent(id);
      shape.push_back(extent);
    }
    std::vector<int64_t> perm(groups.size());  // the transposes' dim k is the input's dim perm[k]
    for (size_t j = 0; j < order.size(); ++j) perm[order[j]] = static_cast<int64_t>(j);
    for (ValueId t : transposes) {
      copy.node(t).attrs["perm"] = perm;
      changed = changed || perm != ir::AttrReader(body.node(t).attrs, OpKind::Transpose).ints("perm");
    }
    ir::Node& n = copy.node(v);
    if (shape == n.type.shape) continue;
    changed = true;
    n.type.shape = shape;
    if (n.op == OpKind::Broadcast || n.op == OpKind::Reshape) n.attrs["shape"] = shape;
    if (n.op == OpKind::Constant) {
      auto data = std::make_shared<ir::TensorData>(*ir::AttrReader(n.attrs, n.op).tensor("value"));
      data->type = n.type;
      n.attrs["value"] = ir::TensorDataPtr(std::move(data));
    }
  }
  if (!changed) return std::nullopt;
  if (reduces) {
    ir::Node& n = copy.node(out);
    bool keepdims = ir::AttrReader(n.attrs, n.op).i("keepdims") != 0;
    std::vector<int64_t> newAxes;
    Shape shape;
    for (size_t k = 0; k < groups.size(); ++k) {
      int64_t extent = 1;
      for (int id : groups[k]) extent *= space.extent(id);
      if (space.reduced(groups[k][0])) {
        newAxes.push_back(static_cast<int64_t>(k));
        if (keepdims) shape.push_back(1);
      } else {
        shape.push_back(extent);
      }
    }
    n.attrs["axes"] = newAxes;
    n.type.shape = shape;
  }
  if (!ir::verifyErrors(copy).empty()) return std::nullopt;
  return copy;
}

}  // namespace weft::cpu::codegen
