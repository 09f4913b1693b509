// Memory planning: offsets never overlap for buffers live at the same time; reuse otherwise.
#include <gtest/gtest.h>

#include "runtime/cpu/memory_plan.h"
#include "models/registry.h"

using namespace weft;
using cpu::BufferLifetime;

namespace {

/// True when no two buffers that are live at the same step share a byte.
bool noConflicts(const std::vector<BufferLifetime>& b, const std::vector<int64_t>& offsets) {
  for (size_t i = 0; i < b.size(); ++i)
    for (size_t j = i + 1; j < b.size(); ++j) {
      bool sameTime = b[i].first <= b[j].last && b[j].first <= b[i].last;
      bool sameBytes = offsets[i] < offsets[j] + b[j].bytes && offsets[j] < offsets[i] + b[i].bytes;
      if (sameTime && sameBytes) return false;
    }
  return true;
}

}  // namespace

TEST(AssignOffsets, DisjointLifetimesShareTheSameBytes) {
  int64_t arena = 0;
  auto offsets = cpu::assignOffsets({{256, 0, 1}, {256, 2, 3}, {128, 4, 5}}, arena);
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(arena, 256);
}

TEST(AssignOffsets, OverlappingLifetimesGetSeparateAlignedRanges) {
  int64_t arena = 0;
  // b0 [0,2] and b1 [1,3] overlap; b2 [3,4] overlaps b1 only, so it can reuse b0's bytes.
  std::vector<BufferLifetime> b = {{100, 0, 2}, {200, 1, 3}, {64, 3, 4}};
  auto offsets = cpu::assignOffsets(b, arena);
  EXPECT_EQ(offsets[1], 0);    // the largest goes first, at 0
  EXPECT_EQ(offsets[0], 256);  // 200 rounded up to the 64-byte alignment
  EXPECT_EQ(offsets[2], 256);  // fits in b0's bytes: b0 is dead by step 3
  EXPECT_EQ(arena, 256 + 128);
  EXPECT_TRUE(noConflicts(b, offsets));
}

TEST(AssignOffsets, FillsAGapBetweenLiveBuffers) {
  int64_t arena = 0;
  // Long-lived 64 B at 0 and 128 B; a short 64 B buffer in the middle of their lifetimes
  // goes after both; then one live only at the end reuses the freed middle.
  std::vector<BufferLifetime> b = {{128, 0, 9}, {64, 0, 9}, {64, 2, 3}, {64, 5, 6}};
  auto offsets = cpu::assignOffsets(b, arena);
  EXPECT_TRUE(noConflicts(b, offsets));
  EXPECT_EQ(offsets[2], offsets[3]);
  EXPECT_EQ(arena, 256);
}

TEST(PlanMemory, EveryModelGetsAConflictFreePlanSmallerThanNoReuse) {
  for (const char* name : {"mlp_tiny", "lenet_tiny", "vae_tiny", "gpt_tiny"}) {
    SCOPED_TRACE(name);
    ir::Graph g = models::buildModel(name);
    cpu::MemoryPlan plan = cpu::planMemory(g);
    ASSERT_EQ(plan.values.size(), static_cast<size_t>(g.size()));
    int64_t total = 0, persistent = 0;
    std::vector<BufferLifetime> arena;
    std::vector<int64_t> offsets;
    for (ir::ValueId v = 0; v < g.size(); ++v) {
      const cpu::Placement& p = plan.values[static_cast<size_t>(v)];
      const ir::Node& n = g.node(v);
      if (n.op == ir::OpKind::Param) {
        EXPECT_EQ(p.storage, cpu::Storage::Persistent);
        persistent += static_cast<int64_t>(n.type.byteSize());
      }
      if (n.op == ir::OpKind::Input) EXPECT_EQ(p.storage, cpu::Storage::Input);
      if (n.op == ir::OpKind::Reshape) {
        EXPECT_EQ(p.storage, cpu::Storage::View);
        EXPECT_NE(plan.values[static_cast<size_t>(p.viewOf)].storage, cpu::Storage::View);
      }
      if (p.storage != cpu::Storage::Arena) continue;
      total += static_cast<int64_t>(n.type.byteSize());
      // A value is live from its definition to its last reader (through views).
      int32_t last = v;
      for (ir::ValueId u = v + 1; u < g.size(); ++u)
        for (ir::ValueId o : g.node(u).operands) {
          const cpu::Placement& po = plan.values[static_cast<size_t>(o)];
          if (o == v || (po.storage == cpu::Storage::View && po.viewOf == v)) last = u;
        }
      for (const auto& out : g.outputs()) if (out.value == v) last = g.size();
      arena.push_back({static_cast<int64_t>(n.type.byteSize()), v, last});
      offsets.push_back(p.offset);
      EXPECT_EQ(p.offset % cpu::kArenaAlignment, 0);
      EXPECT_LE(p.offset + static_cast<int64_t>(n.type.byteSize()), plan.arenaBytes);
    }
    EXPECT_TRUE(noConflicts(arena, offsets));
    EXPECT_LT(plan.arenaBytes, total);  // some bytes are reused
    EXPECT_GE(plan.persistentBytes, persistent);
  }
}

TEST(PlanMemory, UpdateValuesBecomeTheirParametersTwins) {
  ir::Graph g("twins");
  ir::TensorType t{ir::DType::f32, {4}};
  ir::ValueId p = g.addParam("p", t, {{"init", std::string("zeros")}});
  ir::ValueId q = g.addParam("q", t, {{"init", std::string("zeros")}});
  ir::ValueId x = g.addInput("x", t);
  ir::ValueId nextP = g.addOp(ir::OpKind::Add, {p, x});
  ir::ValueId nextQ = g.addOp(ir::OpKind::Mul, {q, x});
  g.addOutput("q_next", nextQ);  // read after the run: stays in the arena and is copied
  g.addUpdate(p, nextP);
  g.addUpdate(q, nextQ);
  cpu::MemoryPlan plan = cpu::planMemory(g);
  const cpu::Placement &pp = plan.values[static_cast<size_t>(p)], &up = plan.values[static_cast<size_t>(nextP)];
  EXPECT_EQ(up.storage, cpu::Storage::Persistent);
  EXPECT_EQ(up.twin, p);
  EXPECT_EQ(pp.twin, nextP);
  EXPECT_NE(up.offset, pp.offset);
  EXPECT_LE(up.offset + 16, plan.persistentBytes);
  EXPECT_EQ(plan.values[static_cast<size_t>(nextQ)].storage, cpu::Storage::Arena);
  EXPECT_EQ(plan.values[static_cast<size_t>(q)].twin, -1);
}
