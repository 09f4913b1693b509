// Every registered model, as a graph and as its training step, written as an ahead-of-time
// bundle, linked into a shared library with the C++ compiler, loaded with dlopen and run
// through the C interface: its outputs (and, for training steps, the updated parameters)
// must equal the JIT executable's bitwise, since the same kernels and primitives run.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "backends/cpu/aot.h"
#include "backends/cpu/executable.h"
#include "models/registry.h"
#include "passes/train_step.h"
#include "runtime/weft.h"
#include "tests/unit/common/model_feeds.h"

using namespace weft;
namespace fs = std::filesystem;

namespace {

/// modelFeeds, with a training step's learning rate at 1e-3.
reference::TensorMap feedsFor(const ir::Graph& g) {
  reference::TensorMap feeds = weft::testing::modelFeeds(g);
  if (auto lr = feeds.find("lr"); lr != feeds.end()) lr->second.set(0, 1e-3);
  return feeds;
}

/// A bundle's object linked into a shared library and loaded.
class LoadedBundle {
 public:
  LoadedBundle(const fs::path& dir, const std::string& name) {
    fs::path library = dir / ("lib" + name + ".so");
    std::string command = std::string(WEFT_TEST_CXX) + " -shared -o '" + library.string() + "' '" +
                          (dir / (name + ".o")).string() + "' -lm";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    handle_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    EXPECT_NE(handle_, nullptr) << dlerror();
    if (handle_) bundle_ = static_cast<const weft_bundle*>(dlsym(handle_, (name + "_bundle").c_str()));
    EXPECT_NE(bundle_, nullptr);
  }
  ~LoadedBundle() {
    if (handle_) dlclose(handle_);
  }
  const weft_bundle* bundle() const { return bundle_; }

 private:
  void* handle_ = nullptr;
  const weft_bundle* bundle_ = nullptr;
};

/// `what` of `model` equals `want` byte for byte.
void expectBytes(const void* got, size_t gotBytes, const ir::TensorData& want, const std::string& what) {
  ASSERT_NE(got, nullptr) << what;
  ASSERT_EQ(gotBytes, want.bytes.size()) << what;
  EXPECT_EQ(std::memcmp(got, want.bytes.data(), gotBytes), 0) << what << " differs from the JIT's";
}

/// Writes, links and runs the bundle of `g` and compares it with the JIT executable.
void checkBundle(const ir::Graph& g, const fs::path& dir) {
  const std::string name = "m";
  cpu::AotOptions options;
  options.outDir = dir.string();
  options.name = name;
  cpu::writeBundle(g, options);
  LoadedBundle loaded(dir, name);
  ASSERT_NE(loaded.bundle(), nullptr);

  weft_model* model = nullptr;
  ASSERT_EQ(weft_model_create(loaded.bundle(), &model), WEFT_OK) << weft_last_error();
  ASSERT_EQ(weft_model_load_weights(model, (dir / (name + ".safetensors")).c_str()), WEFT_OK) << weft_model_error(model);
  reference::TensorMap feeds = feedsFor(g);
  for (const auto& [input, t] : feeds)
    ASSERT_EQ(weft_model_set_input(model, input.c_str(), t.bytes.data(), t.bytes.size()), WEFT_OK)
        << weft_model_error(model);

  cpu::Executable exe = cpu::compile(g);
  const bool training = !exe.graph().updates().empty();
  for (int round = 0; round < (training ? 2 : 1); ++round) {
    SCOPED_TRACE("step " + std::to_string(round));
    reference::RunOptions runOptions;  // random ops draw by step; the bundle's counter advances per step
    runOptions.step = static_cast<uint64_t>(round);
    reference::TensorMap want = training ? exe.step(feeds, runOptions) : exe.run(feeds, runOptions);
    ASSERT_EQ(training ? weft_model_step(model) : weft_model_run(model), WEFT_OK) << weft_model_error(model);
    for (const auto& [output, t] : want) {
      size_t bytes = 0;
      const void* got = weft_model_output(model, output.c_str(), &bytes);
      expectBytes(got, bytes, t, "output " + output);
    }
  }
  if (training)
    for (const auto& [param, t] : exe.state()) {
      size_t bytes = 0;
      void* got = weft_model_param(model, param.c_str(), &bytes);
      expectBytes(got, bytes, t, "parameter " + param);
    }
  weft_model_destroy(model);
}

std::vector<std::string> modelNames() {
  std::vector<std::string> names;
  for (const auto& m : models::allModels()) names.push_back(m.name);
  return names;
}

class BundleModels : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("weft-bundle-" + GetParam() + "-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_P(BundleModels, GraphMatchesTheJit) { checkBundle(models::buildModel(GetParam()), dir_ / "graph"); }

TEST_P(BundleModels, TrainingStepMatchesTheJit) {
  passes::TrainConfig config;
  checkBundle(passes::buildTrainStep(models::buildModel(GetParam()), config), dir_ / "train");
}

INSTANTIATE_TEST_SUITE_P(Registered, BundleModels, ::testing::ValuesIn(modelNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
