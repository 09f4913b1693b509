// Memory planning for the compiled CPU backend: lifetimes over the node order, then offsets.
#include "runtime/cpu/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace weft::cpu {

using ir::OpKind;
using ir::ValueId;

namespace {

int64_t alignUp(int64_t n) { return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

bool overlapInTime(const BufferLifetime& a, const BufferLifetime& b) { return a.first <= b.last && b.first <= a.last; }

}  // namespace

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
  // Twins: an update value alone in updating its parameter, computed into the arena and not
  // read after the run as an output, gets a persistent slot beside the parameter's.
  std::vector<int> updatesOf(n, 0), outputs(n, 0);
  for (const auto& u : g.updates()) {
    ++updatesOf[static_cast<size_t>(u.param)];
    ++updatesOf[static_cast<size_t>(u.value)];
  }
  for (const auto& out : g.outputs()) ++outputs[static_cast<size_t>(out.value)];
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

  std::vector<BufferLifetime> lifetimes;
  std::vector<ValueId> arenaValues;
  for (ValueId v = 0; v < g.size(); ++v) {
    if (plan.values[static_cast<size_t>(v)].storage != Storage::Arena) continue;
    int32_t end = std::max(last[static_cast<size_t>(v)], v);  // an unused value still needs its own step
    lifetimes.push_back({static_cast<int64_t>(g.type(v).byteSize()), v, end});
    arenaValues.push_back(v);
  }
  std::vector<int64_t> offsets = assignOffsets(lifetimes, plan.arenaBytes);
  for (size_t i = 0; i < arenaValues.size(); ++i) plan.values[static_cast<size_t>(arenaValues[i])].offset = offsets[i];
  return plan;
}

}  // namespace weft::cpu
