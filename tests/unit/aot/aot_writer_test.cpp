// The bundle writer (backends/cpu/aot.h): the four files of mlp_tiny's inference and training
// bundles, the header compiled as C99 and C++ (with the macro values checked by the compiler),
// the weights file's tensors and metadata, macro identifiers of colliding names, another
// x86-64 level, and the errors (bad name, a node only reference kernels run, unknown CPU, bad
// state), each of which writes nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "backends/cpu/aot.h"
#include "backends/cpu/aot_text.h"
#include "backends/cpu/codegen/kernel_compiler.h"
#include "backends/cpu/executable.h"
#include "ir/error.h"
#include "ir/parser.h"
#include "models/registry.h"
#include "passes/train_step.h"
#include "runtime/bundle_format.h"
#include "runtime/cpu/program.h"
#include "runtime/safetensors.h"
#include "runtime/weft.h"
#include "tests/unit/common/run_command.h"

#ifndef WEFT_TEST_CXX
#define WEFT_TEST_CXX "c++"
#endif

using namespace weft;
namespace fs = std::filesystem;

namespace {

/// A path under the system temp dir that does not exist yet (the writer must create it).
fs::path freshDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("weft_aot_writer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

std::string readText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using weft::testing::runCommand;

/// Compiles `source` (which includes a bundle header of `dir`) as C99 and as C++17 with every
/// warning an error; the header's macros can be checked there with negative array sizes.
void expectCompilesAsCAndCxx(const fs::path& dir, const std::string& source) {
  fs::path file = dir / "use_header.c";
  std::ofstream(file) << source;
  const std::string includes = " -I " + std::string(WEFT_SOURCE_DIR) + " -I " + dir.string() + " ";
  for (const std::string& language : {std::string("-x c -std=c99"), std::string("-x c++ -std=c++17")}) {
    std::string command = std::string(WEFT_TEST_CXX) + " " + language +
                          " -Wall -Wextra -pedantic -Werror -fsyntax-only" + includes + file.string();
    std::string output;
    EXPECT_EQ(runCommand(command, output), 0) << command << "\n" << output;
    EXPECT_EQ(output, "") << command;
  }
  fs::remove(file);
}

/// A compile-time check in C and C++: a typedef of an array of size -1 when `condition` is false.
std::string staticCheck(const std::string& id, const std::string& condition) {
  return "typedef char check_" + id + "[(" + condition + ") ? 1 : -1];\n";
}

ir::Graph mlpTiny() { return models::buildModel("mlp_tiny"); }

/// Expects `run` to throw weft::Error mentioning every string of `parts`, and `dir` not to exist.
template <class F>
void expectErrorWritesNothing(F run, const fs::path& dir, const std::vector<std::string>& parts) {
  try {
    run();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir)) << dir;
}

}  // namespace

