// Memory planning for the compiled CPU backend: lifetimes over the node order, then offsets.
#include "runtime/cpu/memory_plan.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <random>

#include "ir/attrs.h"
#include "ir/channels_last.h"
#include "runtime/cpu/onednn_ops.h"
#include "runtime/cpu/onednn_postops.h"
#include "runtime/cpu/native_steps.h"
#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/side_sum_sources.h"

namespace weft::cpu {

using ir::OpKind;
using ir::ValueId;

namespace {

int64_t alignUp(int64_t n) { return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

/// The arena bytes a buffer of `bytes` takes (an empty one still gets an aligned slot).
int64_t slotBytes(int64_t bytes) { return alignUp(std::max<int64_t>(bytes, 1)); }

bool overlapInTime(const BufferLifetime& a, const BufferLifetime& b) { return a.first <= b.last && b.first <= a.last; }

/// The arena buffer value `v` was merged into (find with path halving), -1 marking roots.
ValueId bufferRoot(std::vector<ValueId>& sharedWith, ValueId v) {
  while (sharedWith[static_cast<size_t>(v)] >= 0) {
    ValueId up = sharedWith[static_cast<size_t>(v)];
    if (sharedWith[static_cast<size_t>(up)] >= 0) sharedWith[static_cast<size_t>(v)] = sharedWith[static_cast<size_t>(up)];
    v = up;
  }
  return v;
}

/// `shape`'s bytes as f32 with dim 0 and dim 1 rounded up to `dim0` and `dim1`, aligned.
int64_t paddedBytes(const ir::Shape& shape, int64_t dim0, int64_t dim1) {
  int64_t n = 4;
  for (size_t d = 0; d < shape.size(); ++d) {
    int64_t round = d == 0 ? dim0 : d == 1 ? dim1 : 1;
    n *= (shape[d] + round - 1) / round * round;
  }
  return alignUp(n);
}

/// The bytes of node v's operands and result converted to blocked layouts (conversionBound).
int64_t layoutConversionBytes(const ir::Graph& g, ValueId v) {
  const ir::Node& node = g.node(v);
  if (node.type.dtype != ir::DType::f32 || node.type.shape.size() < 3) return 0;
  // The activation and weight operands: a fused conv's are its body conv's, when they are
  // body inputs.
  std::vector<ValueId> operands;
  bool channelsLast = ir::isChannelsLast(node.op, node.attrs);
  switch (node.op) {
    case OpKind::Conv:
    case OpKind::ConvTranspose:
    case OpKind::ConvWeightGrad: operands = node.operands; break;
    case OpKind::Fused: {
      if (!node.body) return 0;
      const ir::Graph& body = *node.body;
      std::vector<ValueId> inputs = body.inputs();
      for (const ir::Node& n : body.nodes()) {
        if (n.op != OpKind::Conv) continue;
        channelsLast = ir::isChannelsLast(n.op, n.attrs);
        for (ValueId o : n.operands) {
          auto at = std::find(inputs.begin(), inputs.end(), o);
          if (at != inputs.end()) operands.push_back(node.operands[static_cast<size_t>(at - inputs.begin())]);
        }
        break;
      }
      if (operands.empty()) return 0;
      break;
    }
    default: return 0;
  }
  std::function<int64_t(const ir::Shape&)> activation = [](const ir::Shape& s) { return paddedBytes(s, 1, 16); };
  auto weight = [](const ir::Shape& s) { return paddedBytes(s, 64, 64); };
  // conv: x, w -> y; conv_transpose: dy, w -> x; conv_weight_grad: x, dy -> w. A
  // convolution's one-channel source (an image) is read as it is: its plain layout is also
  // its channels-last one. Channels-last data is read and written in place.
  if (channelsLast) activation = [](const ir::Shape&) { return int64_t{0}; };
  bool resultIsWeight = node.op == OpKind::ConvWeightGrad;
  int64_t bytes = resultIsWeight ? weight(node.type.shape) : activation(node.type.shape);
  for (size_t i = 0; i < operands.size() && i < 2; ++i) {
    const ir::Shape& shape = g.type(operands[i]).shape;
    bool isWeight = i == 1 && !resultIsWeight;
    bool plainSource = i == 0 && node.op != OpKind::ConvTranspose && shape[1] == 1;
    // Constant weights are converted once into a buffer the step holds (heldInput).
    bool held = isWeight && sameBytesEveryRun(g, operands[i]);
    bytes += held || plainSource ? 0 : isWeight ? weight(shape) : activation(shape);
  }
  return bytes;
}

}  // namespace

int64_t conversionBound(const ir::Graph& g, ValueId v) {
  return std::max({layoutConversionBytes(g, v), alignUp(winogradPlannedBytes(g, v)), alignUp(matmulCopyBytes(g, v))});
}

namespace {

/// The operand of fused conv node `node` that its oneDNN step adds as a sum post-op (copied
/// into the result before the convolution accumulates onto it), or -1.
int sumPostOpOperand(const ir::Node& node) {
  auto fused = onednn::parseFusedContraction(*node.body);
  if (!fused || fused->contraction->op != OpKind::Conv) return -1;
  std::vector<onednn::PostOp> postOps = fused->postOps;
  const ir::Node& conv = *fused->contraction;
  const bool channelsLast = ir::isChannelsLast(conv.op, conv.attrs);
  onednn::takeConvBias(postOps, channelsLast ? ir::toChannelsFirst(node.type.shape) : node.type.shape, channelsLast);
  int i = onednn::useSumForResidual(postOps, node.type.shape);  // as compileConv picks it
  return i < 0 ? -1 : postOps[static_cast<size_t>(i)].operand;
}

}  // namespace

bool readsOperandAtOwnIndex(const ir::Graph& g, ValueId v, size_t i) {
  const ir::Node& node = g.node(v);
  if (node.op != OpKind::Fused || !node.body || i >= node.operands.size()) return false;
  const std::string kind = ir::AttrReader(node.attrs, node.op).s("kind");
  if (kind == "conv") {  // read once, as the sum post-op's residual (copied into the result first)
    if (i < 2) return false;  // the convolution's own operands
    ValueId input = node.body->inputs().at(i);
    auto readers = std::count_if(node.body->nodes().begin(), node.body->nodes().end(), [&](const ir::Node& n) {
      return std::find(n.operands.begin(), n.operands.end(), input) != n.operands.end();
    });
    return readers == 1 && sumPostOpOperand(node) == static_cast<int>(i);
  }
  if (kind != "loop") return false;
  const ir::Graph& body = *node.body;
  std::vector<ValueId> inputs = body.inputs();
  if (i >= inputs.size() || body.type(inputs[i]) != node.type) return false;
  // Everything computed from the operand must be elementwise over the result's shape.
  std::vector<char> fromOperand(static_cast<size_t>(body.size()), 0);
  fromOperand[static_cast<size_t>(inputs[i])] = 1;
  for (ValueId b = 0; b < body.size(); ++b) {
    const ir::Node& n = body.node(b);
    bool reads = std::any_of(n.operands.begin(), n.operands.end(),
                             [&](ValueId o) { return fromOperand[static_cast<size_t>(o)] != 0; });
    if (!reads) continue;
    if (!ir::opInfo(n.op).has(ir::kElementwise) || n.type.shape != node.type.shape) return false;
    fromOperand[static_cast<size_t>(b)] = 1;
  }
  return true;
}

namespace {

/// Places `buffers` in `order`, each at the lowest offset (or, with `bestFit`, in the
/// smallest gap) that no buffer placed before it and live at the same time touches.
std::vector<int64_t> placeInOrder(const std::vector<BufferLifetime>& buffers, const std::vector<size_t>& order,
                                  bool bestFit, int64_t& arenaBytes) {
  std::vector<int64_t> offsets(buffers.size(), 0);
  std::vector<size_t> placed;  // kept sorted by offset, so each search is one pass
  arenaBytes = 0;
  for (size_t i : order) {
    int64_t size = slotBytes(buffers[i].bytes);
    int64_t candidate = 0, chosen = -1, chosenGap = 0;
    for (size_t p : placed) {
      if (!overlapInTime(buffers[p], buffers[i])) continue;
      if (offsets[p] >= candidate + size) {  // a gap [candidate, offsets[p]) that holds it
        if (!bestFit) break;
        if (chosen < 0 || offsets[p] - candidate < chosenGap) chosen = candidate, chosenGap = offsets[p] - candidate;
      }
      candidate = std::max(candidate, offsets[p] + slotBytes(buffers[p].bytes));
    }
    if (bestFit && chosen >= 0) candidate = chosen;
    offsets[i] = candidate;
    arenaBytes = std::max(arenaBytes, candidate + size);
    auto at = std::upper_bound(placed.begin(), placed.end(), candidate,
                               [&](int64_t offset, size_t p) { return offset < offsets[p]; });
    placed.insert(at, i);
  }
  return offsets;
}

/// The most slot bytes of `buffers` live at one step: no placement needs fewer.
int64_t mostLiveBytes(const std::vector<BufferLifetime>& buffers) {
  int32_t steps = 0;
  for (const auto& b : buffers) steps = std::max(steps, b.last + 1);
  std::vector<int64_t> delta(static_cast<size_t>(steps) + 1, 0);
  for (const auto& b : buffers) {
    delta[static_cast<size_t>(b.first)] += slotBytes(b.bytes);
    delta[static_cast<size_t>(b.last) + 1] -= slotBytes(b.bytes);
  }
  int64_t live = 0, most = 0;
  for (int64_t d : delta) most = std::max(most, live += d);
  return most;
}

}  // namespace

std::vector<int64_t> assignOffsets(const std::vector<BufferLifetime>& buffers, int64_t& arenaBytes) {
  // Several greedy orders (largest first, longest-lived first, earliest first, most
  // byte-steps first), each by first fit and by best fit; the smallest arena wins, the
  // first strategy on ties, so the plan is deterministic.
  auto steps = [&](size_t i) { return int64_t{buffers[i].last} - buffers[i].first + 1; };
  using Before = std::function<bool(size_t, size_t)>;
  const std::vector<Before> orders = {
      [&](size_t a, size_t b) { return buffers[a].bytes != buffers[b].bytes ? buffers[a].bytes > buffers[b].bytes
                                                                            : buffers[a].first < buffers[b].first; },
      [&](size_t a, size_t b) { return steps(a) != steps(b) ? steps(a) > steps(b) : buffers[a].bytes > buffers[b].bytes; },
      [&](size_t a, size_t b) { return buffers[a].first != buffers[b].first ? buffers[a].first < buffers[b].first
                                                                            : buffers[a].bytes > buffers[b].bytes; },
      [&](size_t a, size_t b) { return buffers[a].bytes * steps(a) > buffers[b].bytes * steps(b); },
  };
  std::vector<int64_t> best;
  std::vector<size_t> bestOrder;
  bool bestFitWins = false;
  arenaBytes = -1;
  for (const Before& before : orders) {
    std::vector<size_t> order(buffers.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), before);
    for (bool bestFit : {false, true}) {
      int64_t bytes = 0;
      std::vector<int64_t> offsets = placeInOrder(buffers, order, bestFit, bytes);
      if (arenaBytes >= 0 && bytes >= arenaBytes) continue;
      arenaBytes = bytes;
      best = std::move(offsets);
      bestOrder = order;
      bestFitWins = bestFit;
    }
  }
  // Then a local search: swap a few buffers of the best order, keep what is smaller, until
  // the arena holds no more than the most bytes live at one step (no order does better) or
  // the iterations run out (bounded so that it costs tens of milliseconds at most). A fixed
  // seed keeps the plan deterministic.
  const int64_t floor = mostLiveBytes(buffers);
  const size_t n = buffers.size();
  const int iterations = n < 2 ? 0 : static_cast<int>(std::min<size_t>(400, 200000000 / (n * n) + 1));
  std::mt19937 random(20261203);
  for (int it = 0; it < iterations && arenaBytes > floor; ++it) {
    std::vector<size_t> order = bestOrder;
    for (int k = 0; k < 10; ++k) std::swap(order[random() % n], order[random() % n]);
    int64_t bytes = 0;
    std::vector<int64_t> offsets = placeInOrder(buffers, order, bestFitWins, bytes);
    if (bytes < arenaBytes) arenaBytes = bytes, best = std::move(offsets), bestOrder = std::move(order);
  }
  return best;
}

namespace {

/// planMemory's working state: the plan being filled and each buffer's last reader.
class Planner {
 public:
  explicit Planner(const ir::Graph& g) : g_(g), last_(static_cast<size_t>(g.size()), -1) {
    plan_.values.resize(static_cast<size_t>(g.size()));
  }

