// The C interface of runtime/weft.h: errors. Each is checked for its status, a key phrase of
// its message, and that the model still runs with its parameters unchanged: weights of another
// model, ABI or shape, corrupt and unreadable files, bad inputs, calls out of order, null
// pointers, bundles of another ABI or with a foreign kernel table, nodes nothing runs, an
// unknown WEFT_DENORMALS.
#include "tests/unit/aot/c_api_test_util.h"

using namespace capitest;

// ---------------------------------------------------------------- weights

TEST_F(CApiMlp, LoadingIsAllOrNothing) {
  // Weights of another model.
  ir::Graph lenet = models::buildModel("lenet_tiny");
  expectLoadFails(weightsBytes(reference::initialState(lenet), lenet.name()), WEFT_ERROR_MISMATCH,
                  "(weights of graph 'lenet_tiny') does not fit bundle 'mlp_tiny'");
  // A parameter of the wrong shape, another of the wrong dtype, another missing: all named.
  TensorMap wrong = perturbed(weights);
  wrong["fc2.bias"] = ir::TensorData({ir::DType::f32, {9}});
  wrong["fc3.weight"] = ir::TensorData({ir::DType::f64, {8, 5}});
  wrong.erase("fc1.weight");
  std::string bytes = weightsBytes(wrong, graph.name());
  expectLoadFails(bytes, WEFT_ERROR_MISMATCH, "tensor 'fc2.bias' is f32[9] but the bundle's parameter is f32[8]");
  expectLoadFails(bytes, WEFT_ERROR_MISMATCH, "tensor 'fc3.weight' is f64[8,5]");
  expectLoadFails(bytes, WEFT_ERROR_MISMATCH, "tensor 'fc1.weight' (f32[16,12]) is missing");
}

TEST_F(CApiMlp, WeightsOfAnotherAbiOrWithoutMetadataAreRefused) {
  TensorMap other = perturbed(weights);
  const std::string future = std::to_string(WEFT_ABI_VERSION + 1);
  expectLoadFails(weightsBytes(other, graph.name(), future), WEFT_ERROR_ABI,
                  "was written for weft ABI " + future + "; this runtime is ABI " + std::to_string(WEFT_ABI_VERSION));
  expectLoadFails(weightsBytes(other, graph.name(), ""), WEFT_ERROR_ABI, "has no weft.abi in its metadata");
  expectLoadFails(runtime::serializeSafetensors(other), WEFT_ERROR_ABI, "has no weft.abi in its metadata");
}

TEST_F(CApiMlp, CorruptFilesAreFormatErrors) {
  std::string good = weightsBytes(perturbed(weights), graph.name());
  std::string path = (dir / "bad.safetensors").string();
  expectLoadFails(good.substr(0, good.size() / 2), WEFT_ERROR_FORMAT, path);
  expectLoadFails(good.substr(0, good.size() - 1), WEFT_ERROR_FORMAT, "truncated");
  expectLoadFails(good.substr(0, 5), WEFT_ERROR_FORMAT, "too short");
  expectLoadFails("", WEFT_ERROR_FORMAT, "too short");
  std::string garbage(600, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 7919 + 13) % 251);
  expectLoadFails(garbage, WEFT_ERROR_FORMAT, path);
  expectLoadFails(std::string("\x10\0\0\0\0\0\0\0", 8) + "{\"a\": [1, 2]}   ", WEFT_ERROR_FORMAT,
                  "header entry must be an object");
}

TEST_F(CApiMlp, UnreadableFilesAreIoErrors) {
  std::string missing = (dir / "missing.safetensors").string();
  expectFailure(weft_model_load_weights(model.get(), missing.c_str()), WEFT_ERROR_IO, model.get(), missing);
  expectFailure(weft_model_load_weights(model.get(), dir.c_str()), WEFT_ERROR_IO, model.get(), dir.string());
  expectStillWorks();
}

