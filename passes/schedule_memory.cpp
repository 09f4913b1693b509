// schedule-memory: reorders the nodes of a graph (keeping every operand before its reader) so
// that fewer bytes are alive at once, as PyTorch's autograd frees a saved activation as soon
// as its last gradient reads it. List scheduling over the ready nodes:
//  - a ready node that frees more bytes than it allocates (it reads the last of some values:
//    a convolution's weight gradient, which reads the saved activation, before its data
//    gradient, which makes a new tensor) runs first, the one freeing most first;
//  - then one that allocates nothing (an optimizer's moment update computed in its state's
//    slot: running it lets the next reader of the gradient be its last and free it; then the
//    parameter's update, once nothing else is left to read the parameter, since an update
//    run before its parameter's last reader needs a twin slot), or a scalar such an update
//    still waits for (Adam's step size);
//  - otherwise the ready node that came first in the old order runs, so a graph with nothing
//    to gain keeps its order (and producers stay next to their consumers).
// A second schedule breaks those ties depth first instead (the cone of each update, then of
// each output, in turn), taken where its peak is lower: where the old order interleaves
// two gradients' cones (dcgan's generator loss differentiated through the discriminator
// beside the discriminator's own losses), finishing one before the next keeps less alive
// (dcgan's training peak 37.7 -> 31.6 MiB with bce_with_logits' own gradient rule).
// Then each optimizer moment update moves to just before its parameter's update, where the
// peak allows (sinkMomentUpdates): the CPU runtime runs adjacent ones as one kernel.
// The bytes are those a memory planner places in an arena: every computed value, except
// reshapes (views of their operand), state update values (kept beside their parameter) and
// what is read after the run (outputs, update values). The new order is kept only when its
// peak of live bytes (with what a backend says each node needs while it runs: a
// convolution's layout copies) is lower than the old order's, or the same with fewer bytes
// alive summed over the steps.
#include <algorithm>
#include <numeric>

#include "passes/builtin_passes.h"
#include "passes/rewriter.h"

namespace weft::passes {
namespace {

using ir::OpKind;
using ir::ValueId;

/// What a node may allocate and still count as allocating nothing when an update waits for
/// it: a cache line, so that the scalars an optimizer derives from its step counter (Adam's
/// step size and bias corrections) run when a parameter's update needs them, and the update
/// follows its moments' updates while the gradient and the moments are still in cache.
constexpr int64_t kNegligibleBytes = 64;

/// What scheduling needs of each node: the arena bytes it allocates and the buffers it reads.
class LiveBytes {
 public:
  explicit LiveBytes(const ir::Graph& g) : n_(static_cast<size_t>(g.size())) {
    owner_.resize(n_);
    bytes_.assign(n_, 0);
    keep_.assign(n_, 0);
    reads_.resize(n_);
    std::vector<char> update(n_, 0);
    for (const auto& out : g.outputs()) keep_[static_cast<size_t>(out.value)] = 1;
    updateOf_.assign(n_, -1);
    for (const auto& u : g.updates()) {
      keep_[static_cast<size_t>(u.value)] = update[static_cast<size_t>(u.value)] = 1;
      updateOf_[static_cast<size_t>(u.value)] = u.param;
    }
    for (ValueId v = 0; v < g.size(); ++v) {
      const ir::Node& node = g.node(v);
      const auto i = static_cast<size_t>(v);
      bool view = node.op == OpKind::Reshape;
      owner_[i] = view ? owner_[static_cast<size_t>(node.operands.at(0))] : v;
      bool held = node.op == OpKind::Input || node.op == OpKind::Param || node.op == OpKind::Constant;
      if (!view && !held && !update[i]) bytes_[i] = static_cast<int64_t>(node.type.byteSize());
      if (view) continue;  // a reshape's readers read its owner: the reshape reads nothing
      for (ValueId o : node.operands) {
        ValueId buffer = owner_[static_cast<size_t>(o)];
        if (std::find(reads_[i].begin(), reads_[i].end(), buffer) == reads_[i].end()) reads_[i].push_back(buffer);
      }
    }
  }

  /// Bytes node `v` adds to the live set when it runs.
  int64_t allocates(ValueId v) const { return bytes_[static_cast<size_t>(v)]; }
  /// The buffers node `v` reads (each once; a view's reads are its owner's).
  const std::vector<ValueId>& reads(ValueId v) const { return reads_[static_cast<size_t>(v)]; }
  /// The parameter value `v` is the update of, or -1.
  ValueId updateOf(ValueId v) const { return updateOf_[static_cast<size_t>(v)]; }
  /// True when buffer `b` may be freed after its last reader (not read after the run).
  bool freeable(ValueId b) const { return !keep_[static_cast<size_t>(b)] && bytes_[static_cast<size_t>(b)] > 0; }

