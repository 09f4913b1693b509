// Memory planning: offsets never overlap for buffers live at the same time; reuse otherwise.
#include <gtest/gtest.h>

#include <functional>

#include "backends/cpu/executable.h"
#include "cpu_test_util.h"
#include "runtime/cpu/memory_plan.h"
#include "ir/verifier.h"
#include "models/registry.h"
#include "passes/train_step.h"

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

const ir::TensorType kF4{ir::DType::f32, {4}};

/// Appends a generated elementwise kernel (fused, kind "loop") over `operands`, each of
/// type kF4, whose body `build` makes from the body's inputs.
ir::ValueId addLoop(ir::Graph& g, const std::vector<ir::ValueId>& operands,
                    const std::function<ir::ValueId(ir::Graph&, const std::vector<ir::ValueId>&)>& build) {
  return cpu::testing::addFused(g, "loop", operands, build);
}

/// The Adam training step of registered model `name`, compiled for the CPU.
cpu::Executable compiledAdamStep(const std::string& name) {
  passes::TrainConfig config;
  config.optimizer.kind = passes::OptimizerKind::adam;
  return cpu::compile(passes::buildTrainStep(models::buildModel(name), config));
}

/// in0 + in1 as a loop body.
ir::ValueId addBody(ir::Graph& b, const std::vector<ir::ValueId>& in) { return b.addOp(ir::OpKind::Add, {in[0], in[1]}); }

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

