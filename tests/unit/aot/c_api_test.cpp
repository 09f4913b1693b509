// The C interface of runtime/weft.h: results. Bundles built in memory (c_api_test_util.h)
// and once a real bundle object linked into a shared library run through the C API and are
// compared bitwise with the JIT executable (same kernels, same oneDNN primitives): inference,
// training steps, caller-owned memory, weights saved and loaded, a gather with a bad index,
// denormals flushed or kept.
#include "tests/unit/aot/c_api_test_util.h"

#include <dlfcn.h>

#include <cstdio>

#include "backends/cpu/codegen/kernel_compiler.h"
#include "ir/parser.h"
#include "runtime/cpu/memory_plan.h"
#include "tests/unit/common/run_command.h"

#ifndef WEFT_TEST_CXX
#define WEFT_TEST_CXX "c++"
#endif

using namespace capitest;

// ---------------------------------------------------------------- results

TEST(CApi, ReportsItsAbiVersion) { EXPECT_EQ(weft_runtime_abi_version(), WEFT_ABI_VERSION); }

TEST(CApi, ParametersStartFromTheirInitializers) {
  ir::Graph g = mlpEval();
  auto b = makeBundle(g, "mlp_tiny");
  ModelHandle model = createModel(b->bundle);
  ASSERT_NE(model, nullptr);
  expectBitwise(paramsOf(model.get(), g), cpu::compile(g).state(), "initial parameters");
}

TEST(CApi, ARunWithoutWeightsUsesTheInitializers) {
  // The initializers run lazily, on the first run here (no weights loaded, no param read).
  ir::Graph g = mlpEval();
  auto b = makeBundle(g, "mlp_tiny");
  ModelHandle model = createModel(b->bundle);
  ASSERT_NE(model, nullptr);
  TensorMap feeds = feedsFor(g, 3);
  setInputs(model.get(), feeds);
  ASSERT_EQ(weft_model_run(model.get()), WEFT_OK) << weft_model_error(model.get());
  expectBitwise(outputsOf(model.get(), g), cpu::compile(g).run(feeds), "outputs with the initial parameters");
}

TEST_F(CApiMlp, RunMatchesTheJitBitwise) {
  expectBitwise(paramsOf(model.get(), graph), weights, "loaded parameters");
  setInputs(model.get(), feeds);
  ASSERT_EQ(weft_model_run(model.get()), WEFT_OK) << weft_model_error(model.get());
  expectBitwise(outputsOf(model.get(), graph), expected, "outputs");
  // Rebinding the inputs to other data and running again.
  TensorMap other = feedsFor(graph, 7);
  setInputs(model.get(), other);
  ASSERT_EQ(weft_model_run(model.get()), WEFT_OK) << weft_model_error(model.get());
  expectBitwise(outputsOf(model.get(), graph), jit.run(other), "outputs of the second run");
}

TEST_F(CApiMlp, OneThreadComputesTheSameOutputs) {
  ASSERT_EQ(weft_model_set_threads(model.get(), 1), WEFT_OK);
  setInputs(model.get(), feeds);
  ASSERT_EQ(weft_model_run(model.get()), WEFT_OK) << weft_model_error(model.get());
  TensorMap got = outputsOf(model.get(), graph);
  for (const auto& [name, want] : expected)
    for (int64_t i = 0; i < want.numel(); ++i)
      EXPECT_NEAR(got.at(name).get(i), want.get(i), 1e-5 * std::max(1.0, std::fabs(want.get(i)))) << name << " " << i;
  expectFailure(weft_model_set_threads(model.get(), 0), WEFT_ERROR_ARGUMENT, model.get(), "expected 1 to 1024");
  expectFailure(weft_model_set_threads(model.get(), 100000), WEFT_ERROR_ARGUMENT, model.get(), "100000 threads");
}