  /// The most bytes alive at once when the nodes run in `order`, then the sum over the steps
  /// of the bytes alive (which tells apart orders with the same peak).
  std::pair<int64_t, double> cost(const ir::Graph& g, const std::vector<ValueId>& order,
                                  const TransientBytes& transient) const {
    std::vector<int> readers(n_, 0);
    for (ValueId v : order)
      for (ValueId b : reads(v)) ++readers[static_cast<size_t>(b)];
    int64_t live = 0, most = 0;
    double total = 0;
    for (ValueId v : order) {
      live += allocates(v);
      most = std::max(most, live + (transient ? transient(g, v) : 0));
      total += static_cast<double>(live);
      for (ValueId b : reads(v))
        if (--readers[static_cast<size_t>(b)] == 0 && freeable(b)) live -= bytes_[static_cast<size_t>(b)];
      if (readers[static_cast<size_t>(v)] == 0 && freeable(v)) live -= allocates(v);  // never read
    }
    return {most, total};
  }

 private:
  size_t n_;
  std::vector<ValueId> owner_;   ///< the value whose bytes each value is (itself, or a view's)
  std::vector<int64_t> bytes_;   ///< arena bytes each node allocates
  std::vector<char> keep_;       ///< read after the run: outputs and update values
  std::vector<ValueId> updateOf_;  ///< the parameter each update value is for, or -1
  std::vector<std::vector<ValueId>> reads_;
};

/// The list schedule described above, ties going to the lowest `rank` (the old order's
/// position, or another order's).
std::vector<ValueId> memorySchedule(const ir::Graph& g, const LiveBytes& live, const std::vector<ValueId>& rank) {
  const auto n = static_cast<size_t>(g.size());
  std::vector<int> waiting(n, 0), readers(n, 0);
  std::vector<std::vector<ValueId>> users(n);
  for (ValueId v = 0; v < g.size(); ++v) {
    for (ValueId o : g.node(v).operands) {
      auto& us = users[static_cast<size_t>(o)];
      if (us.empty() || us.back() != v) us.push_back(v), ++waiting[static_cast<size_t>(v)];
    }
    for (ValueId b : live.reads(v)) ++readers[static_cast<size_t>(b)];
  }
  std::vector<ValueId> ready, order;
  for (ValueId v = 0; v < g.size(); ++v)
    if (waiting[static_cast<size_t>(v)] == 0) ready.push_back(v);
  auto freedBy = [&](ValueId v) {
    int64_t freed = 0;
    for (ValueId b : live.reads(v))
      if (readers[static_cast<size_t>(b)] == 1 && live.freeable(b)) freed += live.allocates(b);
    return freed;
  };
  // An update value moves ahead of node order only as its parameter's last reader (else the
  // parameter needs a twin slot to keep the value its later readers read).
  auto updatesLast = [&](ValueId v) {
    ValueId param = live.updateOf(v);
    if (param < 0) return true;
    const auto& reads = live.reads(v);
    int own = std::find(reads.begin(), reads.end(), param) != reads.end() ? 1 : 0;
    return readers[static_cast<size_t>(param)] == own;
  };
  std::vector<char> status(n, 0);  // 1: ready, 2: scheduled
  for (ValueId v : ready) status[static_cast<size_t>(v)] = 1;
  auto negligible = [&](ValueId v) { return live.allocates(v) <= kNegligibleBytes; };
  // True when ready node `t` (a scalar) is among the last operands an update value that
  // allocates nothing waits for, all of them ready scalars: running them lets it run. Such
  // scalars (Adam's step size) run then, not as soon as they can, so they are not alive
  // through the forward pass.
  auto completesUpdate = [&](ValueId t) {
    for (ValueId u : users[static_cast<size_t>(t)]) {
      if (live.updateOf(u) < 0 || live.allocates(u) > 0 || !updatesLast(u)) continue;
      bool rest = true;
      for (ValueId o : g.node(u).operands)
        rest = rest && (status[static_cast<size_t>(o)] == 2 || (status[static_cast<size_t>(o)] == 1 && negligible(o)));
      if (rest) return true;
    }
    return false;
  };
  while (!ready.empty()) {
    // The ready node freeing most net, if any frees; else the first by rank that allocates
    // nothing (or a scalar an update waits for); else the first by rank.
    auto before = [&](ValueId a, ValueId b) { return rank[static_cast<size_t>(a)] < rank[static_cast<size_t>(b)]; };
    auto pick = std::min_element(ready.begin(), ready.end(), before);
    auto firstFree = ready.end();
    int64_t best = 0;
    for (auto it = ready.begin(); it != ready.end(); ++it) {
      if (!updatesLast(*it)) continue;  // left to node order
      int64_t net = freedBy(*it) - live.allocates(*it);
      if (net > best || (net == best && net > 0 && before(*it, *pick))) best = net, pick = it;
      bool free = live.allocates(*it) == 0 || (negligible(*it) && completesUpdate(*it));
      if (free && (firstFree == ready.end() || before(*it, *firstFree))) firstFree = it;
    }
    if (best == 0 && firstFree != ready.end()) pick = firstFree;
    ValueId v = *pick;
    ready.erase(pick);
    order.push_back(v);
    status[static_cast<size_t>(v)] = 2;
    for (ValueId b : live.reads(v)) --readers[static_cast<size_t>(b)];
    for (ValueId u : users[static_cast<size_t>(v)])
      if (--waiting[static_cast<size_t>(u)] == 0) ready.push_back(u), status[static_cast<size_t>(u)] = 1;
  }
  return order;
}

/// Each node's position in a depth-first order: the cone of each update value, then of each
/// output, in turn (operands before readers, in operand order), then whatever is left in
/// the old order; the update values after all. Its ties finish one result's computation
/// before the next begins.
std::vector<ValueId> depthFirstRank(const ir::Graph& g) {
  const auto n = static_cast<size_t>(g.size());
  std::vector<ValueId> rank(n, -1);
  ValueId next = 0;
  std::vector<std::pair<ValueId, size_t>> stack;  // a node and its next operand to visit
  auto visit = [&](ValueId root) {
    if (rank[static_cast<size_t>(root)] >= 0) return;
    stack.push_back({root, 0});
    rank[static_cast<size_t>(root)] = -2;  // on the stack
    while (!stack.empty()) {
      auto& [v, i] = stack.back();
      const auto& operands = g.node(v).operands;
      if (i < operands.size()) {
        const ValueId o = operands[i++];
        if (rank[static_cast<size_t>(o)] == -1) rank[static_cast<size_t>(o)] = -2, stack.push_back({o, 0});
        continue;
      }
      rank[static_cast<size_t>(v)] = next++;
      stack.pop_back();
    }
  };
  for (const auto& u : g.updates()) visit(u.value);
  for (const auto& out : g.outputs()) visit(out.value);
  for (ValueId v = 0; v < g.size(); ++v) visit(v);
  // The update values themselves rank last: they run where they allocate nothing and their
  // parameter's other readers have run, never ahead of those by rank.
  for (const auto& u : g.updates()) rank[static_cast<size_t>(u.value)] += g.size();
  return rank;
}

/// `order` with each optimizer moment update (an update value that only another update
/// value reads: its parameter's) moved from where the list schedule put it, as soon as the
/// gradient was ready, to just before that reader, unless the move raises the peak (the
/// gradient then lives until the parameter's update). Adjacent, the CPU runtime computes the
/// moments in the parameter's update kernel (one pass instead of three); apart, because the
/// parameter's data gradient reads it after the moments ran, it could not.
std::vector<ValueId> sinkMomentUpdates(const ir::Graph& g, const LiveBytes& live, std::vector<ValueId> order,
                                       const TransientBytes& transient) {
  std::vector<int> readers(static_cast<size_t>(g.size()), 0);
  std::vector<ValueId> reader(static_cast<size_t>(g.size()), -1);
  for (ValueId v = 0; v < g.size(); ++v) {
    std::vector<ValueId> ops = g.node(v).operands;
    std::sort(ops.begin(), ops.end());
    ops.erase(std::unique(ops.begin(), ops.end()), ops.end());
    for (ValueId o : ops) ++readers[static_cast<size_t>(o)], reader[static_cast<size_t>(o)] = v;
  }
  for (const auto& out : g.outputs()) readers[static_cast<size_t>(out.value)] += 2;
  int64_t peak = live.cost(g, order, transient).first;
  for (ValueId u = 0; u < g.size(); ++u) {
    const ValueId p = reader[static_cast<size_t>(u)];
    if (live.updateOf(u) < 0 || readers[static_cast<size_t>(u)] != 1 || live.updateOf(p) < 0) continue;
    std::vector<ValueId> moved = order;
    moved.erase(std::find(moved.begin(), moved.end(), u));
    moved.insert(std::find(moved.begin(), moved.end(), p), u);
    if (moved == order) continue;
    const int64_t movedPeak = live.cost(g, moved, transient).first;
    if (movedPeak > peak) continue;
    order = std::move(moved);
    peak = movedPeak;
  }
  return order;
}

}  // namespace

bool scheduleForMemory(ir::Graph& g) { return scheduleForMemory(g, nullptr); }

bool scheduleForMemory(ir::Graph& g, const TransientBytes& transient) {
  LiveBytes live(g);
  std::vector<ValueId> old(static_cast<size_t>(g.size()));
  std::iota(old.begin(), old.end(), 0);
  // Ties broken by the old order, or depth first (which finishes one gradient's cone before
  // another's where the old order interleaves them) where that lowers the peak.
  std::vector<ValueId> order = sinkMomentUpdates(g, live, memorySchedule(g, live, old), transient);
  const int64_t peak = live.cost(g, order, transient).first;
  std::vector<ValueId> deep = memorySchedule(g, live, depthFirstRank(g));
  if (live.cost(g, deep, transient).first < peak) {  // (sinking the moment updates never raises a peak)
    deep = sinkMomentUpdates(g, live, std::move(deep), transient);
    if (live.cost(g, deep, transient).first < peak) order = std::move(deep);
  }
  if (order == old || live.cost(g, order, transient) >= live.cost(g, old, transient)) return false;
  Rewriter rw(g);
  for (ValueId v : order) {
    rw.begin(v);
    rw.copy(v);
  }
  g = rw.finish();
  return true;
}

}  // namespace weft::passes
