// The causal attention steps (runtime/cpu/native_attention.h) and the fuse-attention pass
// that makes their nodes: each step's AVX-512 and AVX2 kernels (those this CPU runs) and the
// plain loops a CPU with neither runs compute as the reference interpreter does, over sizes that leave partial row
// tiles, panels and vectors (sequence 37, head width 12, v 40 wide, so k^T and v are
// packed); a training step's node reading q and k as views of the fused qkv; a node whose
// probabilities are read elsewhere is not merged; the attention body's checks.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu_test_util.h"

#include "backends/cpu/executable.h"
#include "ir/attrs.h"
#include "ir/error.h"
#include "ir/fused_attention.h"
#include "ir/parser.h"
#include "ir/verifier.h"
#include "models/families.h"
#include "passes/train_step.h"
#include "runtime/cpu/native_attention.h"

using namespace weft;

namespace {

ir::Graph attentionGraph(int64_t seq, int64_t head, int64_t width) {
  auto dims = [&](int64_t last) {
    return "f32[2,3," + std::to_string(seq) + "," + std::to_string(last) + "]";
  };
  return ir::parseGraph("graph @a(%q: " + dims(head) + ", %k: " + dims(head) + ", %v: " + dims(width) + ") {\n" +
                        "  %y = attention(%q, %k, %v) {causal=1, scale=0.3} : " + dims(width) + "\n" +
                        "  return y=%y\n}\n");
}

/// The value of `g`'s only causal attention node (-1 when there is none or several).
ir::ValueId attentionNode(const ir::Graph& g) {
  ir::ValueId found = -1;
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (cpu::runsCausalAttention(g, v)) {
      if (found >= 0) return -1;
      found = v;
    }
  return found;
}

/// A native step run with the tiles of an instruction set (runCausalAttentionWith).
using StepWith = void (*)(const cpu::NativeCall&, cpu::TileIsa);

/// Native step `step` with `isa` on node `node` of `g` over `operands`, its result named `name`.
reference::TensorMap runStep(StepWith step, cpu::TileIsa isa, const ir::Graph& g, ir::ValueId node,
                             const std::vector<const void*>& operands, const std::string& name) {
  ir::TensorData out(g.type(node));
  step(cpu::NativeCall{g, node, operands, out.bytes.data(), 0}, isa);
  reference::TensorMap got;
  got[name] = std::move(out);
  return got;
}

/// The instruction sets whose tiles this CPU runs, plain loops first, with their names.
std::vector<std::pair<cpu::TileIsa, std::string>> isasHere() {
  std::vector<std::pair<cpu::TileIsa, std::string>> isas = {{cpu::TileIsa::plain, "plain loops"}};
  if (cpu::hostTileIsa() != cpu::TileIsa::plain) isas.emplace_back(cpu::TileIsa::avx2, "AVX2");
  if (cpu::hostTileIsa() == cpu::TileIsa::avx512) isas.emplace_back(cpu::TileIsa::avx512, "AVX-512");
  return isas;
}

constexpr const char* kNoTiles = "fuse-attention merges only with AVX-512 or AVX2";

TEST(CausalAttention, PlainLoopsAndTheVectorKernelComputeAsTheReference) {
  if (cpu::hostTileIsa() == cpu::TileIsa::plain) GTEST_SKIP() << kNoTiles;
  const ir::Graph g = attentionGraph(37, 12, 40);
  const ir::Graph optimized = cpu::optimizeForCpu(g);
  const ir::ValueId node = attentionNode(optimized);
  ASSERT_GE(node, 0) << "the attention did not become one causal attention step";
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  const reference::TensorMap want = reference::run(g, feeds);
  std::vector<const void*> operands;
  for (ir::ValueId o : optimized.node(node).operands) {
    ASSERT_EQ(optimized.node(o).op, ir::OpKind::Input);  // q, k and v as fed
    operands.push_back(feeds.at(optimized.node(o).name).bytes.data());
  }
  for (const auto& [isa, name] : isasHere()) {
    SCOPED_TRACE(name);
    cpu::testing::expectCloseToLargest(runStep(&cpu::runCausalAttentionWith, isa, optimized, node, operands, "y"),
                                       want, 1e-5);
  }
}

TEST(CausalAttention, CompiledGraphsMatchTheReferenceAcrossShapes) {
  if (cpu::hostTileIsa() == cpu::TileIsa::plain) GTEST_SKIP() << kNoTiles;
  for (auto [seq, head, width] : {std::tuple{1, 4, 4}, {16, 16, 16}, {33, 64, 32}, {130, 24, 72}}) {
    SCOPED_TRACE("seq " + std::to_string(seq) + ", head " + std::to_string(head) + ", v " + std::to_string(width));
    const ir::Graph g = attentionGraph(seq, head, width);
    if (seq > 1) {
      EXPECT_GE(attentionNode(cpu::optimizeForCpu(g)), 0);
    }
    reference::TensorMap feeds = cpu::testing::sineFeeds(g);
    cpu::testing::expectCloseToLargest(cpu::compile(g).run(feeds), reference::run(g, feeds), 1e-5);
  }
}

TEST(CausalAttention, APipelineForAnotherCpuMergesNothing) {
  // A bundle built for another CPU (--mcpu) keeps the kernels apart: its steps are chosen for
  // this host's instruction sets.
  if (cpu::hostTileIsa() == cpu::TileIsa::plain) GTEST_SKIP() << kNoTiles;
  const ir::Graph g = attentionGraph(37, 12, 40);
  EXPECT_GE(attentionNode(cpu::optimizeForCpu(g)), 0);
  EXPECT_LT(attentionNode(cpu::optimizeForCpu(g, /*forThisCpu=*/false)), 0);
}

TEST(CausalAttention, ProbabilitiesReadElsewhereAreWrittenByTheStep) {
  if (cpu::hostTileIsa() == cpu::TileIsa::plain) GTEST_SKIP() << kNoTiles;
  // The softmax's result is an output as well: the step writes it (its body ends at the
  // probabilities) and their product with v stays a step of its own.
  const ir::Graph g = ir::parseGraph(R"(graph @a(%q: f32[2,8,4], %k: f32[2,8,4], %v: f32[2,8,4]) {
  %s = matmul(%q, %k) {transpose_rhs=1} : f32[2,8,8]
  %c = iota() {axis=1, dtype=i64, shape=[8, 8]} : i64[8,8]
  %r = iota() {axis=0, dtype=i64, shape=[8, 8]} : i64[8,8]
  %m = gt(%c, %r) : bool[8,8]
  %ninf = constant() {value=dense<[-inf]>} : f32[]
  %x = select(%m, %ninf, %s) : f32[2,8,8]
  %p = softmax(%x) {axis=2} : f32[2,8,8]
  %y = matmul(%p, %v) : f32[2,8,4]
  return y=%y, p=%p
}
)");
  const ir::Graph optimized = cpu::optimizeForCpu(g);
  const ir::ValueId node = attentionNode(optimized);
  ASSERT_GE(node, 0);
  EXPECT_EQ(ir::attentionParts(*optimized.node(node).body).result, -1);
  EXPECT_EQ(optimized.type(node).shape, (ir::Shape{2, 8, 8}));
  reference::TensorMap feeds = cpu::testing::sineFeeds(g);
  const reference::TensorMap want = reference::run(g, feeds);
  cpu::testing::expectCloseToLargest(cpu::compile(g).run(feeds), want, 1e-5);
  // The plain loops and each instruction set's tiles write the same probabilities.
  std::vector<const void*> operands;
  for (ir::ValueId o : optimized.node(node).operands) operands.push_back(feeds.at(optimized.node(o).name).bytes.data());
  for (const auto& [isa, name] : isasHere()) {
    SCOPED_TRACE(name);
    cpu::testing::expectCloseToLargest(runStep(&cpu::runCausalAttentionWith, isa, optimized, node, operands, "p"),
                                       {{"p", want.at("p")}}, 1e-5);
  }
}

