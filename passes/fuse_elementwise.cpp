// fuse-elementwise: groups elementwise, movement and reduction nodes into `fused` nodes, so
// that what a backend runs is fused kernels, contractions/windows and the ops that cannot fuse.
//
// Classes of nodes:
//  - fusible compute: kElementwise ops, broadcast, reshape, transpose, slice, pad, and the
//    reductions reduce_sum / reduce_max / reduce_min (which may only be a group's root);
//  - inlinable sources: iota, and constants of at most kMaxInlinedConstant elements; they are
//    copied into every body that reads them, never passed as operands;
//  - everything else (inputs, params, random ops, large constants, matmul, conv, pools,
//    gather, scatter_add, concat, argmax/argmin, existing fused nodes) is left as it is.
//
// Algorithm (producer-into-consumer, consumers first, as XLA's instruction fusion):
//  1. One backward sweep over the nodes. When a fusible node p is visited all its users have
//     been, and each user belongs to a set of groups (a group is named by its root) or to
//     none (a node left as it is). Let U be the union of the users' groups, and "outside"
//     mean that p has a user in no group. Then p
//       - is the root of a new group of its own if it is a reduction, a graph output or an
//         update value (those stay materialized), or if U is empty;
//       - is also the root of a group of its own when it is expensive (below) or a
//         re-indexing reshape and has kBroadcastRatio times fewer elements than the largest
//         member of each group of U (worthMaterializing): computed once, not per element of
//         the broadcasts that read it;
//       - joins every group of U when it is an expensive elementwise op read only by slices
//         that share no element (splitsIntoSlices): each slice, a group root where it is
//         cut, computes its own part of p, and no kernel writes p whole (ddpm's concatenation
//         gradient: the sum of two convolutions' gradients, cut into its operands' parts);
//       - joins the one group of U when U has one group and p has no outside user;
//       - is the root of a group of its own when U has several groups that are all lone
//         reshapes so far: they stay views of it, where joining each would compute the same
//         bytes once per view (gpt's scaled gradients read whole and split in two for their
//         weight gradient). Not for rank-4 data on either side: a convolution's activation
//         may be stored channel-blocked, which a view cannot read, while each kernel copying
//         it whole into a matrix reads it through blocked views (resnet's strided 1x1
//         shortcut gradient; as views, 33 values of its training step fell back to row-major);
//       - otherwise, when p is cheap (broadcast, reshape, transpose, slice, pad, or a one-flop
//         elementwise op with at most one tensor read at full size (a square x*x or slices
//         of one tensor count once), the others broadcast or inlined; in any case reading
//         no reduction), is duplicated into every group of U when it has no outside user;
//         with outside users it is the root of a group of its own, and each group of U
//         either recomputes it or reads that result, whichever keeps fewer bytes alive for
//         fewer steps (recomputeInGroup; a tie recomputes, unless the group sums p, which
//         p's kernel can then do alongside: sumsAlongside): a residual block's
//         relu output, which a convolution's weight gradient reads late anyway, is read by
//         the block's other consumers, while a layer norm's output is recomputed in the
//         backward pass from the residual stream that lives until then anyway;
//       - otherwise (expensive: exp, log, tanh, erf, sigmoid, pow, div, sin, cos, sqrt,
//         rsqrt, anything reading a reduction, or a one-flop op reading two full-size
//         tensors, which would compound along chains such as a residual stream) is the root
//         of a group of its own, computed once and read by its users.
//     Every non-root member of a group thus has all its users inside the group, so a group
//     has a single result (its root, the member that comes last), and each group only reads
//     values defined before its root: emitting every group at its root keeps the order.
//  2. Each group becomes a `fused` node at its root's place: kind "reduce" when the root is a
//     reduction, "loop" otherwise. Its operands are the values the group reads from outside,
//     in order of first use (a group that reads nothing but inlinable sources takes its first
//     source as an operand, since a fused node has at least one); its body holds those as
//     inputs `in0, in1, ...`, copies of the members (names and locations kept) and of the
//     inlinable sources, in graph order, and returns the root as `out`. The fused node takes
//     the root's name and location. A group that is a lone reshape stays a plain reshape (a
//     free view for the executable).
//  3. Members that are no group's root, and inlinable sources no longer read outside bodies,
//     disappear from the graph; everything else is copied. Outputs and updates keep their
//     values (they are roots or untouched nodes).
#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "ir/attrs.h"
#include "passes/builtin_passes.h"
#include "passes/fused_names.h"
#include "passes/rewriter.h"

