// Memory planning for the compiled CPU backend: lifetimes over the node order, then offsets.
#include "runtime/cpu/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "ir/attrs.h"

namespace weft::cpu {

using ir::OpKind;
using ir::ValueId;

namespace {

int64_t alignUp(int64_t n) { return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

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

}  // namespace

int64_t conversionBound(const ir::Graph& g, ValueId v) {
  const ir::Node& node = g.node(v);
  if (node.type.dtype != ir::DType::f32 || node.type.shape.size() < 3) return 0;
  // The activation and weight operands: a fused conv's are its body conv's, when they are
  // body inputs.
  std::vector<ValueId> operands;
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
  auto activation = [](const ir::Shape& s) { return paddedBytes(s, 1, 16); };
  auto weight = [](const ir::Shape& s) { return paddedBytes(s, 64, 64); };
  // conv: x, w -> y; conv_transpose: dy, w -> x; conv_weight_grad: x, dy -> w. A
  // convolution's one-channel source (an image) is read as it is: its plain layout is also
  // its channels-last one.
  bool resultIsWeight = node.op == OpKind::ConvWeightGrad;
  int64_t bytes = resultIsWeight ? weight(node.type.shape) : activation(node.type.shape);
  for (size_t i = 0; i < operands.size() && i < 2; ++i) {
    const ir::Shape& shape = g.type(operands[i]).shape;
    bool isWeight = i == 1 && !resultIsWeight;
    bool plainSource = i == 0 && node.op != OpKind::ConvTranspose && shape[1] == 1;
    bytes += isWeight ? weight(shape) : plainSource ? 0 : activation(shape);
  }
  return bytes;
}

bool readsOperandAtOwnIndex(const ir::Graph& g, ValueId v, size_t i) {
  const ir::Node& node = g.node(v);
  if (node.op != OpKind::Fused || !node.body || i >= node.operands.size() ||
      ir::AttrReader(node.attrs, node.op).s("kind") != "loop")
    return false;
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

std::vector<int64_t> assignOffsets(const std::vector<BufferLifetime>& buffers, int64_t& arenaBytes) {
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by earlier start so the plan is deterministic.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (buffers[a].bytes != buffers[b].bytes) return buffers[a].bytes > buffers[b].bytes;
    return buffers[a].first < buffers[b].first;
  });
  std::vector<int64_t> offsets(buffers.size(), 0);
  std::vector<size_t> placed;  // kept sorted by offset, so each search is one pass
  arenaBytes = 0;
  for (size_t i : order) {
    // First fit: walk the placed buffers that live at the same time as i, by offset, and
    // take the first gap that holds it.
    int64_t size = alignUp(std::max<int64_t>(buffers[i].bytes, 1));
    int64_t candidate = 0;
    for (size_t p : placed) {
      if (!overlapInTime(buffers[p], buffers[i])) continue;
      if (offsets[p] >= candidate + size) break;
      candidate = std::max(candidate, offsets[p] + alignUp(std::max<int64_t>(buffers[p].bytes, 1)));
    }
    offsets[i] = candidate;
    arenaBytes = std::max(arenaBytes, candidate + size);
    auto at = std::upper_bound(placed.begin(), placed.end(), candidate,
                               [&](int64_t offset, size_t p) { return offset < offsets[p]; });
    placed.insert(at, i);
  }
  return offsets;
}

MemoryPlan planMemory(const ir::Graph& g) {
  const auto n = static_cast<size_t>(g.size());
  MemoryPlan plan;
  plan.values.resize(n);
  // A view's bytes belong to the value it finally views.
  auto owner = [&](ValueId v) {
    const Placement& p = plan.values[static_cast<size_t>(v)];
    return p.storage == Storage::View ? p.viewOf : v;
  };
  std::vector<int32_t> last(n, -1);
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& node = g.node(v);
    Placement& p = plan.values[static_cast<size_t>(v)];
    if (node.op == OpKind::Param) {
      p.storage = Storage::Persistent;
      p.offset = plan.persistentBytes;
      plan.persistentBytes += alignUp(static_cast<int64_t>(node.type.byteSize()));
    } else if (node.op == OpKind::Input) {
      p.storage = Storage::Input;
    } else if (node.op == OpKind::Constant) {
      p.storage = Storage::Constant;
    } else if (node.op == OpKind::Reshape) {
      p.storage = Storage::View;
      p.viewOf = owner(node.operands.at(0));
    } else {
      p.storage = Storage::Arena;
    }
    for (ValueId o : node.operands) last[static_cast<size_t>(owner(o))] = v;
  }
  std::vector<int> updatesOf(n, 0), outputs(n, 0);
  for (const auto& u : g.updates()) {
    ++updatesOf[static_cast<size_t>(u.param)];
    ++updatesOf[static_cast<size_t>(u.value)];
  }
  for (const auto& out : g.outputs()) ++outputs[static_cast<size_t>(out.value)];
  // Buffers read after the run (outputs, update values, and what they view): a parameter
  // among them must keep its value until the end.
  std::vector<char> readAfterRun(n, 0);
  for (const auto& out : g.outputs()) readAfterRun[static_cast<size_t>(owner(out.value))] = 1;
  for (const auto& u : g.updates()) readAfterRun[static_cast<size_t>(owner(u.value))] = 1;
  // True when node v reads `buffer` only directly (no view of it) and at its own index.
  auto overwrites = [&](ValueId v, ValueId buffer) {
    const auto& operands = g.node(v).operands;
    bool reads = false;
    for (size_t i = 0; i < operands.size(); ++i) {
      if (owner(operands[i]) != buffer) continue;
      if (operands[i] != buffer || !readsOperandAtOwnIndex(g, v, i)) return false;
      reads = true;
    }
    return reads;
  };
  // In-place updates: the parameter's last reader computes its update into the same slot.
  for (const auto& u : g.updates()) {
    Placement& value = plan.values[static_cast<size_t>(u.value)];
    const Placement& param = plan.values[static_cast<size_t>(u.param)];
    if (value.storage != Storage::Arena || param.storage != Storage::Persistent || u.value == u.param ||
        updatesOf[static_cast<size_t>(u.value)] != 1 || updatesOf[static_cast<size_t>(u.param)] != 1 ||
        outputs[static_cast<size_t>(u.value)] != 0 || last[static_cast<size_t>(u.param)] != u.value ||
        readAfterRun[static_cast<size_t>(u.param)] || !overwrites(u.value, u.param))
      continue;
    value.storage = Storage::Persistent;
    value.offset = param.offset;
    value.inPlaceOf = u.param;
  }
  // Twins: an update value alone in updating its parameter, computed into the arena and not
  // read after the run as an output, gets a persistent slot beside the parameter's.
  for (const auto& u : g.updates()) {
    Placement& value = plan.values[static_cast<size_t>(u.value)];
    Placement& param = plan.values[static_cast<size_t>(u.param)];
    if (value.storage != Storage::Arena || param.storage != Storage::Persistent || u.value == u.param ||
        updatesOf[static_cast<size_t>(u.value)] != 1 || updatesOf[static_cast<size_t>(u.param)] != 1 ||
        outputs[static_cast<size_t>(u.value)] != 0 || g.type(u.value).byteSize() != g.type(u.param).byteSize())
      continue;
    value.storage = Storage::Persistent;
    value.offset = plan.persistentBytes;
    plan.persistentBytes += alignUp(static_cast<int64_t>(g.type(u.value).byteSize()));
    value.twin = u.param;
    param.twin = u.value;
  }
  auto keepToEnd = [&](ValueId v) { last[static_cast<size_t>(owner(v))] = g.size(); };
  for (const auto& out : g.outputs()) keepToEnd(out.value);
  for (const auto& u : g.updates()) keepToEnd(u.value);