/// A small GPT's training step (sequence 37, heads 12 wide) as optimized for this CPU.
ir::Graph smallGptTrainingStep() {
  models::GptConfig c{.batch = 2, .seq = 37, .dim = 24, .heads = 2, .ff = 48, .layers = 1};
  c.training = true;
  passes::TrainConfig config;
  config.optimizer = passes::parseOptimizer("adam");
  return cpu::optimizeForCpu(passes::buildTrainStep(models::buildGpt("gpt_small", c), config));
}

TEST(CausalAttention, ATrainingStepsNodeReadsTheHeadsOfTheFusedQkvInPlace) {
  if (cpu::hostTileIsa() == cpu::TileIsa::plain) GTEST_SKIP() << kNoTiles;
  // The forward pass's node (scores and softmax, returning the probabilities) reads q and k
  // as strided views of the fused qkv [2, 37, 72]: the plain loops and each instruction
  // set's tiles write what the reference interpreter computes from the node's body.
  const ir::Graph optimized = smallGptTrainingStep();
  const ir::ValueId node = attentionNode(optimized);
  ASSERT_GE(node, 0) << "the training step's attention did not become one step";
  const ir::Graph& body = *optimized.node(node).body;
  ASSERT_EQ(body.inputs().size(), 1u);  // the fused qkv, both q and k read from it
  EXPECT_EQ(body.type(body.inputs()[0]).shape, (ir::Shape{2, 37, 72}));
  reference::TensorMap feeds = cpu::testing::sineFeeds(body);
  const reference::TensorMap want = reference::run(body, feeds);
  const std::vector<const void*> operands = {feeds.at(body.node(body.inputs()[0]).name).bytes.data()};
  for (const auto& [isa, name] : isasHere()) {
    SCOPED_TRACE(name);
    cpu::testing::expectCloseToLargest(
        runStep(&cpu::runCausalAttentionWith, isa, optimized, node, operands, want.begin()->first), want, 1e-5);
  }
}