namespace weft::passes {
namespace {

using ir::OpKind;
using ir::ValueId;

/// Constants with at most this many elements are copied into bodies (the printer shows them
/// in full, so bodies read back exactly).
constexpr int64_t kMaxInlinedConstant = 16;

bool isReduction(OpKind op) { return op == OpKind::ReduceSum || op == OpKind::ReduceMax || op == OpKind::ReduceMin; }

bool isFusibleCompute(const ir::Node& n) {
  if (n.body || n.op == OpKind::Fused) return false;
  if (ir::opInfo(n.op).has(ir::kElementwise)) return true;
  switch (n.op) {
    case OpKind::Broadcast:
    case OpKind::Reshape:
    case OpKind::Transpose:
    case OpKind::Slice:
    case OpKind::Pad: return true;  // realnvp's 16 zero-interleaved weight gradients: 1.4 ms as kernels
    default: return isReduction(n.op);
  }
}

bool isInlinableSource(const ir::Node& n) {
  return n.op == OpKind::Iota || (n.op == OpKind::Constant && n.type.numel() <= kMaxInlinedConstant);
}

/// An expensive producer with this many times fewer elements than the group that reads it
/// is computed once on its own (a normalization's rsqrt of per-channel statistics), not once
/// per element of the broadcast it feeds.
constexpr int64_t kBroadcastRatio = 16;

/// The tensor `v` views: the operand of its chain of reshapes and slices (v itself when none).
ValueId viewedTensor(const ir::Graph& g, ValueId v) {
  while (g.node(v).op == OpKind::Reshape || g.node(v).op == OpKind::Slice) v = g.node(v).operands[0];
  return v;
}

/// Worth recomputing in every group that reads it rather than materializing once.
bool isCheap(const ir::Graph& g, ValueId v) {
  const ir::Node& n = g.node(v);
  for (ValueId o : n.operands)
    if (isReduction(g.node(o).op)) return false;
  switch (n.op) {
    case OpKind::Broadcast:
    case OpKind::Reshape:
    case OpKind::Transpose:
    case OpKind::Slice:
    case OpKind::Pad: return true;  // realnvp's 16 zero-interleaved weight gradients: 1.4 ms as kernels
    default: break;
  }
  if (!ir::opInfo(n.op).has(ir::kElementwise) || ir::opInfo(n.op).has(ir::kCostly)) return false;
  // Effectively unary: at most one operand read at full size (the others are broadcast or
  // inlined). Recomputing an op that reads two full tensors costs more reads than it saves,
  // and duplicating such ops compounds along chains (a residual stream would be recomputed
  // from its start in every consumer).
  // One tensor read twice (a square) or in parts (slices, reshaped) counts as one read:
  // batch norm's (x - mean)^2 is recomputed inside the sums that read it (resnet: 331 -> 310
  // kernels, no [N, H, W, C] squares written and read again); split-long-contractions' sum
  // of two halves reads the bytes one matmul result would have.
  std::set<ValueId> fullSize;
  for (ValueId o : n.operands)
    if (!isInlinableSource(g.node(o)) && g.type(o).numel() == n.type.numel()) fullSize.insert(viewedTensor(g, o));
  return fullSize.size() <= 1;
}

/// True when the dims of `a` longer than 1 are those of `b`, in order.
bool sameUnitFreeDims(const ir::Shape& a, const ir::Shape& b) {
  ir::Shape x, y;
  for (int64_t d : a)
    if (d != 1) x.push_back(d);
  for (int64_t d : b)
    if (d != 1) y.push_back(d);
  return x == y;
}

/// True when `v`, read by a much larger group, is better computed once on its own: an
/// expensive op, or a reshape that re-indexes (a group's per-channel statistics regrouped
/// from [N, G, C/G] to [N, 1, 1, C]: div and mod per element of the reader otherwise).
bool worthMaterializing(const ir::Graph& g, ValueId v) {
  const ir::Node& n = g.node(v);
  if (n.op == OpKind::Reshape) return !sameUnitFreeDims(n.type.shape, g.type(n.operands[0]).shape);
  return !isCheap(g, v);
}

/// `set` with `v` added, kept sorted and unique.
void insertSorted(std::vector<ValueId>& set, ValueId v) {
  auto it = std::lower_bound(set.begin(), set.end(), v);
  if (it == set.end() || *it != v) set.insert(it, v);
}

/// The groups of a graph: which groups each node belongs to, and each group's members.
struct Grouping {
  std::vector<std::vector<ValueId>> groupsOf;  ///< per node: roots of its groups, sorted
  std::map<ValueId, std::vector<ValueId>> members;  ///< per fused root: its members in node order