TEST(AotWriter, InferenceBundleWritesFourFiles) {
  ir::Graph g = mlpTiny();
  fs::path dir = freshDir("mlp");
  cpu::AotOptions options;
  options.outDir = dir.string();
  cpu::AotResult result = cpu::writeBundle(g, options);

  EXPECT_EQ(result.name, "mlp_tiny");
  ASSERT_EQ(result.files.size(), 4u);
  std::vector<std::string> names;
  for (const auto& [path, bytes] : result.files) {
    names.push_back(fs::path(path).filename().string());
    ASSERT_TRUE(fs::exists(path)) << path;
    EXPECT_EQ(static_cast<int64_t>(fs::file_size(path)), bytes) << path;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"mlp_tiny.o", "mlp_tiny.h", "mlp_tiny.safetensors", "mlp_tiny.md"}));
  EXPECT_EQ(readText(dir / "mlp_tiny.o").substr(0, 4), "\x7f" "ELF");
  EXPECT_EQ(result.cpu, cpu::KernelCompiler::hostCpuName());

  // The program is the optimized graph; one kernel per generated fused node (an inference
  // graph has no updates to merge into one kernel).
  ir::Graph program = ir::parseGraph(result.program);
  int generated = 0;
  for (const ir::Node& node : program.nodes()) generated += cpu::runsGeneratedKernel(node);
  EXPECT_EQ(result.kernels, generated);
  EXPECT_GT(result.kernels, 0);
  EXPECT_GE(result.kernels, result.distinctKernels);
  EXPECT_GT(result.steps, result.kernels);  // plus the oneDNN matmuls
  EXPECT_GT(result.arenaBytes, 0);
  EXPECT_GE(result.stateBytes, (16 * 12 + 12 + 12 * 8 + 8 + 8 * 5 + 5) * 4);  // plus alignment

  std::string header = readText(dir / "mlp_tiny.h");
  EXPECT_NE(header.find("#define MLP_TINY_ABI_VERSION 6\n#if MLP_TINY_ABI_VERSION != WEFT_ABI_VERSION"),
            std::string::npos)
      << header;
  EXPECT_NE(header.find("extern const weft_bundle mlp_tiny_bundle;"), std::string::npos);
  EXPECT_NE(header.find("/* input x: f32[4,16] */\n#define MLP_TINY_INPUT_X_NAME \"x\"\n"), std::string::npos);
  EXPECT_NE(header.find("#define MLP_TINY_INPUT_X_SHAPE {4, 16}\n"), std::string::npos);
  EXPECT_NE(header.find("#define MLP_TINY_STATE_BYTES " + std::to_string(result.stateBytes) + "\n"),
            std::string::npos);
  std::string use = "#include \"mlp_tiny.h\"\n";
  use += staticCheck("abi", "MLP_TINY_ABI_VERSION == 6");
  use += staticCheck("arena", "MLP_TINY_ARENA_BYTES == " + std::to_string(result.arenaBytes));
  use += staticCheck("counts", "MLP_TINY_NUM_INPUTS == 2 && MLP_TINY_NUM_OUTPUTS == 2 && MLP_TINY_NUM_PARAMS == 6");
  use += staticCheck("updates", "MLP_TINY_HAS_UPDATES == 0");
  use += staticCheck("x", "MLP_TINY_INPUT_X_RANK == 2 && MLP_TINY_INPUT_X_ELEMENTS == 64 && "
                          "MLP_TINY_INPUT_X_BYTES == 256 && MLP_TINY_INPUT_X_DTYPE == WEFT_F32");
  use += staticCheck("y", "MLP_TINY_INPUT_Y_DTYPE == WEFT_I32 && MLP_TINY_INPUT_Y_BYTES == 16");
  use += staticCheck("loss", "MLP_TINY_OUTPUT_LOSS_RANK == 0 && MLP_TINY_OUTPUT_LOSS_ELEMENTS == 1");
  use += staticCheck("w", "MLP_TINY_PARAM_FC1_WEIGHT_BYTES == 16 * 12 * 4");
  use += "int shape_sum(void) { const long long shape[] = MLP_TINY_INPUT_X_SHAPE; return (int)(shape[0] + shape[1]); }\n";
  use += "const char* logits_name(void) { return MLP_TINY_OUTPUT_LOGITS_NAME; }\n";
  use += "const weft_bundle* the_bundle(void) { return &mlp_tiny_bundle; }\n";
  expectCompilesAsCAndCxx(dir, use);

  // Every parameter with its initial value, and the bundle metadata.
  runtime::TensorMap weights = runtime::loadSafetensors((dir / "mlp_tiny.safetensors").string());
  EXPECT_EQ(weights, reference::initialState(g));
  runtime::MetadataMap meta = runtime::readSafetensorsMetadata((dir / "mlp_tiny.safetensors").string());
  EXPECT_EQ(meta[runtime::kBundleAbiKey], std::to_string(WEFT_ABI_VERSION));
  EXPECT_EQ(meta[runtime::kBundleGraphKey], "mlp_tiny");
  EXPECT_EQ(meta[runtime::kBundleNameKey], "mlp_tiny");
  EXPECT_FALSE(meta[runtime::kBundleVersionKey].empty());

  std::string readme = readText(dir / "mlp_tiny.md");
  for (const char* part : {"cc -I$PREFIX/include/weft app.c mlp_tiny.o $(pkg-config --cflags --libs weft-runtime)",
                           "find_package(weft", "target_link_libraries(app weft::runtime)", "| input | `x` | `f32[4,16]` |",
                           "| output | `logits` | `f32[4,5]` |", "weft_model_create(&mlp_tiny_bundle, &model)"})
    EXPECT_NE(readme.find(part), std::string::npos) << part << "\n" << readme;
  fs::remove_all(dir);
}