TEST(CApi, TrainingStepsMatchTheJitBitwise) {
  ir::Graph g = adamStep("mlp_tiny");
  auto b = makeBundle(g, "mlp_tiny_train");
  cpu::Executable jit = cpu::compile(g);
  ModelHandle model = createModel(b->bundle);
  ASSERT_NE(model, nullptr);
  expectBitwise(paramsOf(model.get(), g), jit.state(), "initial state");

  // run computes outputs without updating the state.
  TensorMap first = feedsFor(g, 0);
  setInputs(model.get(), first);
  ASSERT_EQ(weft_model_run(model.get()), WEFT_OK) << weft_model_error(model.get());
  expectBitwise(outputsOf(model.get(), g), jit.run(first), "outputs of run");
  expectBitwise(paramsOf(model.get(), g), jit.state(), "state after run");

  for (int step = 0; step < 2; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    TensorMap batch = feedsFor(g, step);
    reference::RunOptions options;
    options.step = static_cast<uint64_t>(step);
    TensorMap want = jit.step(batch, options);
    setInputs(model.get(), batch);
    ASSERT_EQ(weft_model_step(model.get()), WEFT_OK) << weft_model_error(model.get());
    expectBitwise(outputsOf(model.get(), g), want, "outputs");
  }
  TensorMap state = paramsOf(model.get(), g);
  expectBitwise(state, jit.state(), "state after two steps");
  EXPECT_FALSE(state == cpu::compile(g).state()) << "the steps changed nothing";
}

TEST(CApi, GatherIndexOutOfRangeIsAnArgumentErrorNotACrash) {
  ir::Graph g("gather_rows");
  ir::ValueId table = g.addInput("table", {ir::DType::f32, {5, 3}});
  ir::ValueId rows = g.addInput("rows", {ir::DType::i32, {2}});
  ir::ValueId picked = g.addOp(ir::OpKind::Gather, {table, rows}, {{"axis", int64_t{0}}});
  g.addOutput("doubled", g.addOp(ir::OpKind::Add, {picked, picked}));
  auto b = makeBundle(g, "gather_rows");
  ModelHandle model = createModel(b->bundle);
  ASSERT_NE(model, nullptr);
  std::vector<float> data(15);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i);
  ASSERT_EQ(weft_model_set_input(model.get(), "table", data.data(), sizeof(float) * data.size()), WEFT_OK);

  for (std::vector<int32_t> bad : {std::vector<int32_t>{1, 5}, std::vector<int32_t>{-1, 0}}) {
    ASSERT_EQ(weft_model_set_input(model.get(), "rows", bad.data(), sizeof(int32_t) * 2), WEFT_OK);
    expectFailure(weft_model_run(model.get()), WEFT_ERROR_ARGUMENT, model.get(), "out of range [0, 5)");
    EXPECT_EQ(weft_model_output(model.get(), "doubled", nullptr), nullptr) << "outputs of a failed run";
  }
  std::vector<int32_t> good = {4, 1};
  ASSERT_EQ(weft_model_set_input(model.get(), "rows", good.data(), sizeof(int32_t) * 2), WEFT_OK);
  ASSERT_EQ(weft_model_run(model.get()), WEFT_OK) << weft_model_error(model.get());
  size_t bytes = 0;
  const auto* out = static_cast<const float*>(weft_model_output(model.get(), "doubled", &bytes));
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(bytes, 6 * sizeof(float));
  const float want[] = {24, 26, 28, 6, 8, 10};  // 2 * rows 4 and 1 of 0..14
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[i], want[i]) << i;
}

// ---------------------------------------------------------------- weights