// ---------------------------------------------------------------- calls out of order, bad arguments

TEST_F(CApiMlp, InputsAreCheckedByNameAndSize) {
  const ir::TensorData& x = feeds.at("x");
  expectFailure(weft_model_set_input(model.get(), "images", x.bytes.data(), x.bytes.size()), WEFT_ERROR_ARGUMENT,
                model.get(), "has no input 'images' (its inputs: x f32[4,16], y i32[4])");
  expectFailure(weft_model_set_input(model.get(), "fc1.bias", x.bytes.data(), 48), WEFT_ERROR_ARGUMENT, model.get(),
                "has no input 'fc1.bias'");
  expectFailure(weft_model_set_input(model.get(), "x", x.bytes.data(), x.bytes.size() - 4), WEFT_ERROR_ARGUMENT,
                model.get(), "is f32[4,16]: 256 bytes expected, got 252");
  expectFailure(weft_model_set_input(model.get(), "x", nullptr, x.bytes.size()), WEFT_ERROR_ARGUMENT, model.get(),
                "NULL");
  expectStillWorks();
}

TEST_F(CApiMlp, RunningBeforeEveryInputIsSetIsAStateError) {
  EXPECT_EQ(weft_model_output(model.get(), "logits", nullptr), nullptr);
  EXPECT_NE(std::string(weft_model_error(model.get())).find("call weft_model_run"), std::string::npos)
      << weft_model_error(model.get());
  expectFailure(weft_model_run(model.get()), WEFT_ERROR_STATE, model.get(), "input 'x' (f32[4,16]) is not set");
  const ir::TensorData& x = feeds.at("x");
  ASSERT_EQ(weft_model_set_input(model.get(), "x", x.bytes.data(), x.bytes.size()), WEFT_OK);
  expectFailure(weft_model_run(model.get()), WEFT_ERROR_STATE, model.get(), "input 'y' (i32[4]) is not set");
  expectStillWorks();
  size_t bytes = 1;
  EXPECT_EQ(weft_model_output(model.get(), "probabilities", &bytes), nullptr);
  EXPECT_EQ(bytes, 0u);
  EXPECT_NE(std::string(weft_model_error(model.get())).find("its outputs: logits f32[4,5], loss f32[]"),
            std::string::npos)
      << weft_model_error(model.get());
}

TEST_F(CApiMlp, StepOnAnInferenceBundleIsAStateError) {
  setInputs(model.get(), feeds);
  expectFailure(weft_model_step(model.get()), WEFT_ERROR_STATE, model.get(), "inference bundle");
  expectStillWorks();
}