  /// Storage by node kind (parameters persistent in order, reshapes as views of what their
  /// operand views), and the last node reading each buffer.
  void placeByKind() {
    for (ValueId v = 0; v < g_.size(); ++v) {
      const ir::Node& node = g_.node(v);
      Placement& p = at(v);
      if (node.op == OpKind::Param) {
        p.storage = Storage::Persistent;
        p.offset = plan_.persistentBytes;
        plan_.persistentBytes += alignUp(static_cast<int64_t>(node.type.byteSize()));
      } else if (node.op == OpKind::Input) {
        p.storage = Storage::Input;
      } else if (node.op == OpKind::Constant) {
        p.storage = Storage::Constant;
      } else if (node.op == OpKind::Reshape) {
        p.storage = Storage::View;
        p.viewOf = owner(node.operands.at(0));
      } else if (!neverStored(g_, v)) {
        p.storage = Storage::Arena;
      }  // else Storage::None
      for (ValueId o : node.operands) lastOf(owner(o)) = v;
    }
    // A native step may read another node's operands at its own, later step (foldedOperands).
    for (ValueId v = 0; v < g_.size(); ++v)
      for (ValueId o : foldedOperands(g_, v)) lastOf(owner(o)) = std::max(lastOf(owner(o)), v);
  }

