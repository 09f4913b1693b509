#pragma once
// Shared by the tests of the C interface (runtime/weft.h): bundles built in memory (the
// optimized graph's text plus a kernel table of kernels JIT-compiled in this process, the
// code a bundle's object holds), models, feeds, weights files and the mlp_tiny fixture.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/executable.h"
#include "backends/cpu/shared_compiler.h"
#include "ir/printer.h"
#include "models/registry.h"
#include "passes/train_step.h"
#include "runtime/bundle_format.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/generated_steps.h"
#include "runtime/cpu/program.h"
#include "runtime/file_io.h"
#include "runtime/safetensors.h"
#include "runtime/weft.h"

namespace capitest {

using namespace weft;
using reference::TensorMap;
namespace fs = std::filesystem;

// ---------------------------------------------------------------- bundles in memory

/// A bundle descriptor built in this process: what `weft compile --aot` links into NAME.o.
struct MemoryBundle {
  std::string name;
  std::string program;
  std::vector<weft_kernel> kernels;
  weft_bundle bundle{};
};

/// The graph a bundle of `g` runs, optimized for the CPU unless `optimize` is false.
inline ir::Graph compiledGraph(const ir::Graph& g, bool optimize) { return optimize ? cpu::optimizeForCpu(g) : g; }

/// The bundle of `g` called `name`: its program text and its kernels, JIT-compiled by the
/// process's shared compiler (so they are the JIT executable's very functions).
inline std::unique_ptr<MemoryBundle> makeBundle(const ir::Graph& g, const std::string& name, bool optimize = true) {
  auto b = std::make_unique<MemoryBundle>();
  b->name = name;
  ir::Graph compiled = compiledGraph(g, optimize);
  ir::PrintOptions print;
  print.elideLargeConstants = false;
  b->program = ir::printGraph(compiled, print);
  std::vector<const ir::Graph*> bodies;
  const cpu::MemoryPlan plan = cpu::planMemory(compiled);
  const std::vector<cpu::GeneratedStep> steps =
      cpu::generatedSteps(compiled, plan, cpu::blockedValues(compiled, plan));  // as the loader repeats it
  for (const cpu::GeneratedStep& step : steps) bodies.push_back(step.body.get());
  if (!bodies.empty())
    for (const cpu::GeneratedKernel* k : cpu::compileShared(bodies))  // cached for the process's lifetime
      b->kernels.push_back(
          weft_kernel{k->name.c_str(), k->entry, k->numInputs, k->parallelExtent, k->work, k->partialSums ? 1 : 0});
  b->bundle = weft_bundle{WEFT_ABI_VERSION,     b->name.c_str(),       b->program.c_str(),
                          static_cast<int64_t>(b->program.size()), b->kernels.data(),
                          static_cast<int64_t>(b->kernels.size()), "",
                          cpu::channelBlocksFit() ? cpu::kChannelBlock : 0};
  return b;
}

inline ir::Graph mlpEval() {
  models::BuildOptions options;
  options.training = false;
  return models::buildModel("mlp_tiny", options);
}

inline ir::Graph adamStep(const std::string& model) {
  passes::TrainConfig cfg;
  cfg.optimizer = passes::parseOptimizer("adam");
  return passes::buildTrainStep(models::buildModel(model), cfg);
}

// ---------------------------------------------------------------- models

using ModelHandle = std::unique_ptr<weft_model, void (*)(weft_model*)>;

/// A model of `bundle` (null, with a test failure, when creating it fails).
inline ModelHandle createModel(const weft_bundle& bundle) {
  weft_model* model = nullptr;
  weft_status status = weft_model_create(&bundle, &model);
  EXPECT_EQ(status, WEFT_OK) << weft_last_error();
  return ModelHandle(model, weft_model_destroy);
}

/// Inputs of `g`: float inputs vary with `salt`, integer ones cycle through [0, 5), `lr` is 0.05.
inline TensorMap feedsFor(const ir::Graph& g, int salt) {
  TensorMap feeds;
  for (ir::ValueId v : g.inputs()) {
    const ir::Node& n = g.node(v);
    ir::TensorData t(n.type);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.set(i, n.name == "lr"                ? 0.05
               : ir::isFloat(n.type.dtype) ? std::sin(0.3 * double(i + salt))
                                           : double((i + salt) % 5));
    feeds[n.name] = t;
  }
  return feeds;
}

/// Binds every feed as an input of `model` (the feeds must outlive the next run).
inline void setInputs(weft_model* model, const TensorMap& feeds) {
  for (const auto& [name, t] : feeds)
    ASSERT_EQ(weft_model_set_input(model, name.c_str(), t.bytes.data(), t.bytes.size()), WEFT_OK)
        << weft_model_error(model);
}

/// The outputs of `g` as `model` last computed them.
inline TensorMap outputsOf(const weft_model* model, const ir::Graph& g) {
  TensorMap outputs;
  for (const auto& out : g.outputs()) {
    size_t bytes = 0;
    const void* data = weft_model_output(model, out.name.c_str(), &bytes);
    EXPECT_NE(data, nullptr) << out.name << ": " << weft_model_error(model);
    ir::TensorData t(g.type(out.value));
    EXPECT_EQ(bytes, t.bytes.size()) << out.name;
    if (data && bytes == t.bytes.size() && bytes) std::memcpy(t.bytes.data(), data, bytes);
    outputs[out.name] = std::move(t);
  }
  return outputs;
}

/// The parameters of `g` as `model` holds them.
inline TensorMap paramsOf(weft_model* model, const ir::Graph& g) {
  TensorMap params;
  for (ir::ValueId p : g.params()) {
    const std::string& name = g.node(p).name;
    size_t bytes = 0;
    void* data = weft_model_param(model, name.c_str(), &bytes);
    EXPECT_NE(data, nullptr) << name << ": " << weft_model_error(model);
    ir::TensorData t(g.type(p));
    EXPECT_EQ(bytes, t.bytes.size()) << name;
    if (data && bytes == t.bytes.size() && bytes) std::memcpy(t.bytes.data(), data, bytes);
    params[name] = std::move(t);
  }
  return params;
}

/// Every tensor of `want` is in `got` with the same type and bytes.
inline void expectBitwise(const TensorMap& got, const TensorMap& want, const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  for (const auto& [name, w] : want) {
    auto it = got.find(name);
    if (it == got.end()) {
      ADD_FAILURE() << what << ": no " << name;
      continue;
    }
    EXPECT_EQ(it->second.type, w.type) << what << ": " << name;
    EXPECT_TRUE(it->second.bytes == w.bytes) << what << ": " << name << " differs bitwise";
  }
}

/// `state` with every float element changed (so loaded weights differ from initial ones).
inline TensorMap perturbed(TensorMap state) {
  for (auto& [name, t] : state)
    if (ir::isFloat(t.type.dtype))
      for (int64_t i = 0; i < t.numel(); ++i) t.set(i, t.get(i) * 1.5 + 0.01 * double(i % 7));
  return state;
}

// ---------------------------------------------------------------- weights files

/// A fresh, empty directory under the system temp dir.
inline fs::path freshDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("weft_capi_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// The safetensors bytes of `tensors` with a bundle's metadata (abi omitted when empty).
inline std::string weightsBytes(const TensorMap& tensors, const std::string& graph,
                                const std::string& abi = std::to_string(WEFT_ABI_VERSION)) {
  runtime::MetadataMap metadata = {{runtime::kBundleGraphKey, graph}, {runtime::kBundleNameKey, graph}};
  if (!abi.empty()) metadata[runtime::kBundleAbiKey] = abi;
  return runtime::serializeSafetensors(tensors, metadata);
}

inline void writeBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream stream(path, std::ios::binary);
  stream << bytes;
  ASSERT_TRUE(static_cast<bool>(stream)) << path;
}

/// Expects `status` to be `want` and the model's message to contain `phrase`.
inline void expectFailure(weft_status status, weft_status want, const weft_model* model, const std::string& phrase) {
  EXPECT_EQ(status, want) << weft_model_error(model);
  std::string message = weft_model_error(model);
  EXPECT_NE(message.find(phrase), std::string::npos) << "message: " << message << "\nexpected phrase: " << phrase;
}

/// mlp_tiny's inference bundle with a model loaded with weights, and the JIT holding the same.
struct CApiMlp : ::testing::Test {
  ir::Graph graph = mlpEval();
  std::unique_ptr<MemoryBundle> bundle = makeBundle(graph, "mlp_tiny");
  cpu::Executable jit = cpu::compile(graph);
  TensorMap weights;
  fs::path dir = freshDir("mlp");
  ModelHandle model = createModel(bundle->bundle);
  TensorMap feeds = feedsFor(graph, 1);
  TensorMap expected;