TEST_F(CApiMlp, NullPointersAreArgumentErrors) {
  weft_model* none = reinterpret_cast<weft_model*>(0x1);
  EXPECT_EQ(weft_model_create(nullptr, &none), WEFT_ERROR_ARGUMENT);
  EXPECT_EQ(none, nullptr);
  EXPECT_NE(std::string(weft_last_error()).find("the bundle is NULL"), std::string::npos) << weft_last_error();
  EXPECT_EQ(weft_model_create(&bundle->bundle, nullptr), WEFT_ERROR_ARGUMENT);
  EXPECT_NE(std::string(weft_last_error()).find("the model pointer is NULL"), std::string::npos);
  EXPECT_EQ(weft_model_run(nullptr), WEFT_ERROR_ARGUMENT);
  EXPECT_NE(std::string(weft_last_error()).find("weft_model_run: the model is NULL"), std::string::npos);
  EXPECT_EQ(weft_model_step(nullptr), WEFT_ERROR_ARGUMENT);
  EXPECT_EQ(weft_model_set_threads(nullptr, 2), WEFT_ERROR_ARGUMENT);
  EXPECT_EQ(weft_model_set_input(nullptr, "x", nullptr, 0), WEFT_ERROR_ARGUMENT);
  EXPECT_EQ(weft_model_load_weights(nullptr, "w.safetensors"), WEFT_ERROR_ARGUMENT);
  EXPECT_EQ(weft_model_load_weights_from_memory(nullptr, "", 0), WEFT_ERROR_ARGUMENT);
  EXPECT_EQ(weft_model_save_weights(nullptr, "w.safetensors"), WEFT_ERROR_ARGUMENT);
  EXPECT_EQ(weft_model_output(nullptr, "logits", nullptr), nullptr);
  EXPECT_EQ(weft_model_param(nullptr, "fc1.bias", nullptr), nullptr);
  EXPECT_NE(weft_model_error(nullptr), nullptr);
  weft_model_destroy(nullptr);

  expectFailure(weft_model_set_input(model.get(), nullptr, nullptr, 0), WEFT_ERROR_ARGUMENT, model.get(), "NULL");
  expectFailure(weft_model_load_weights(model.get(), nullptr), WEFT_ERROR_ARGUMENT, model.get(), "the path is NULL");
  expectFailure(weft_model_load_weights_from_memory(model.get(), nullptr, 10), WEFT_ERROR_ARGUMENT, model.get(),
                "the data is NULL");
  expectFailure(weft_model_save_weights(model.get(), nullptr), WEFT_ERROR_ARGUMENT, model.get(), "the path is NULL");
  EXPECT_EQ(weft_model_output(model.get(), nullptr, nullptr), nullptr);
  EXPECT_EQ(weft_model_param(model.get(), nullptr, nullptr), nullptr);
  size_t bytes = 7;
  EXPECT_EQ(weft_model_param(model.get(), "fc9.weight", &bytes), nullptr);
  EXPECT_EQ(bytes, 0u);
  EXPECT_NE(std::string(weft_model_error(model.get())).find("no parameter 'fc9.weight' (its parameters: fc1.weight"),
            std::string::npos)
      << weft_model_error(model.get());
  expectStillWorks();
}

// ---------------------------------------------------------------- bundles that do not fit

TEST(CApi, BundlesForAnotherCpuAreRefused) {
  // Code for features this CPU lacks would die of an illegal instruction in its first kernel.
  auto b = makeBundle(mlpEval(), "mlp_tiny");
  weft_bundle bundle = b->bundle;
  bundle.cpu_features = "avx2,no-such-feature";
  expectCreateFails(bundle, WEFT_ERROR_UNSUPPORTED,
                    "bundle 'mlp_tiny' was compiled for a CPU with no-such-feature, which this CPU lacks");
  if (!__builtin_cpu_supports("avx512bw")) {
    bundle.cpu_features = "avx2,avx512bw";
    expectCreateFails(bundle, WEFT_ERROR_UNSUPPORTED, "was compiled for a CPU with avx512bw, which this CPU lacks");
  }
  bundle = b->bundle;
  bundle.channel_block = 7;
  expectCreateFails(bundle, WEFT_ERROR_ABI, "bundle 'mlp_tiny' has a malformed channel block (7)");
  if (!cpu::channelBlocksFit()) {  // data blocked as AVX-512's oneDNN computes
    bundle.channel_block = cpu::kChannelBlock;
    expectCreateFails(bundle, WEFT_ERROR_UNSUPPORTED, "stores convolution data in 16-channel blocks");
  }
}