  /// Update values: in their parameter's slot where legal, else as its twin; then outputs
  /// and update values are kept to the end of the run.
  void placeUpdates() {
    const auto n = static_cast<size_t>(g_.size());
    std::vector<int> updatesOf(n, 0), outputs(n, 0);
    std::vector<char> readAfterRun(n, 0);  // outputs, update values, and what they view
    for (const auto& u : g_.updates()) {
      ++updatesOf[static_cast<size_t>(u.param)];
      ++updatesOf[static_cast<size_t>(u.value)];
      readAfterRun[static_cast<size_t>(owner(u.value))] = 1;
    }
    for (const auto& out : g_.outputs()) {
      ++outputs[static_cast<size_t>(out.value)];
      readAfterRun[static_cast<size_t>(owner(out.value))] = 1;
    }
    // An update value alone in updating its parameter, computed into the arena and not read
    // after the run as an output.
    auto soleArenaUpdate = [&](const ir::StateUpdate& u) {
      return at(u.value).storage == Storage::Arena && at(u.param).storage == Storage::Persistent &&
             u.value != u.param && updatesOf[static_cast<size_t>(u.value)] == 1 &&
             updatesOf[static_cast<size_t>(u.param)] == 1 && outputs[static_cast<size_t>(u.value)] == 0;
    };
    // In place: the parameter's last reader, which keeps no value of it for later, computes
    // its update into the same slot.
    for (const auto& u : g_.updates()) {
      if (!soleArenaUpdate(u) || lastOf(u.param) != u.value || readAfterRun[static_cast<size_t>(u.param)] ||
          !overwrites(u.value, u.param))
        continue;
      at(u.value).storage = Storage::Persistent;
      at(u.value).offset = at(u.param).offset;
      at(u.value).inPlaceOf = u.param;
    }
    // Twins: a persistent slot beside the parameter's, the two trading places after a step.
    for (const auto& u : g_.updates()) {
      if (!soleArenaUpdate(u) || g_.type(u.value).byteSize() != g_.type(u.param).byteSize()) continue;
      at(u.value).storage = Storage::Persistent;
      at(u.value).offset = plan_.persistentBytes;
      plan_.persistentBytes += alignUp(static_cast<int64_t>(g_.type(u.value).byteSize()));
      at(u.value).twin = u.param;
      at(u.param).twin = u.value;
    }
    for (const auto& out : g_.outputs()) lastOf(owner(out.value)) = g_.size();
    for (const auto& u : g_.updates()) lastOf(owner(u.value)) = g_.size();
  }