TEST_F(CApiMlp, SaveThenLoadRoundTripsEveryParameter) {
  size_t bytes = 0;
  auto* bias = static_cast<float*>(weft_model_param(model.get(), "fc1.bias", &bytes));
  ASSERT_NE(bias, nullptr);
  ASSERT_EQ(bytes, 12 * sizeof(float));
  bias[3] = 42.5f;  // parameters are writable
  TensorMap saved = paramsOf(model.get(), graph);
  std::string path = (dir / "saved.safetensors").string();
  ASSERT_EQ(weft_model_save_weights(model.get(), path.c_str()), WEFT_OK) << weft_model_error(model.get());

  runtime::MetadataMap metadata = runtime::readSafetensorsMetadata(path);
  EXPECT_EQ(metadata[runtime::kBundleAbiKey], std::to_string(WEFT_ABI_VERSION));
  EXPECT_EQ(metadata[runtime::kBundleGraphKey], graph.name());
  EXPECT_EQ(metadata[runtime::kBundleNameKey], "mlp_tiny");
  EXPECT_FALSE(metadata[runtime::kBundleVersionKey].empty());
  expectBitwise(runtime::loadSafetensors(path), saved, "the saved file");

  ModelHandle other = createModel(bundle->bundle);
  ASSERT_NE(other, nullptr);
  ASSERT_EQ(weft_model_load_weights(other.get(), path.c_str()), WEFT_OK) << weft_model_error(other.get());
  expectBitwise(paramsOf(other.get(), graph), saved, "parameters loaded from the file");

  ModelHandle fromMemory = createModel(bundle->bundle);
  ASSERT_NE(fromMemory, nullptr);
  std::string file = runtime::readFileBytes(path);
  ASSERT_EQ(weft_model_load_weights_from_memory(fromMemory.get(), file.data(), file.size()), WEFT_OK)
      << weft_model_error(fromMemory.get());
  expectBitwise(paramsOf(fromMemory.get(), graph), saved, "parameters loaded from memory");

  expectFailure(weft_model_save_weights(model.get(), (dir / "no" / "such" / "dir.safetensors").c_str()),
                WEFT_ERROR_IO, model.get(), "no/such/dir.safetensors");
}

TEST(CApi, AnInferenceBundleLoadsTheWeightsATrainingBundleSaved) {
  ir::Graph train = adamStep("mlp_tiny"), eval = mlpEval();
  auto trainBundle = makeBundle(train, "mlp_train");
  auto evalBundle = makeBundle(eval, "mlp");
  ModelHandle trainer = createModel(trainBundle->bundle), runner = createModel(evalBundle->bundle);
  ASSERT_TRUE(trainer && runner);
  TensorMap batch = feedsFor(train, 3);
  setInputs(trainer.get(), batch);
  ASSERT_EQ(weft_model_step(trainer.get()), WEFT_OK) << weft_model_error(trainer.get());
  fs::path dir = freshDir("train");
  std::string path = (dir / "trained.safetensors").string();
  ASSERT_EQ(weft_model_save_weights(trainer.get(), path.c_str()), WEFT_OK) << weft_model_error(trainer.get());
  ASSERT_EQ(weft_model_load_weights(runner.get(), path.c_str()), WEFT_OK) << weft_model_error(runner.get());
  TensorMap trained = paramsOf(trainer.get(), train);
  TensorMap loaded = paramsOf(runner.get(), eval);
  ASSERT_FALSE(loaded.empty());
  for (const auto& [name, t] : loaded) EXPECT_TRUE(t == trained.at(name)) << name;
  fs::remove_all(dir);
}