  bool inGroup(ValueId v, ValueId root) const {
    const auto& gs = groupsOf[static_cast<size_t>(v)];
    return std::binary_search(gs.begin(), gs.end(), root);
  }
};

/// The users of each node, in order, each once.
using UserLists = std::vector<std::vector<ValueId>>;

/// Where node `u`'s read happens as grouped so far: at the last root of its groups, or at
/// `u` itself when it is in none (left as it is, or not yet visited by the sweep).
ValueId readPosition(const Grouping& grouping, ValueId u) {
  const auto& gs = grouping.groupsOf[static_cast<size_t>(u)];
  return gs.empty() ? u : gs.back();
}

/// The byte-steps recomputing `p` at position `at` adds by keeping what it reads alive
/// until then: each operand at least `p`'s size is kept from its last other read (at least
/// `p`) to `at`, except an operand that is a cheap fusible node read by `p` alone: it would
/// be recomputed along, so its own operands count instead (a layer norm recomputed from the
/// residual stream that lives anyway costs nothing).
double recomputeCost(const ir::Graph& g, const UserLists& users, const Grouping& grouping, ValueId p, ValueId at,
                     int depth = 0) {
  double cost = 0;
  for (ValueId o : g.node(p).operands) {
    if (isInlinableSource(g.node(o)) || g.type(o).numel() < g.type(p).numel()) continue;
    const auto& readers = users[static_cast<size_t>(o)];
    if (depth < 8 && readers.size() == 1 && isFusibleCompute(g.node(o)) && !isReduction(g.node(o).op) &&
        isCheap(g, o)) {
      cost += recomputeCost(g, users, grouping, o, at, depth + 1);
      continue;
    }
    ValueId last = p;
    for (ValueId u : readers)
      if (u != p) last = std::max(last, readPosition(grouping, u));
    cost += static_cast<double>(g.type(o).byteSize()) * std::max(0, at - last);
  }
  return cost;
}

/// True when group `root` is a reduction of values shaped as `p` and `p` reads as many
/// elements as it has (no broadcast or pad): read, `p` can be the reduction's side-sum source
/// (runtime/cpu/side_sum_sources.h), the sums computed in `p`'s own kernel, where a
/// recomputing group is a pass of its own over `p`'s operands (ddpm's bias gradient of its
/// up-convolution, the sum of a concatenation gradient's slice, 0.25 ms a step).
bool sumsAlongside(const ir::Graph& g, ValueId p, ValueId root) {
  const ir::Node& r = g.node(root);
  const OpKind op = g.node(p).op;
  return isReduction(r.op) && g.type(r.operands.at(0)).shape == g.type(p).shape && op != OpKind::Broadcast &&
         op != OpKind::Pad;
}

/// True when the cheap node `p`, materialized for its outside users (the last at
/// `lastOutside`), is better recomputed inside group `root` than read from there: when that
/// keeps no more bytes alive for no longer (recomputeCost) than extending `p`'s own life to
/// the group would. Ties recompute, which reads no more than reading `p` does, except where
/// the group sums `p` alongside its kernel (sumsAlongside).
bool recomputeInGroup(const ir::Graph& g, const UserLists& users, const Grouping& grouping, ValueId p,
                      ValueId lastOutside, ValueId root) {
  double readCost = static_cast<double>(g.type(p).byteSize()) * std::max(0, root - lastOutside);
  const double recompute = recomputeCost(g, users, grouping, p, root);
  return sumsAlongside(g, p, root) ? recompute < readCost : recompute <= readCost;
}

/// True when expensive elementwise node `p` (no output or update: `materialized` false) is
/// read only by slices of unit steps that share no element: each slice then computes its own
/// part of `p` and nothing is computed twice (a concatenation's gradient, the sum of its
/// consumers' gradients, cut into its operands' parts: ddpm's skip connection).
bool splitsIntoSlices(const ir::Graph& g, const UserLists& users, ValueId p, bool materialized) {
  const ir::Node& n = g.node(p);
  const auto& readers = users[static_cast<size_t>(p)];
  if (materialized || readers.size() < 2 || !ir::opInfo(n.op).has(ir::kElementwise) || isCheap(g, p)) return false;
  for (size_t i = 0; i < readers.size(); ++i) {
    const ir::Node& a = g.node(readers[i]);
    if (a.op != OpKind::Slice) return false;
    ir::AttrReader sa(a.attrs, a.op);
    for (int64_t step : sa.ints("stride"))
      if (step != 1) return false;
    for (size_t j = 0; j < i; ++j) {  // disjoint: apart along some dim
      ir::AttrReader sb(g.node(readers[j]).attrs, OpKind::Slice);
      bool apart = false;
      for (size_t d = 0; d < n.type.shape.size() && !apart; ++d)
        apart = sa.ints("limit")[d] <= sb.ints("start")[d] || sb.ints("limit")[d] <= sa.ints("start")[d];
      if (!apart) return false;
    }
  }
  return true;
}

/// Step 1 of the algorithm: the backward sweep.
Grouping groupNodes(const ir::Graph& g) {
  size_t n = static_cast<size_t>(g.size());
  UserLists users(n);
  for (ValueId v = 0; v < g.size(); ++v)
    for (ValueId o : g.node(v).operands) {
      auto& us = users[static_cast<size_t>(o)];
      if (us.empty() || us.back() != v) us.push_back(v);
    }
  std::vector<bool> materialized(n, false);
  for (const auto& out : g.outputs()) materialized[static_cast<size_t>(out.value)] = true;
  for (const auto& u : g.updates()) materialized[static_cast<size_t>(u.value)] = true;

  Grouping grouping;
  grouping.groupsOf.resize(n);
  std::vector<int64_t> span(n, 0);  // per root: the most elements any member of its group has
  std::vector<int> size(n, 0);      // per root: the members its group has so far
  for (ValueId v = g.size() - 1; v >= 0; --v) {
    const ir::Node& node = g.node(v);
    if (!isFusibleCompute(node)) continue;
    bool outside = false;
    ValueId lastOutside = v;
    std::vector<ValueId> userGroups;
    for (ValueId u : users[static_cast<size_t>(v)]) {
      const auto& gs = grouping.groupsOf[static_cast<size_t>(u)];
      if (gs.empty()) outside = true, lastOutside = u;
      for (ValueId root : gs) insertSorted(userGroups, root);
    }
    auto& mine = grouping.groupsOf[static_cast<size_t>(v)];
    const ValueId whole = node.op == OpKind::Slice ? node.operands[0] : -1;
    const bool partOfSplit = whole >= 0 && isFusibleCompute(g.node(whole)) &&
                             splitsIntoSlices(g, users, whole, materialized[static_cast<size_t>(whole)]);
    bool smallForItsReaders = !userGroups.empty();
    for (ValueId root : userGroups)
      smallForItsReaders = smallForItsReaders && node.type.numel() * kBroadcastRatio <= span[static_cast<size_t>(root)];
    if (partOfSplit) {
      mine = {v};  // a part of a value split into slices: computed where it is cut
    } else if (splitsIntoSlices(g, users, v, materialized[static_cast<size_t>(v)])) {
      mine = userGroups;  // each slice computes its part (the slices are roots, above)
    } else if (isReduction(node.op) || materialized[static_cast<size_t>(v)] || userGroups.empty() ||
               (smallForItsReaders && worthMaterializing(g, v))) {
      mine = {v};
    } else if (!outside && userGroups.size() == 1) {
      mine = userGroups;
    } else if (userGroups.size() > 1 && node.type.rank() != 4 &&
               std::all_of(userGroups.begin(), userGroups.end(), [&](ValueId root) {
                 return g.node(root).op == OpKind::Reshape && g.node(root).type.rank() != 4 &&
                        size[static_cast<size_t>(root)] == 1;
               })) {
      mine = {v};  // read only through views: computed once, the reshapes stay views of it
    } else if (isCheap(g, v) && !outside) {
      mine = userGroups;
    } else if (isCheap(g, v)) {
      // Materialized anyway for its outside users: each group recomputes it or reads that
      // result, whichever keeps fewer bytes alive.
      mine = {v};
      for (ValueId root : userGroups)
        if (recomputeInGroup(g, users, grouping, v, lastOutside, root)) insertSorted(mine, root);
    } else {
      mine = {v};
    }
    for (ValueId root : mine) {
      span[static_cast<size_t>(root)] = std::max(span[static_cast<size_t>(root)], node.type.numel());
      ++size[static_cast<size_t>(root)];
    }
  }
  for (ValueId v = 0; v < g.size(); ++v)
    for (ValueId root : grouping.groupsOf[static_cast<size_t>(v)]) grouping.members[root].push_back(v);
  // A lone reshape is left as it is.
  for (auto it = grouping.members.begin(); it != grouping.members.end();) {
    bool loneReshape = it->second.size() == 1 && g.node(it->first).op == OpKind::Reshape;
    it = loneReshape ? grouping.members.erase(it) : std::next(it);
  }
  return grouping;
}

/// The outer values group `root` reads, in order of first use (see step 2).
std::vector<ValueId> externalOperands(const ir::Graph& g, const Grouping& grouping, ValueId root) {
  std::vector<ValueId> external, firstSource;
  for (ValueId m : grouping.members.at(root))
    for (ValueId o : g.node(m).operands) {
      if (grouping.inGroup(o, root)) continue;
      auto& list = isInlinableSource(g.node(o)) ? firstSource : external;
      if (std::find(list.begin(), list.end(), o) == list.end()) list.push_back(o);
    }
  if (external.empty() && !firstSource.empty()) external.push_back(firstSource.front());
  return external;
}

/// The name of the body of a group (fusedBodyName of its members' ops).
std::string bodyName(const ir::Graph& g, const std::vector<ValueId>& members) {
  std::vector<OpKind> ops;
  for (ValueId m : members) ops.push_back(g.node(m).op);
  return fusedBodyName(ops);
}

/// The body of group `root` reading `external` (step 2).
ir::Graph buildBody(const ir::Graph& g, const Grouping& grouping, ValueId root, const std::vector<ValueId>& external) {
  const std::vector<ValueId>& members = grouping.members.at(root);
  ir::Graph body(bodyName(g, members));
  std::set<std::string> taken;
  for (ValueId m : members)
    for (ValueId v : g.node(m).operands) taken.insert(g.node(v).name);
  for (ValueId m : members) taken.insert(g.node(m).name);

  std::map<ValueId, ValueId> local;  // outer value -> body value
  for (size_t i = 0; i < external.size(); ++i) {
    std::string name = "in" + std::to_string(i);
    while (taken.count(name)) name += "_";
    local[external[i]] = body.addInput(name, g.type(external[i]));
  }
  for (ValueId m : members) {
    ir::Node copy = g.node(m);
    for (ValueId& o : copy.operands) {
      if (!local.count(o)) local[o] = body.addNode(g.node(o));  // an inlinable source
      o = local.at(o);
    }
    local[m] = body.addNode(std::move(copy));
  }
  body.addOutput("out", local.at(root));
  return body;
}

}  // namespace

bool fuseElementwise(ir::Graph& g) {
  Grouping grouping = groupNodes(g);

  // Which sources are still read outside bodies, and what each group reads.
  std::map<ValueId, std::vector<ValueId>> external;
  std::vector<bool> readOutside(static_cast<size_t>(g.size()), false), read(static_cast<size_t>(g.size()), false);
  for (const auto& [root, members] : grouping.members) {
    external[root] = externalOperands(g, grouping, root);
    for (ValueId o : external[root]) readOutside[static_cast<size_t>(o)] = true;
  }
  for (ValueId v = 0; v < g.size(); ++v) {
    bool loneReshape = grouping.inGroup(v, v) && !grouping.members.count(v);
    bool copied = !isFusibleCompute(g.node(v)) || loneReshape;
    for (ValueId o : g.node(v).operands) {
      read[static_cast<size_t>(o)] = true;
      if (copied) readOutside[static_cast<size_t>(o)] = true;
    }
  }
  for (const auto& out : g.outputs()) readOutside[static_cast<size_t>(out.value)] = true;
  for (const auto& u : g.updates()) readOutside[static_cast<size_t>(u.value)] = true;

  bool changed = !grouping.members.empty();
  Rewriter rw(g);
  for (ValueId v = 0; v < g.size(); ++v) {
    rw.begin(v);
    const ir::Node& node = g.node(v);
    if (isInlinableSource(node) && read[static_cast<size_t>(v)] && !readOutside[static_cast<size_t>(v)]) {
      changed = true;  // only read inside bodies now
      continue;
    }
    if (!isFusibleCompute(node)) {
      rw.copy(v);
      continue;
    }
    if (!grouping.inGroup(v, v)) continue;  // lives only inside the bodies of its consumers
    if (!grouping.members.count(v)) {       // a lone reshape
      rw.copy(v);
      continue;
    }
    ir::Node fused;
    fused.op = OpKind::Fused;
    for (ValueId o : external.at(v)) fused.operands.push_back(rw.map(o));
    fused.attrs["kind"] = std::string(isReduction(node.op) ? "reduce" : "loop");
    fused.type = node.type;
    fused.loc = node.loc;
    fused.body = std::make_shared<const ir::Graph>(buildBody(g, grouping, v, external.at(v)));
    rw.replace(v, rw.target().addNode(std::move(fused)));
  }
  if (!changed) return false;
  g = rw.finish();
  return true;
}

}  // namespace weft::passes