// Six buffers that every greedy order (largest, longest-lived, earliest, most byte-steps
// first; first or best fit) packs into 768 bytes, while 704 bytes are live at step 2 and an
// order exists that needs no more: the local search finds it.
TEST(AssignOffsets, LocalSearchReachesTheLiveBoundWhereGreedyOrdersDoNot) {
  std::vector<BufferLifetime> b = {{192, 1, 4}, {64, 2, 4}, {192, 0, 2}, {320, 3, 5}, {128, 1, 1}, {192, 1, 2}};
  int64_t arena = 0;
  auto offsets = cpu::assignOffsets(b, arena);
  EXPECT_TRUE(noConflicts(b, offsets));
  EXPECT_EQ(arena, 704);
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
      if (n.op == ir::OpKind::Input) {
        EXPECT_EQ(p.storage, cpu::Storage::Input);
      }
      if (n.op == ir::OpKind::Reshape) {
        EXPECT_EQ(p.storage, cpu::Storage::View);
        EXPECT_NE(plan.values[static_cast<size_t>(p.viewOf)].storage, cpu::Storage::View);
      }
      total += cpu::conversionBound(g, v);  // a convolution's scratch region
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

TEST(PlanMemory, ElementwiseUpdatesOverwriteTheirParameters) {
  // p's last reader computes p + x: in p's slot. q is read by a later kernel too: its update
  // becomes a twin instead.
  ir::Graph g("in_place");
  ir::ValueId p = g.addParam("p", kF4, {{"init", std::string("zeros")}});
  ir::ValueId q = g.addParam("q", kF4, {{"init", std::string("zeros")}});
  ir::ValueId x = g.addInput("x", kF4);
  ir::ValueId nextP = addLoop(g, {p, x}, addBody);
  ir::ValueId nextQ = addLoop(g, {q, x}, addBody);
  g.addOutput("y", addLoop(g, {q, nextP}, addBody));
  g.addUpdate(p, nextP);
  g.addUpdate(q, nextQ);
  cpu::MemoryPlan plan = cpu::planMemory(g);
  const cpu::Placement &pp = plan.values[static_cast<size_t>(p)], &up = plan.values[static_cast<size_t>(nextP)];
  EXPECT_EQ(up.storage, cpu::Storage::Persistent);
  EXPECT_EQ(up.inPlaceOf, p);
  EXPECT_EQ(up.offset, pp.offset);
  EXPECT_EQ(up.twin, -1);
  EXPECT_EQ(plan.values[static_cast<size_t>(nextQ)].inPlaceOf, -1);
  EXPECT_EQ(plan.values[static_cast<size_t>(nextQ)].twin, q);
  EXPECT_EQ(plan.persistentBytes, 3 * 64);  // p, q and q's twin, each one aligned slot
}

TEST(PlanMemory, OnlyElementwiseReadsAtTheirOwnIndexOverwrite) {
  // p[3] broadcast + x reads p at another index than the element it writes.
  ir::Graph g("not_in_place");
  ir::ValueId p = g.addParam("p", kF4, {{"init", std::string("zeros")}});
  ir::ValueId x = g.addInput("x", kF4);
  ir::ValueId next = addLoop(g, {p, x}, [](ir::Graph& b, const std::vector<ir::ValueId>& in) {
    ir::ValueId turned = b.addOp(ir::OpKind::Slice, {in[0]}, {{"start", std::vector<int64_t>{3}}, {"limit", std::vector<int64_t>{4}}, {"stride", std::vector<int64_t>{1}}});
    return b.addOp(ir::OpKind::Add, {b.addOp(ir::OpKind::Broadcast, {turned}, {{"shape", std::vector<int64_t>{4}}}), in[1]});
  });
  g.addUpdate(p, next);
  EXPECT_FALSE(cpu::readsOperandAtOwnIndex(g, next, 0));
  EXPECT_TRUE(cpu::readsOperandAtOwnIndex(g, next, 1));
  cpu::MemoryPlan plan = cpu::planMemory(g);
  EXPECT_EQ(plan.values[static_cast<size_t>(next)].inPlaceOf, -1);
  EXPECT_EQ(plan.values[static_cast<size_t>(next)].twin, p);
}

TEST(PlanMemory, ArenaValuesReuseTheOperandTheyReadLast) {
  // a = x + x; b = a + x (a's last reader): b in a's bytes; c = b + a2 where a2 is read
  // again by the output d: c gets b's bytes but never a2's.
  ir::Graph g("chain");
  ir::ValueId x = g.addInput("x", kF4);
  ir::ValueId a = addLoop(g, {x, x}, addBody);
  ir::ValueId b = addLoop(g, {a, x}, addBody);
  ir::ValueId a2 = addLoop(g, {x, x}, addBody);
  ir::ValueId c = addLoop(g, {a2, b}, addBody);
  ir::ValueId d = addLoop(g, {c, a2}, addBody);
  g.addOutput("d", d);
  cpu::MemoryPlan plan = cpu::planMemory(g);
  auto offset = [&](ir::ValueId v) { return plan.values[static_cast<size_t>(v)].offset; };
  EXPECT_EQ(offset(b), offset(a));
  EXPECT_EQ(offset(c), offset(b));
  EXPECT_NE(offset(a2), offset(c));
  EXPECT_EQ(offset(d), offset(c));  // c's last reader is d, which also reads a2 (not last)
  EXPECT_EQ(plan.arenaBytes, 2 * 64);
}

TEST(PlanMemory, CompiledTrainingStepsShareBuffersOnlyInPlace) {
  // Fused training steps: every update runs in its parameter's slot, and two arena values
  // live at the same time share bytes only when the later overwrites the earlier in place.
  for (const char* name : {"mlp_tiny", "lenet_tiny", "gpt_tiny"}) {
    SCOPED_TRACE(name);
    cpu::Executable exe = compiledAdamStep(name);
    const ir::Graph& g = exe.graph();
    cpu::MemoryPlan plan = cpu::planMemory(g);
    int64_t params = 0;
    for (ir::ValueId v : g.params()) params += (static_cast<int64_t>(g.type(v).byteSize()) + 63) / 64 * 64;
    EXPECT_EQ(plan.persistentBytes, params);
    for (const auto& u : g.updates()) EXPECT_EQ(plan.values[static_cast<size_t>(u.value)].inPlaceOf, u.param);
    std::vector<int32_t> last(static_cast<size_t>(g.size()), -1);
    for (ir::ValueId v = 0; v < g.size(); ++v)
      for (ir::ValueId o : g.node(v).operands) {
        const cpu::Placement& po = plan.values[static_cast<size_t>(o)];
        last[static_cast<size_t>(po.storage == cpu::Storage::View ? po.viewOf : o)] = v;
      }
    for (const auto& out : g.outputs()) last[static_cast<size_t>(out.value)] = g.size();
    for (ir::ValueId a = 0; a < g.size(); ++a)
      for (ir::ValueId b = a + 1; b < g.size(); ++b) {
        const cpu::Placement &pa = plan.values[static_cast<size_t>(a)], &pb = plan.values[static_cast<size_t>(b)];
        if (pa.storage != cpu::Storage::Arena || pb.storage != cpu::Storage::Arena) continue;
        int32_t endA = std::max(last[static_cast<size_t>(a)], a), endB = std::max(last[static_cast<size_t>(b)], b);
        bool sameTime = b <= endA && a <= endB;
        bool sameBytes = pa.offset < pb.offset + static_cast<int64_t>(g.type(b).byteSize()) &&
                         pb.offset < pa.offset + static_cast<int64_t>(g.type(a).byteSize());
        if (!sameTime || !sameBytes) continue;
        // Legal only as a chain of in-place writes: a's last reader is b, which overwrites a.
        bool inPlace = endA == b && pa.offset == pb.offset;
        for (size_t i = 0; inPlace && i < g.node(b).operands.size(); ++i)
          if (g.node(b).operands[i] == a) inPlace = cpu::readsOperandAtOwnIndex(g, b, i);
        EXPECT_TRUE(inPlace) << ir::valueRef(g, a) << " and " << ir::valueRef(g, b) << " share bytes";
      }
  }
}

TEST(PlanMemory, FreeArenaOffsetsAvoidTheBuffersLiveAtTheStep) {
  // Buffers: A [0,64) live at steps 0-4, B [64,192) at 2-3, C [192,256) at 0-9.
  cpu::MemoryPlan plan;
  plan.arenaBytes = 256;
  plan.arenaBuffers = {{{64, 0, 4}, 0}, {{128, 2, 3}, 64}, {{64, 0, 9}, 192}};
  EXPECT_EQ(cpu::freeArenaOffset(plan, 1, 128), 64);   // B is not live yet
  EXPECT_EQ(cpu::freeArenaOffset(plan, 3, 64), -1);    // A, B and C fill the arena
  EXPECT_EQ(cpu::freeArenaOffset(plan, 5, 192), 0);    // only C is live
  EXPECT_EQ(cpu::freeArenaOffset(plan, 5, 193), -1);   // too big for the gap before C
  EXPECT_EQ(cpu::freeArenaOffset(plan, 1, 129), -1);   // the gap between A and C holds 128
}

TEST(PlanMemory, ConvolutionStepsGetScratchThatNoLiveValueTouches) {
  // lenet_tiny's training step: each conv, conv_transpose and conv_weight_grad has a region
  // of conversionBound() bytes, apart from every arena buffer live at its step.
  cpu::Executable exe = compiledAdamStep("lenet_tiny");
  const ir::Graph& g = exe.graph();
  cpu::MemoryPlan plan = cpu::planMemory(g);
  int regions = 0;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const cpu::Placement& p = plan.values[static_cast<size_t>(v)];
    EXPECT_EQ(p.scratchBytes, cpu::conversionBound(g, v));
    if (p.scratchBytes == 0) continue;
    ++regions;
    EXPECT_LE(p.scratchOffset + p.scratchBytes, plan.arenaBytes);
    for (const auto& [life, offset] : plan.arenaBuffers) {
      if (life.first == v && life.last == v && offset == p.scratchOffset) continue;  // the region itself
      bool live = life.first <= v && v <= life.last;
      bool overlaps = offset < p.scratchOffset + p.scratchBytes && p.scratchOffset < offset + life.bytes;
      EXPECT_FALSE(live && overlaps) << ir::valueRef(g, v) << "'s scratch overlaps a buffer live at its step";
    }
  }
  EXPECT_GE(regions, 5);  // 2 convs, 2 weight gradients, 1 data gradient
  // A convolution's bound: x [2,1,28,28] (one channel: read as it is), w [8,1,3,3] padded
  // to 64x64, y [2,8,26,26] padded to 16 channels, each 64-byte aligned.
  ir::Graph conv("conv");
  ir::ValueId x = conv.addInput("x", {ir::DType::f32, {2, 1, 28, 28}});
  ir::ValueId w = conv.addInput("w", {ir::DType::f32, {8, 1, 3, 3}});
  ir::ValueId y = conv.addOp(ir::OpKind::Conv, {x, w},
                             {{"stride", std::vector<int64_t>{1, 1}}, {"padding", std::vector<int64_t>{0, 0}},
                              {"dilation", std::vector<int64_t>{1, 1}}, {"groups", int64_t{1}}});
  EXPECT_EQ(cpu::conversionBound(conv, y), 64 * 64 * 9 * 4 + 2 * 16 * 26 * 26 * 4);
  EXPECT_EQ(cpu::conversionBound(conv, x), 0);
}