  void SetUp() override {
    ASSERT_NE(model, nullptr);
    weights = perturbed(jit.state());
    jit.setState(weights);
    writeBytes(dir / "mlp.safetensors", weightsBytes(weights, graph.name()));
    ASSERT_EQ(weft_model_load_weights(model.get(), (dir / "mlp.safetensors").c_str()), WEFT_OK)
        << weft_model_error(model.get());
    expected = jit.run(feeds);
  }
  void TearDown() override { fs::remove_all(dir); }

  /// The model still runs correctly on the fixture's weights.
  void expectStillWorks() {
    expectBitwise(paramsOf(model.get(), graph), weights, "parameters");
    setInputs(model.get(), feeds);
    ASSERT_EQ(weft_model_run(model.get()), WEFT_OK) << weft_model_error(model.get());
    expectBitwise(outputsOf(model.get(), graph), expected, "outputs");
  }
  /// Loading `bytes` from a file fails with `status` and `phrase`, leaving the model working.
  void expectLoadFails(const std::string& bytes, weft_status status, const std::string& phrase) {
    writeBytes(dir / "bad.safetensors", bytes);
    expectFailure(weft_model_load_weights(model.get(), (dir / "bad.safetensors").c_str()), status, model.get(), phrase);
    expectFailure(weft_model_load_weights_from_memory(model.get(), bytes.data(), bytes.size()), status, model.get(),
                  phrase == (dir / "bad.safetensors").string() ? "weights in memory" : phrase);
    expectStillWorks();
  }
};

/// Expects creating `bundle` to fail with `status` and `phrase`, leaving no model.
inline void expectCreateFails(const weft_bundle& bundle, weft_status status, const std::string& phrase) {
  weft_model* model = reinterpret_cast<weft_model*>(0x1);
  EXPECT_EQ(weft_model_create(&bundle, &model), status) << weft_last_error();
  EXPECT_EQ(model, nullptr);
  std::string message = weft_last_error();
  EXPECT_NE(message.find(phrase), std::string::npos) << "message: " << message << "\nexpected phrase: " << phrase;
}

}  // namespace capitest