TEST(CausalAttentionGrad, PlainLoopsAndTheVectorKernelComputeAsItsBody) {
  if (cpu::hostTileIsa() == cpu::TileIsa::plain) GTEST_SKIP() << kNoTiles;
  // A small GPT's training step: its attention gradient node, fed causal probabilities (zero
  // above the diagonal, as the step's hints assume) and sine values, against the reference
  // interpreter running the node's body.
  const ir::Graph optimized = smallGptTrainingStep();
  ir::ValueId node = -1;
  for (ir::ValueId v = 0; v < optimized.size(); ++v)
    if (cpu::runsCausalAttentionGrad(optimized, v)) node = v;
  ASSERT_GE(node, 0) << "the attention's backward pass did not become one step";
  const ir::Graph& body = *optimized.node(node).body;
  const ir::ValueId probabilities = ir::attentionGradParts(body).probabilities;
  reference::TensorMap feeds = cpu::testing::sineFeeds(body);
  ir::TensorData& p = feeds.at(body.node(probabilities).name);
  const int64_t t = p.type.shape.back();
  for (int64_t i = 0; i < p.numel(); ++i)
    if (i % t > i / t % t) p.set(i, 0.0);
  const reference::TensorMap want = reference::run(body, feeds);
  std::vector<const void*> operands;
  for (ir::ValueId in : body.inputs()) operands.push_back(feeds.at(body.node(in).name).bytes.data());
  for (const auto& [isa, name] : isasHere()) {
    SCOPED_TRACE(name);
    cpu::testing::expectCloseToLargest(
        runStep(&cpu::runCausalAttentionGradWith, isa, optimized, node, operands, want.begin()->first), want, 1e-5);
  }
}

TEST(CausalAttention, TheVerifierNamesWhatAnAttentionBodyLacks) {
  // A softmax and a product, without the scores, is no attention body.
  const std::string text = R"(graph @a(%s: f32[2,4,4], %v: f32[2,4,4]) {
  %y = fused(%s, %v) {kind="attention"} : f32[2,4,4] {
    graph @body(%in0: f32[2,4,4], %in1: f32[2,4,4]) {
      %p = fused(%in0) {kind="rows"} : f32[2,4,4] {
        graph @rows(%in0: f32[2,4,4]) {
          %0 = reduce_max(%in0) {axes=[2], keepdims=1} : f32[2,4,1]
          %1 = sub(%in0, %0) : f32[2,4,4]
          %2 = exp(%1) : f32[2,4,4]
          %3 = reduce_sum(%2) {axes=[2], keepdims=1} : f32[2,4,1]
          %4 = div(%2, %3) : f32[2,4,4]
          return out=%4
        }
      }
      %o = fused(%p, %in1) {kind="matmul"} : f32[2,4,4] {
        graph @mm(%in0: f32[2,4,4], %in1: f32[2,4,4]) {
          %0 = matmul(%in0, %in1) : f32[2,4,4]
          return out=%0
        }
      }
      return out=%o
    }
  }
  return y=%y
}
)";
  try {
    ir::parseGraph(text, "bad.weft");
    FAIL() << "an attention body of two kernels was accepted";
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find("an attention body's fused nodes are of kinds matmul, rows and matmul"), std::string::npos) << e.what();
  }
}

}  // namespace