  /// In-place arena values: a value takes the buffer of an operand of the same size that it
  /// reads last, at its own index. Returns, per value, the value it was merged into (-1 for
  /// none): merged values form groups sharing their root's buffer.
  std::vector<ValueId> mergeInPlace() {
    std::vector<ValueId> sharedWith(static_cast<size_t>(g_.size()), -1);
    for (ValueId v = 0; v < g_.size(); ++v) {
      if (!inArena(v)) continue;
      for (ValueId o : g_.node(v).operands)
        if (inArena(o) && lastOf(o) == v && storedBytes(g_, o) == storedBytes(g_, v) && overwrites(v, o)) {
          sharedWith[static_cast<size_t>(v)] = bufferRoot(sharedWith, o);
          break;
        }
    }
    return sharedWith;
  }

  /// Offsets in the arena for each group of values sharing a buffer (live from its root's
  /// definition to its members' last use) and for each convolution's conversion scratch
  /// (live for its own step).
  void assignArena(std::vector<ValueId>& sharedWith) {
    std::vector<int32_t> groupEnd(static_cast<size_t>(g_.size()), -1);
    for (ValueId v = 0; v < g_.size(); ++v) {
      if (!inArena(v)) continue;
      int32_t& rootEnd = groupEnd[static_cast<size_t>(bufferRoot(sharedWith, v))];
      rootEnd = std::max({rootEnd, lastOf(v), v});  // an unused value still needs its own step
    }
    std::vector<BufferLifetime> lifetimes;
    std::vector<ValueId> owners;  // the value each buffer is placed for
    // A side sum may be written by its source's step (generatedSteps): live from there.
    const std::vector<ValueId> sources = sideSumSources(g_);
    for (ValueId v = 0; v < g_.size(); ++v)
      if (inArena(v) && sharedWith[static_cast<size_t>(v)] < 0) {
        const ValueId first = sources[static_cast<size_t>(v)] >= 0 ? sources[static_cast<size_t>(v)] : v;
        lifetimes.push_back({storedBytes(g_, v), first, groupEnd[static_cast<size_t>(v)]});
        owners.push_back(v);
      }
    const size_t valueBuffers = lifetimes.size();
    for (ValueId v = 0; v < g_.size(); ++v)
      if (int64_t bytes = conversionBound(g_, v); bytes > 0) {
        lifetimes.push_back({bytes, v, v});
        owners.push_back(v);
      }
    std::vector<int64_t> offsets = assignOffsets(lifetimes, plan_.arenaBytes);
    for (size_t i = 0; i < lifetimes.size(); ++i) {
      plan_.arenaBuffers.emplace_back(lifetimes[i], offsets[i]);
      Placement& p = at(owners[i]);
      if (i < valueBuffers) {
        p.offset = offsets[i];
      } else {
        p.scratchOffset = offsets[i];
        p.scratchBytes = lifetimes[i].bytes;
      }
    }
    for (ValueId v = 0; v < g_.size(); ++v)
      if (inArena(v) && sharedWith[static_cast<size_t>(v)] >= 0) at(v).offset = at(bufferRoot(sharedWith, v)).offset;
  }