  // In-place arena values: a value takes the buffer of an operand of the same size that it
  // reads last, at its own index. Merged values form groups sharing one buffer.
  auto inArena = [&](ValueId v) { return plan.values[static_cast<size_t>(v)].storage == Storage::Arena; };
  std::vector<ValueId> sharedWith(n, -1);
  for (ValueId v = 0; v < g.size(); ++v) {
    if (!inArena(v)) continue;
    for (ValueId o : g.node(v).operands)
      if (inArena(o) && last[static_cast<size_t>(o)] == v && g.type(o).byteSize() == g.type(v).byteSize() &&
          overwrites(v, o)) {
        sharedWith[static_cast<size_t>(v)] = bufferRoot(sharedWith, o);
        break;
      }
  }
  std::vector<int32_t> groupEnd(n, -1);
  for (ValueId v = 0; v < g.size(); ++v) {
    if (!inArena(v)) continue;
    int32_t end = std::max(last[static_cast<size_t>(v)], v);  // an unused value still needs its own step
    int32_t& rootEnd = groupEnd[static_cast<size_t>(bufferRoot(sharedWith, v))];
    rootEnd = std::max(rootEnd, end);
  }
  std::vector<BufferLifetime> lifetimes;
  std::vector<ValueId> arenaValues;
  for (ValueId v = 0; v < g.size(); ++v) {
    if (!inArena(v) || sharedWith[static_cast<size_t>(v)] >= 0) continue;
    lifetimes.push_back({static_cast<int64_t>(g.type(v).byteSize()), v, groupEnd[static_cast<size_t>(v)]});
    arenaValues.push_back(v);
  }
  // Conversion scratch of convolution-family steps, live for their own step only.
  const size_t valueBuffers = lifetimes.size();
  std::vector<ValueId> scratchOwners;
  for (ValueId v = 0; v < g.size(); ++v)
    if (int64_t bytes = conversionBound(g, v); bytes > 0) {
      lifetimes.push_back({bytes, v, v});
      scratchOwners.push_back(v);
    }
  std::vector<int64_t> offsets = assignOffsets(lifetimes, plan.arenaBytes);
  for (size_t i = 0; i < lifetimes.size(); ++i) plan.arenaBuffers.emplace_back(lifetimes[i], offsets[i]);
  for (size_t i = 0; i < valueBuffers; ++i) plan.values[static_cast<size_t>(arenaValues[i])].offset = offsets[i];
  for (size_t k = 0; k < scratchOwners.size(); ++k) {
    Placement& p = plan.values[static_cast<size_t>(scratchOwners[k])];
    p.scratchOffset = offsets[valueBuffers + k];
    p.scratchBytes = lifetimes[valueBuffers + k].bytes;
  }
  for (ValueId v = 0; v < g.size(); ++v)
    if (inArena(v) && sharedWith[static_cast<size_t>(v)] >= 0)
      plan.values[static_cast<size_t>(v)].offset =
          plan.values[static_cast<size_t>(bufferRoot(sharedWith, v))].offset;
  return plan;
}

int64_t freeArenaOffset(const MemoryPlan& plan, int32_t step, int64_t bytes) {
  std::vector<std::pair<int64_t, int64_t>> taken;  // [begin, end) of the buffers live at `step`
  for (const auto& [life, offset] : plan.arenaBuffers)
    if (life.first <= step && step <= life.last) taken.emplace_back(offset, offset + alignUp(std::max<int64_t>(life.bytes, 1)));
  std::sort(taken.begin(), taken.end());
  int64_t candidate = 0;
  for (const auto& [begin, end] : taken) {
    if (begin >= candidate + bytes) break;
    candidate = std::max(candidate, end);
  }
  return candidate + bytes <= plan.arenaBytes ? candidate : -1;
}

}  // namespace weft::cpu