TEST_F(CApiMlp, CallerOwnedMemoryIsCheckedAndUsed) {
  cpu::MemoryPlan plan = cpu::planMemory(ir::parseGraph(bundle->program));
  ASSERT_GT(plan.arenaBytes, 0);
  ASSERT_GT(plan.persistentBytes, 0);
  size_t arenaBytes = static_cast<size_t>(plan.arenaBytes), stateBytes = static_cast<size_t>(plan.persistentBytes);
  auto allocate = [](size_t bytes) {
    return std::unique_ptr<uint8_t, void (*)(void*)>(static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 127) / 64 * 64)),
                                                     std::free);
  };
  auto arena = allocate(arenaBytes + 64), state = allocate(stateBytes + 64);
  weft_model* raw = nullptr;
  EXPECT_EQ(weft_model_create_with_memory(&bundle->bundle, arena.get(), arenaBytes - 1, state.get(), stateBytes, &raw),
            WEFT_ERROR_ARGUMENT);
  EXPECT_NE(std::string(weft_last_error()).find("the arena of " + std::to_string(arenaBytes - 1) +
                                                " bytes is too small: bundle 'mlp_tiny' needs " +
                                                std::to_string(arenaBytes)),
            std::string::npos)
      << weft_last_error();
  EXPECT_EQ(weft_model_create_with_memory(&bundle->bundle, arena.get(), arenaBytes, state.get(), stateBytes - 4, &raw),
            WEFT_ERROR_ARGUMENT);
  EXPECT_NE(std::string(weft_last_error()).find("the state memory of"), std::string::npos) << weft_last_error();
  EXPECT_EQ(weft_model_create_with_memory(&bundle->bundle, arena.get() + 8, arenaBytes, state.get(), stateBytes, &raw),
            WEFT_ERROR_ARGUMENT);
  EXPECT_NE(std::string(weft_last_error()).find("the arena is not 64-byte aligned"), std::string::npos)
      << weft_last_error();
  EXPECT_EQ(weft_model_create_with_memory(&bundle->bundle, nullptr, 0, state.get(), stateBytes, &raw),
            WEFT_ERROR_ARGUMENT);
  EXPECT_EQ(raw, nullptr);

  ASSERT_EQ(weft_model_create_with_memory(&bundle->bundle, arena.get(), arenaBytes, state.get(), stateBytes, &raw),
            WEFT_OK)
      << weft_last_error();
  ModelHandle own(raw, weft_model_destroy);
  auto* param = static_cast<uint8_t*>(weft_model_param(own.get(), "fc2.weight", nullptr));
  EXPECT_TRUE(param >= state.get() && param < state.get() + stateBytes) << "parameters live in the caller's memory";
  std::string file = runtime::readFileBytes(dir / "mlp.safetensors");
  ASSERT_EQ(weft_model_load_weights_from_memory(own.get(), file.data(), file.size()), WEFT_OK);
  setInputs(own.get(), feeds);
  ASSERT_EQ(weft_model_run(own.get()), WEFT_OK) << weft_model_error(own.get());
  auto* logits = static_cast<const uint8_t*>(weft_model_output(own.get(), "logits", nullptr));
  EXPECT_TRUE(logits >= arena.get() && logits < arena.get() + arenaBytes) << "activations live in the caller's arena";
  expectBitwise(outputsOf(own.get(), graph), expected, "outputs with caller-owned memory");
}

TEST(CApi, WritesThroughAParameterPointerCountInLaterRuns) {
  // relu(x w) with weights wide enough for brgemm to hold them in its blocked panels (in the
  // JIT as in the bundle): writes through a pointer taken before a run must still reach the
  // runs after it.
  ir::Graph g("held_weights");
  ir::ValueId x = g.addInput("x", ir::TensorType{ir::DType::f32, {64, 256}});
  ir::ValueId w = g.addParam("w", ir::TensorType{ir::DType::f32, {256, 128}},
                             {{"init", std::string("normal")}, {"scale", 0.1}, {"seed", int64_t{7}}});
  g.addOutput("y", g.addOp(ir::OpKind::Relu, {g.addOp(ir::OpKind::Matmul, {x, w})}));
  cpu::Executable jit = cpu::compile(g);
  if (jit.stats().heldBytes == 0) GTEST_SKIP() << "oneDNN holds no weights on this CPU";
  auto b = makeBundle(g, "held");
  ModelHandle model = createModel(b->bundle);
  ASSERT_NE(model, nullptr);
  size_t bytes = 0;
  auto* weight = static_cast<float*>(weft_model_param(model.get(), "w", &bytes));
  ASSERT_NE(weight, nullptr);
  TensorMap feeds = feedsFor(g, 2);
  setInputs(model.get(), feeds);
  ASSERT_EQ(weft_model_run(model.get()), WEFT_OK) << weft_model_error(model.get());
  expectBitwise(outputsOf(model.get(), g), jit.run(feeds), "outputs before the write");
  for (size_t i = 0; i < bytes / sizeof(float); ++i) weight[i] = -weight[i];
  ASSERT_EQ(weft_model_run(model.get()), WEFT_OK) << weft_model_error(model.get());
  jit.setState(paramsOf(model.get(), g));
  expectBitwise(outputsOf(model.get(), g), jit.run(feeds), "outputs after the write");
}