TEST(AotWriter, TrainingBundleHoldsTheOptimizerState) {
  passes::TrainConfig adam;
  adam.optimizer = passes::parseOptimizer("adam");
  ir::Graph step = passes::buildTrainStep(mlpTiny(), adam);
  fs::path dir = freshDir("train");
  cpu::AotOptions options;
  options.outDir = dir.string();
  options.name = "mlp_step";
  cpu::AotResult result = cpu::writeBundle(step, options);
  EXPECT_EQ(result.name, "mlp_step");

  runtime::TensorMap weights = runtime::loadSafetensors((dir / "mlp_step.safetensors").string());
  EXPECT_EQ(weights, reference::initialState(step));
  EXPECT_TRUE(weights.count("fc1.weight"));
  EXPECT_TRUE(weights.count("opt.fc1.weight.m"));
  runtime::MetadataMap meta = runtime::readSafetensorsMetadata((dir / "mlp_step.safetensors").string());
  EXPECT_EQ(meta[runtime::kBundleGraphKey], step.name());
  EXPECT_EQ(meta[runtime::kBundleNameKey], "mlp_step");

  std::string header = readText(dir / "mlp_step.h");
  EXPECT_NE(header.find("#define MLP_STEP_HAS_UPDATES 1\n"), std::string::npos);
  EXPECT_NE(header.find("/* input lr: f32[] */"), std::string::npos);
  EXPECT_EQ(header.find("MLP_STEP_INPUT_LR_SHAPE"), std::string::npos);  // scalars have no shape list
  std::string use = "#include \"mlp_step.h\"\n";
  use += staticCheck("params", "MLP_STEP_NUM_PARAMS == " + std::to_string(step.params().size()));
  use += staticCheck("lr", "MLP_STEP_INPUT_LR_RANK == 0 && MLP_STEP_INPUT_LR_BYTES == 4");
  use += staticCheck("m", "MLP_STEP_PARAM_OPT_FC1_WEIGHT_M_ELEMENTS == 16 * 12");
  use += staticCheck("state", "MLP_STEP_STATE_BYTES == " + std::to_string(result.stateBytes));
  use += "const char* m_name(void) { return MLP_STEP_PARAM_OPT_FC1_WEIGHT_M_NAME; }\n";
  expectCompilesAsCAndCxx(dir, use);
  fs::remove_all(dir);
}

TEST(AotWriter, GivenStateReplacesInitialValues) {
  ir::Graph g = mlpTiny();
  fs::path dir = freshDir("state");
  cpu::AotOptions options;
  options.outDir = dir.string();
  ir::TensorData bias(g.type(*g.find("fc1.bias")));
  for (int64_t i = 0; i < bias.numel(); ++i) bias.set(i, 0.5 * static_cast<double>(i));
  options.state["fc1.bias"] = bias;
  cpu::writeBundle(g, options);
  runtime::TensorMap weights = runtime::loadSafetensors((dir / "mlp_tiny.safetensors").string());
  reference::TensorMap want = reference::initialState(g);
  want["fc1.bias"] = bias;
  EXPECT_EQ(weights, want);
  fs::remove_all(dir);

  cpu::AotOptions unknown = options;
  unknown.state = {{"fc9.bias", bias}};
  expectErrorWritesNothing([&] { cpu::writeBundle(g, unknown); }, dir, {"fc9.bias", "not a parameter"});
  cpu::AotOptions wrongType = options;
  wrongType.state = {{"fc2.bias", bias}};
  expectErrorWritesNothing([&] { cpu::writeBundle(g, wrongType); }, dir, {"fc2.bias", "f32[12]", "f32[8]"});
}

TEST(AotWriter, CollidingNamesGetDistinctMacros) {
  EXPECT_EQ(cpu::aot::macroIds({"a.b", "a_b", "A-B", "x", "fc1.weight"}),
            (std::vector<std::string>{"A_B", "A_B_2", "A_B_3", "X", "FC1_WEIGHT"}));
  ir::Graph g("collide");
  ir::TensorType t{ir::DType::f32, {2, 3}};
  ir::ValueId a = g.addInput("a.b", t), b = g.addInput("a_b", t);
  g.addOutput("sum", g.addOp(ir::OpKind::Tanh, {g.addOp(ir::OpKind::Add, {a, b})}));
  fs::path dir = freshDir("collide");
  cpu::AotOptions options;
  options.outDir = dir.string();
  cpu::writeBundle(g, options);
  std::string use = "#include \"collide.h\"\n";
  use += "const char* first(void) { return COLLIDE_INPUT_A_B_NAME; }\n";
  use += "const char* second(void) { return COLLIDE_INPUT_A_B_2_NAME; }\n";
  use += staticCheck("params", "COLLIDE_NUM_PARAMS == 0 && COLLIDE_OUTPUT_SUM_ELEMENTS == 6");
  expectCompilesAsCAndCxx(dir, use);
  std::string header = readText(dir / "collide.h");
  EXPECT_NE(header.find("#define COLLIDE_INPUT_A_B_NAME \"a.b\"\n"), std::string::npos) << header;
  EXPECT_NE(header.find("#define COLLIDE_INPUT_A_B_2_NAME \"a_b\"\n"), std::string::npos) << header;
  fs::remove_all(dir);
}