  /// The finished plan.
  MemoryPlan take() { return std::move(plan_); }

 private:
  Placement& at(ValueId v) { return plan_.values[static_cast<size_t>(v)]; }
  int32_t& lastOf(ValueId v) { return last_[static_cast<size_t>(v)]; }
  bool inArena(ValueId v) { return at(v).storage == Storage::Arena; }
  /// The value whose bytes `v` are: a view's bytes belong to the value it finally views.
  ValueId owner(ValueId v) { return at(v).storage == Storage::View ? at(v).viewOf : v; }
  /// True when node v reads `buffer` only directly (no view of it) and at its own index.
  bool overwrites(ValueId v, ValueId buffer) {
    const auto& operands = g_.node(v).operands;
    bool reads = false;
    for (size_t i = 0; i < operands.size(); ++i) {
      if (owner(operands[i]) != buffer) continue;
      if (operands[i] != buffer || !readsOperandAtOwnIndex(g_, v, i)) return false;
      reads = true;
    }
    return reads;
  }

  const ir::Graph& g_;
  MemoryPlan plan_;
  std::vector<int32_t> last_;  ///< per buffer owner: the last node reading it (g.size(): after the run)
};

}  // namespace

MemoryPlan planMemory(const ir::Graph& g) {
  Planner planner(g);
  planner.placeByKind();
  planner.placeUpdates();
  std::vector<ValueId> sharedWith = planner.mergeInPlace();
  planner.assignArena(sharedWith);
  return planner.take();
}

int64_t freeArenaOffset(const MemoryPlan& plan, int32_t step, int64_t bytes) {
  std::vector<std::pair<int64_t, int64_t>> taken;  // [begin, end) of the buffers live at `step`
  const auto at = static_cast<size_t>(step);
  const int64_t own = at < plan.values.size() ? plan.values[at].scratchOffset : -1;
  for (const auto& [life, offset] : plan.arenaBuffers) {
    bool ownScratch = offset == own && life.first == step && life.last == step;
    if (life.first <= step && step <= life.last && !ownScratch) taken.emplace_back(offset, offset + slotBytes(life.bytes));
  }
  std::sort(taken.begin(), taken.end());
  int64_t candidate = 0;
  for (const auto& [begin, end] : taken) {
    if (begin >= candidate + bytes) break;
    candidate = std::max(candidate, end);
  }
  return candidate + bytes <= plan.arenaBytes ? candidate : -1;
}

}  // namespace weft::cpu