// ---------------------------------------------------------------- a real bundle object

namespace {

using weft::testing::runCommand;

}  // namespace

TEST_F(CApiMlp, ALinkedBundleObjectRunsAsTheJit) {
  ir::Graph compiled = cpu::optimizeForCpu(graph);
  std::vector<const ir::Graph*> bodies;
  for (ir::ValueId v = 0; v < compiled.size(); ++v)
    if (cpu::runsGeneratedKernel(compiled.node(v))) bodies.push_back(compiled.node(v).body.get());
  cpu::KernelCompiler compiler;
  cpu::BundleObject object = compiler.emitBundle(bodies, {"mlp_linked", bundle->program});
  writeBytes(dir / "mlp_linked.o", object.elf);
  std::string command = std::string(WEFT_TEST_CXX) + " -shared -o " + (dir / "libmlp_linked.so").string() + " " +
                        (dir / "mlp_linked.o").string() + " -lm";
  std::string output;
  ASSERT_EQ(runCommand(command, output), 0) << command << "\n" << output;
  void* library = ::dlopen((dir / "libmlp_linked.so").c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(library, nullptr) << ::dlerror();
  {
    const auto* linked = static_cast<const weft_bundle*>(::dlsym(library, "mlp_linked_bundle"));
    ASSERT_NE(linked, nullptr) << ::dlerror();
    ModelHandle fromObject = createModel(*linked);
    ASSERT_NE(fromObject, nullptr);
    ASSERT_EQ(weft_model_load_weights(fromObject.get(), (dir / "mlp.safetensors").c_str()), WEFT_OK)
        << weft_model_error(fromObject.get());
    setInputs(fromObject.get(), feeds);
    ASSERT_EQ(weft_model_run(fromObject.get()), WEFT_OK) << weft_model_error(fromObject.get());
    expectBitwise(outputsOf(fromObject.get(), graph), expected, "outputs of the linked bundle");
  }
  ::dlclose(library);
}


TEST(CApi, RunsFlushDenormalsUnlessToldToKeepThem) {
  ir::Graph g("scaled");
  ir::ValueId x = g.addInput("x", {ir::DType::f32, {4096}});
  ir::ValueId s = g.addInput("s", {ir::DType::f32, {}});
  g.addOutput("y", g.addOp(ir::OpKind::Mul, {x, s}));
  auto b = makeBundle(g, "scaled");
  ModelHandle model = createModel(b->bundle);
  ASSERT_NE(model, nullptr);
  TensorMap feeds;
  feeds["x"] = ir::TensorData({ir::DType::f32, {4096}});
  feeds["s"] = ir::TensorData({ir::DType::f32, {}});
  for (int64_t i = 0; i < 4096; ++i) feeds["x"].set(i, 1e-30f);
  feeds["s"].set(0, 1e-10f);  // products of 1e-40, below f32's smallest normal
  auto firstOutput = [&] {
    setInputs(model.get(), feeds);
    EXPECT_EQ(weft_model_run(model.get()), WEFT_OK) << weft_model_error(model.get());
    return static_cast<float>(outputsOf(model.get(), g).at("y").get(0));
  };
  if (const char* env = std::getenv("WEFT_DENORMALS"); !env || std::string(env) != "keep") {
    EXPECT_EQ(firstOutput(), 0.0f);  // flushing is the default
  }
  ASSERT_EQ(weft_model_set_denormals(model.get(), 0), WEFT_OK);
  EXPECT_EQ(firstOutput(), 1e-30f * 1e-10f);
  ASSERT_EQ(weft_model_set_denormals(model.get(), 1), WEFT_OK);
  EXPECT_EQ(firstOutput(), 0.0f);
  expectFailure(weft_model_set_denormals(model.get(), 2), WEFT_ERROR_ARGUMENT, model.get(), "1 flushes denormals, 0 keeps them");
  EXPECT_EQ(weft_model_set_denormals(nullptr, 1), WEFT_ERROR_ARGUMENT);
}