TEST(CApi, BundlesOfAnotherAbiOrWithAForeignKernelTableAreRefused) {
  auto b = makeBundle(mlpEval(), "mlp_tiny");
  ASSERT_GE(b->kernels.size(), 1u);
  weft_bundle bundle = b->bundle;
  bundle.abi_version = WEFT_ABI_VERSION + 1;
  expectCreateFails(bundle, WEFT_ERROR_ABI,
                    "bundle 'mlp_tiny' was written for weft ABI " + std::to_string(WEFT_ABI_VERSION + 1) +
                        "; this runtime is ABI " + std::to_string(WEFT_ABI_VERSION));

  bundle = b->bundle;
  bundle.kernel_count -= 1;
  expectCreateFails(bundle, WEFT_ERROR_ABI, "bundle 'mlp_tiny': its kernel table does not match its program: ");
  std::vector<weft_kernel> kernels = b->kernels;
  kernels.back().num_inputs += 1;
  bundle = b->bundle;
  bundle.kernels = kernels.data();
  expectCreateFails(bundle, WEFT_ERROR_ABI, "kernel table does not match its program: kernel " +
                                                std::to_string(kernels.size() - 1));
  kernels = b->kernels;
  kernels.front().partial_sums = 7;
  bundle = b->bundle;
  bundle.kernels = kernels.data();
  expectCreateFails(bundle, WEFT_ERROR_ABI, "kernel 0 (" + std::string(kernels.front().name) +
                                                ") has a malformed entry (parallel_extent " +
                                                std::to_string(kernels.front().parallel_extent) + ", work " +
                                                std::to_string(kernels.front().work) + ", partial_sums 7)");
  bundle = b->bundle;
  bundle.kernels = nullptr;
  expectCreateFails(bundle, WEFT_ERROR_ABI, "malformed kernel table");

  const std::string garbled = "graph @mlp_tiny(%x: f32[4,16]) { %y = frobnicate(%x) : f32[4,16] }";
  bundle = b->bundle;
  bundle.program = garbled.c_str();
  bundle.program_bytes = static_cast<int64_t>(garbled.size());
  expectCreateFails(bundle, WEFT_ERROR_ABI, "does not parse");
  bundle.program = nullptr;
  expectCreateFails(bundle, WEFT_ERROR_ABI, "has no program text");

  // The real descriptor still works.
  ModelHandle model = createModel(b->bundle);
  EXPECT_NE(model, nullptr);
}

TEST(CApi, ANodeTheRuntimeCannotRunIsUnsupported) {
  ir::Graph g("argmax_only");
  ir::ValueId x = g.addInput("x", {ir::DType::f32, {4, 6}});
  g.addOutput("best", g.addOp(ir::OpKind::Argmax, {x}, {{"axis", int64_t{1}}, {"keepdims", int64_t{0}}}));
  auto b = makeBundle(g, "argmax_only", /*optimize=*/false);
  expectCreateFails(b->bundle, WEFT_ERROR_UNSUPPORTED, "cannot run argmax");
}


TEST(CApi, ABadThreadsOrProfileSettingIsAnArgumentError) {
  ir::Graph g = mlpEval();
  auto b = makeBundle(g, "mlp_tiny");
  for (const char* name : {"WEFT_THREADS", "WEFT_PROFILE"}) {
    const char* old = std::getenv(name);
    const std::string saved = old ? old : "";
    setenv(name, "lots", 1);
    expectCreateFails(b->bundle, WEFT_ERROR_ARGUMENT, std::string(name) + "=lots: expected an integer from");
    if (old)
      setenv(name, saved.c_str(), 1);
    else
      unsetenv(name);
  }
}

TEST(CApi, AnUnknownDenormalsSettingIsAnArgumentError) {
  ir::Graph g = mlpEval();
  auto b = makeBundle(g, "mlp_tiny");
  const char* old = std::getenv("WEFT_DENORMALS");
  const std::string saved = old ? old : "";
  setenv("WEFT_DENORMALS", "fast", 1);
  expectCreateFails(b->bundle, WEFT_ERROR_ARGUMENT, "WEFT_DENORMALS=fast: expected 'flush' (the default) or 'keep'");
  setenv("WEFT_DENORMALS", "keep", 1);
  ModelHandle kept = createModel(b->bundle);
  EXPECT_NE(kept, nullptr);
  if (old)
    setenv("WEFT_DENORMALS", saved.c_str(), 1);
  else
    unsetenv("WEFT_DENORMALS");
}
