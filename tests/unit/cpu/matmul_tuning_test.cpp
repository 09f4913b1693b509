// Choosing oneDNN's matmul implementation by measurement (runtime/cpu/matmul_tuning.h): the
// impl attribute picks the implementation a step runs, tuning times large matmuls once and
// remembers the choice (in memory and in its file), small ones stay untimed, and every
// implementation computes what the reference interpreter computes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "backends/cpu/executable.h"
#include "cpu_test_util.h"
#include "ir/printer.h"
#include "runtime/cpu/matmul_tuning.h"
#include "runtime/cpu/onednn_ops.h"

using namespace weft;

namespace {

namespace fs = std::filesystem;
using ir::OpKind;

ir::TensorType f32(ir::Shape shape) { return {ir::DType::f32, std::move(shape)}; }

/// y = matmul(x, w) + b: a fused matmul with a bias after the CPU pipeline.
ir::Graph denseLayer(int64_t m, int64_t k, int64_t n) {
  ir::Graph g("dense");
  ir::ValueId x = g.addInput("x", f32({m, k}));
  ir::ValueId w = g.addInput("w", f32({k, n}));
  ir::ValueId b = g.addInput("b", f32({n}));
  g.addOutput("y", g.addOp(OpKind::Add, {g.addOp(OpKind::Matmul, {x, w}), b}));
  return g;
}

/// The first node of `g` that is a matmul or a fused matmul.
ir::ValueId firstMatmul(const ir::Graph& g) {
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (g.node(v).op == OpKind::Matmul ||
        (g.node(v).op == OpKind::Fused && ir::AttrReader(g.node(v).attrs, OpKind::Fused).s("kind") == "matmul"))
      return v;
  return -1;
}

/// A fresh folder for a test, removed afterwards.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("weft-matmul-tuning-" + std::to_string(::getpid()));
  TempDir() { fs::remove_all(path); }
  ~TempDir() { fs::remove_all(path); }
};

/// The implementations oneDNN offers for the matmul of `g` (optimized for the CPU).
std::vector<std::string> implementationsOf(const ir::Graph& g) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  auto step = cpu::compileOneDnnNode(g, firstMatmul(g), engine);
  return step ? step->implementations() : std::vector<std::string>{};
}

TEST(MatmulTuning, TheImplAttributePicksTheImplementation) {
  ir::Graph g = cpu::optimizeForCpu(denseLayer(64, 128, 96));
  const std::vector<std::string> names = implementationsOf(g);
  ASSERT_FALSE(names.empty());
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const ir::ValueId v = firstMatmul(g);
  for (const std::string& name : names) {
    g.node(v).attrs["impl"] = name;
    auto step = cpu::compileOneDnnNode(g, v, engine);
    ASSERT_TRUE(step);
    EXPECT_NE(step->describe().find("[" + name + "]"), std::string::npos) << step->describe();
    EXPECT_EQ(step->implementations(), names);
  }
  g.node(v).attrs["impl"] = std::string("no-such-kernel");  // not offered: oneDNN's first runs
  EXPECT_NE(cpu::compileOneDnnNode(g, v, engine)->describe().find("[" + names[0] + "]"), std::string::npos);
}

TEST(MatmulTuning, EveryImplementationComputesTheReference) {
  const ir::Graph input = denseLayer(64, 128, 96);
  const reference::TensorMap feeds = cpu::testing::sineFeeds(input);
  const reference::TensorMap want = reference::run(input, feeds);
  ir::Graph g = cpu::optimizeForCpu(input);
  for (const std::string& name : implementationsOf(g)) {
    g.node(firstMatmul(g)).attrs["impl"] = name;
    cpu::CompileOptions options;
    options.optimize = false;
    options.tuneMatmuls = false;
    cpu::Executable exe = cpu::compile(g, options);
    EXPECT_NE(exe.graph().node(firstMatmul(exe.graph())).attrs.count("impl"), 0u);
    cpu::testing::expectClose(exe.run(feeds), want, name);
  }
}