TEST(AotWriter, AnotherX86Level) {
  fs::path dir = freshDir("v2");
  cpu::AotOptions options;
  options.outDir = dir.string();
  options.cpu = "x86-64-v2";
  cpu::AotResult result = cpu::writeBundle(mlpTiny(), options);
  EXPECT_EQ(result.cpu, "x86-64-v2");
  EXPECT_GT(fs::file_size(dir / "mlp_tiny.o"), 0u);
  EXPECT_NE(readText(dir / "mlp_tiny.h").find("x86-64-v2"), std::string::npos);
  EXPECT_NE(readText(dir / "mlp_tiny.md").find("x86-64-v2"), std::string::npos);
  fs::remove_all(dir);
}

TEST(AotWriter, ErrorsWriteNothing) {
  fs::path dir = freshDir("errors");
  cpu::AotOptions options;
  options.outDir = dir.string();

  cpu::AotOptions badName = options;
  badName.name = "9x";
  expectErrorWritesNothing([&] { cpu::writeBundle(mlpTiny(), badName); }, dir, {"'9x'", "C identifier"});

  cpu::AotOptions badCpu = options;
  badCpu.cpu = "no-such-cpu";
  expectErrorWritesNothing([&] { cpu::writeBundle(mlpTiny(), badCpu); }, dir, {"bundle mlp_tiny: ", "no-such-cpu"});

  // scatter_add has only a reference kernel: neither oneDNN, a generated kernel nor a native step runs it.
  ir::Graph scatter("scatter");
  ir::ValueId base = scatter.addInput("base", {ir::DType::f32, {6, 3}});
  ir::ValueId indices = scatter.addInput("indices", {ir::DType::i32, {4}});
  ir::ValueId updates = scatter.addInput("updates", {ir::DType::f32, {4, 3}});
  scatter.addOutput("out", scatter.addOp(ir::OpKind::ScatterAdd, {base, indices, updates}, {{"axis", int64_t{0}}}));
  expectErrorWritesNothing([&] { cpu::writeBundle(scatter, options); }, dir,
                           {"bundle scatter", "scatter_add", "no reference fallback"});

  // A fused loop whose body the kernel compiler rejects (bf16 inputs): the JIT would run it
  // with reference kernels.
  ir::TensorType bf16{ir::DType::bf16, {4}};
  ir::Graph body("body");
  body.addOutput("out", body.addOp(ir::OpKind::Relu, {body.addInput("x", bf16)}));
  std::string unsupported = cpu::KernelCompiler::unsupported(body).value_or("");
  ASSERT_NE(unsupported, "");
  ir::Graph fused("fused_bf16");
  ir::Node node;
  node.op = ir::OpKind::Fused;
  node.operands = {fused.addInput("x", bf16)};
  node.attrs["kind"] = std::string("loop");
  node.type = bf16;
  node.body = std::make_shared<const ir::Graph>(body);
  fused.addOutput("out", fused.addNode(node));
  expectErrorWritesNothing([&] { cpu::writeBundle(fused, options); }, dir,
                           {"bundle fused_bf16: fused", "cannot be generated", unsupported, "no reference fallback"});

  ir::Graph invalid("invalid");  // an output of the wrong type: the verifier rejects it
  ir::ValueId in = invalid.addInput("x", {ir::DType::f32, {2}});
  ir::Node wrong;
  wrong.op = ir::OpKind::Relu;
  wrong.operands = {in};
  wrong.type = {ir::DType::f32, {3}};
  invalid.addOutput("y", invalid.addNode(wrong));
  expectErrorWritesNothing([&] { cpu::writeBundle(invalid, options); }, dir, {"relu"});
}