TEST(MatmulTuning, TimesLargeMatmulsOnceAndRemembersTheChoice) {
  const ir::Graph large = cpu::optimizeForCpu(denseLayer(256, 256, 256));
  if (implementationsOf(large).size() < 2) GTEST_SKIP() << "oneDNN offers one matmul here";
  TempDir dir;
  const std::string file = (dir.path / "sub" / "choices.txt").string();
  ir::Graph first = large;
  cpu::MatmulChoices choices(file);
  cpu::MatmulTuning tuning = cpu::tuneMatmuls(first, 2, choices);
  EXPECT_EQ(tuning.timed, 1);
  EXPECT_EQ(tuning.remembered, 0);
  const ir::Attrs chosen = first.node(firstMatmul(first)).attrs;
  EXPECT_EQ(tuning.changed, static_cast<int>(chosen.count("impl")));
  ASSERT_TRUE(fs::exists(file));

  // Another graph computing the same takes the choice without timing, as does a new table
  // reading the file (another process).
  for (cpu::MatmulChoices* table : {&choices, new cpu::MatmulChoices(file)}) {
    ir::Graph again = large;
    tuning = cpu::tuneMatmuls(again, 2, *table);
    EXPECT_EQ(tuning.timed, 0);
    EXPECT_EQ(tuning.remembered, 1);
    EXPECT_EQ(again.node(firstMatmul(again)).attrs, chosen);
    if (table != &choices) delete table;
  }
  // Another thread count is another choice.
  ir::Graph one = large;
  EXPECT_EQ(cpu::tuneMatmuls(one, 1, choices).timed, 1);
}

TEST(MatmulTuning, LeavesSmallMatmulsAndChosenOnesAlone) {
  cpu::MatmulChoices choices;
  ir::Graph small = cpu::optimizeForCpu(denseLayer(16, 32, 8));
  const ir::Graph before = small;
  cpu::MatmulTuning tuning = cpu::tuneMatmuls(small, 2, choices);
  EXPECT_EQ(tuning.timed + tuning.remembered + tuning.changed, 0);
  EXPECT_EQ(ir::printGraph(small), ir::printGraph(before));

  ir::Graph large = cpu::optimizeForCpu(denseLayer(256, 256, 256));
  large.node(firstMatmul(large)).attrs["impl"] = std::string("brg:avx512_core");
  tuning = cpu::tuneMatmuls(large, 2, choices);
  EXPECT_EQ(tuning.timed + tuning.remembered + tuning.changed, 0);
  EXPECT_EQ(ir::AttrReader(large.node(firstMatmul(large)).attrs, OpKind::Fused).s("impl"), "brg:avx512_core");
}

TEST(MatmulTuning, ChoicesFileSkipsWhatItCannotRead) {
  TempDir dir;
  fs::create_directories(dir.path);
  const fs::path file = dir.path / "choices.txt";
  std::ofstream(file) << "not the format line\n0123456789abcdef gemm:jit\n";
  cpu::MatmulChoices foreign(file.string());  // another format: nothing read, then replaced
  EXPECT_EQ(foreign.find("0123456789abcdef"), std::nullopt);
  foreign.record("key", "gemm:jit");
  EXPECT_EQ(foreign.find("key"), "gemm:jit");
  EXPECT_EQ(foreign.find("other"), std::nullopt);
  EXPECT_EQ(cpu::MatmulChoices(file.string()).find("key"), "gemm:jit");

  std::ofstream(file) << "weft matmul choices 2\nshort gemm:jit\n\n0123456789abcdef two words\n";
  cpu::MatmulChoices skipped(file.string());
  skipped.record("key", "brg:avx512_core");
  skipped.record("bad", "has space");  // not a word: not recorded
  EXPECT_EQ(cpu::MatmulChoices(file.string()).find("key"), "brg:avx512_core");
  EXPECT_EQ(cpu::MatmulChoices(file.string()).find("bad"), std::nullopt);

  cpu::MatmulChoices unwritable("/proc/weft-cannot-write/choices.txt");  // kept in memory
  unwritable.record("key", "gemm:jit");
  EXPECT_EQ(unwritable.find("key"), "gemm:jit");
}

}  // namespace
