// KernelCompiler: the cache, unsupported bodies, batches, dumps (MLIR and vectorized
// assembly), object emission, and a 1M-element add+relu kernel (correctness; its GB/s is
// printed next to a plain C++ loop's, never asserted).
#include "tests/unit/codegen/codegen_test_util.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

using namespace cgtest;

namespace {

TensorType f32(Shape shape) { return {DType::f32, std::move(shape)}; }

/// relu(a + b) over two inputs of `shape`, named `name`, with value names prefixed by `prefix`.
Graph addRelu(const std::string& name, const Shape& shape, const std::string& prefix = "") {
  Graph g(name);
  ValueId a = g.addInput(prefix + "a", f32(shape)), b = g.addInput(prefix + "b", f32(shape));
  ValueId sum = g.addOp(OpKind::Add, {a, b}, {}, prefix + "sum");
  ValueId zero = g.addConstant(scalarConstant(DType::f32, 0));
  g.addOutput("out", g.addOp(OpKind::Maximum, {sum, zero}, {}, prefix + "relu"));
  return g;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream stream(path);
  std::stringstream text;
  text << stream.rdbuf();
  return text.str();
}

/// A fresh, empty directory under the system temp dir.
std::filesystem::path freshDir(const std::string& name) {
  std::string leaf = "weft_codegen_" + name + "_" + std::to_string(::getpid());
  std::filesystem::path dir = std::filesystem::temp_directory_path() / leaf;
  std::filesystem::remove_all(dir);
  return dir;
}

/// The plain C++ loop the 1M-element kernel is compared with, optimized even in Debug builds
/// (for the compiler's baseline x86-64 target, no -march).
__attribute__((optimize("O3"))) void plainAddRelu(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float s = a[i] + b[i];
    out[i] = s > 0.0f ? s : 0.0f;
  }
}

}  // namespace

TEST(CodegenCompiler, IdenticalBodiesCompileOnce) {
  KernelCompiler compiler;
  Graph first = addRelu("first", {8, 16}, "x_"), second = addRelu("second", {8, 16}, "y_");
  Graph other = addRelu("other", {8, 17});
  auto kernels = compiler.compile({&first, &second, &other});
  ASSERT_EQ(kernels.size(), 3u);
  EXPECT_EQ(kernels[0], kernels[1]);  // names differ, the computation does not
  EXPECT_NE(kernels[0], kernels[2]);
  EXPECT_EQ(compiler.kernelsCompiled(), 2);
  EXPECT_EQ(compiler.cacheHits(), 1);
  auto again = compiler.compile({&second});
  EXPECT_EQ(again.at(0), kernels[0]);
  EXPECT_EQ(compiler.kernelsCompiled(), 2);
  EXPECT_EQ(compiler.cacheHits(), 2);
  std::vector<TensorData> inputs = {spread(f32({8, 17}), -1, 1), spread(f32({8, 17}), -1, 1, 1)};
  expectClose(runKernel(*kernels[2], other, inputs), referenceRun(other, inputs), 0);
}

TEST(CodegenCompiler, DifferentConstantsAreDifferentKernels) {
  KernelCompiler compiler;
  auto bodyWith = [](double c) {
    Graph g("scaled");
    ValueId x = g.addInput("x", f32({40}));
    auto big = std::make_shared<TensorData>(f32({40}));
    for (int i = 0; i < 40; ++i) big->set(i, c * i);  // more elements than the printer elides by default
    g.addOutput("out", g.addOp(OpKind::Mul, {x, g.addConstant(big)}));
    return g;
  };
  Graph one = bodyWith(1), two = bodyWith(2);
  auto kernels = compiler.compile({&one, &two});
  EXPECT_NE(kernels[0], kernels[1]);
  std::vector<TensorData> inputs = {spread(f32({40}), 1, 2)};
  expectClose(runKernel(*kernels[1], two, inputs), referenceRun(two, inputs), 0);
}

TEST(CodegenCompiler, UnsupportedBodiesAreNamed) {
  Graph g("with_matmul");
  ValueId a = g.addInput("a", f32({4, 8})), b = g.addInput("b", f32({8, 3}));
  g.addOutput("out", g.addOp(OpKind::Relu, {g.addOp(OpKind::Matmul, {a, b}, {}, "mm")}));
  std::optional<std::string> why = KernelCompiler::unsupported(g);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("matmul %mm"), std::string::npos) << *why;
  KernelCompiler compiler;
  expectError([&] { compiler.compile({&g}); }, {"matmul %mm", "f32[4,3]", "not supported"});
  EXPECT_EQ(compiler.kernelsCompiled(), 0);

  Graph bf("bf16");
  ValueId x = bf.addInput("x", TensorType{DType::bf16, {4}});
  bf.addOutput("out", bf.addOp(OpKind::Neg, {x}, {}, "n"));
  expectError([&] { compiler.compile({&bf}); }, {"bf16"});

  Graph div("int_div");
  ValueId i = div.addInput("i", TensorType{DType::i32, {4}}), j = div.addInput("j", TensorType{DType::i32, {4}});
  div.addOutput("out", div.addOp(OpKind::Div, {i, j}, {}, "q"));
  expectError([&] { compiler.compile({&div}); }, {"div %q", "integer division"});

  Graph inner("inner_reduce");  // not a row body (ir/fused_rows.h): the reduction is over the rows
  ValueId y = inner.addInput("y", f32({4, 5}));
  ValueId s = inner.addOp(OpKind::ReduceSum, {y}, {{"axes", std::vector<int64_t>{0}}, {"keepdims", int64_t{1}}}, "s");
  inner.addOutput("out", inner.addOp(OpKind::Sub, {y, s}));
  expectError([&] { compiler.compile({&inner}); }, {"reduce_sum %s", "root"});

  Graph bad("bad_constant");  // a constant whose data does not match its declared type
  ValueId in = bad.addInput("x", f32({2}));
  Node constant;
  constant.op = OpKind::Constant;
  constant.attrs["value"] = scalarConstant(DType::f32, 1);
  constant.type = f32({2});
  constant.name = "c";
  ValueId c = bad.addNode(constant);
  bad.addOutput("out", bad.addOp(OpKind::Add, {in, c}));
  expectError([&] { compiler.compile({&bad}); }, {"constant %c", "does not match"});

  Graph fine = addRelu("fine", {3});
  EXPECT_FALSE(KernelCompiler::unsupported(fine).has_value());
}

TEST(CodegenCompiler, DumpsMlirAndVectorizedAssembly) {
  std::filesystem::path mlirDir = freshDir("mlir"), asmDir = freshDir("asm");
  KernelCompiler compiler({mlirDir.string(), asmDir.string()});
  Graph g = addRelu("dumped", {4096});
  Graph h("dumped_exp");
  ValueId x = h.addInput("x", f32({4096}));
  h.addOutput("out", h.addOp(OpKind::Exp, {x}));
  auto kernels = compiler.compile({&g, &h});
  for (const GeneratedKernel* k : kernels) {
    std::string mlir = readFile(mlirDir / (k->name + ".mlir"));
    EXPECT_EQ(mlir, k->mlir);
    EXPECT_NE(mlir.find("func.func @" + k->name), std::string::npos) << mlir;
    EXPECT_NE(mlir.find("scf.for"), std::string::npos) << mlir;
  }
  EXPECT_NE(kernels[1]->mlir.find("math.exp"), std::string::npos) << kernels[1]->mlir;
  // One file per kernel, compiled in one batch: its function and packed entry, not the other's.
  for (size_t i = 0; i < kernels.size(); ++i) {
    std::string assembly = readFile(asmDir / (kernels[i]->name + ".s"));
    ASSERT_FALSE(assembly.empty());
    EXPECT_NE(assembly.find(kernels[i]->name + ":"), std::string::npos);
    EXPECT_NE(assembly.find(kernels[i]->name + "_packed:"), std::string::npos);
    EXPECT_EQ(assembly.find(kernels[1 - i]->name + ":"), std::string::npos);
    // The hot loops use vector registers (zmm with AVX-512, ymm with AVX2).
    bool vectorized = assembly.find("zmm") != std::string::npos || assembly.find("ymm") != std::string::npos;
    EXPECT_TRUE(vectorized) << assembly.substr(0, 4000);
    // exp became a polynomial, not a libm call.
    EXPECT_EQ(assembly.find("expf"), std::string::npos);
  }
  std::filesystem::remove_all(mlirDir);
  std::filesystem::remove_all(asmDir);
}

TEST(CodegenCompiler, EmitsAnObjectFile) {
  KernelCompiler compiler;
  Graph g = addRelu("aot", {64});
  Graph r("aot_sum");
  ValueId x = r.addInput("x", f32({8, 64}));
  r.addOutput("out", r.addOp(OpKind::ReduceSum, {x}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}}));
  weft::cpu::KernelObject object = compiler.emitObject({&g, &r});
  ASSERT_GE(object.elf.size(), 4u);
  EXPECT_EQ(object.elf.substr(0, 4), "\x7f" "ELF");
  ASSERT_EQ(object.symbols.size(), 2u);
  for (const std::string& s : object.symbols) EXPECT_NE(object.elf.find(s), std::string::npos) << s;
  EXPECT_EQ(object.parallelExtents, (std::vector<int64_t>{64, 8}));
}

TEST(CodegenCompiler, InvokeChecksItsArguments) {
  KernelCompiler compiler;
  Graph g = addRelu("checked", {10});
  const GeneratedKernel* k = compiler.compile({&g}).at(0);
  std::vector<float> a(10), out(10);
  expectError([&] { weft::cpu::invoke(*k, out.data(), {a.data()}, 0, 10); }, {"takes 2 inputs, got 1"});
  expectError([&] { weft::cpu::invoke(*k, out.data(), {a.data(), a.data()}, 0, 11); }, {"[0, 11)", "[0, 10)"});
}

TEST(CodegenCompiler, MillionElementAddReluIsCorrectAndReportsBandwidth) {
  const int64_t n = 1 << 20;
  KernelCompiler compiler;
  Graph g = addRelu("add_relu_1m", {n});
  std::vector<TensorData> inputs = {spread(f32({n}), -1, 1), spread(f32({n}), -1, 1, 1)};
  const GeneratedKernel* k = compiler.compile({&g}).at(0);
  EXPECT_EQ(k->parallelExtent, n);
  TensorData out = runKernel(*k, g, inputs);
  expectClose(out, referenceRun(g, inputs), 0);
  expectClose(runKernel(*k, g, inputs, 2), out, 0);  // two halves equal one call

  const float *a = inputs[0].as<float>(), *b = inputs[1].as<float>();
  std::vector<float> plain(static_cast<size_t>(n));
  auto plainLoop = [&] { plainAddRelu(a, b, plain.data(), n); };
  std::vector<const void*> pointers = {a, b};
  auto generated = [&] { weft::cpu::invoke(*k, out.bytes.data(), pointers, 0, n); };
  auto gbPerSecond = [&](auto&& run) {
    run();  // warm up
    const int reps = 50;
    auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) run();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return 3.0 * 4.0 * static_cast<double>(n) * reps / seconds / 1e9;  // two reads and one write per element
  };
  double kernelRate = gbPerSecond(generated), plainRate = gbPerSecond(plainLoop);
  std::printf("  add+relu over 1M f32: generated kernel %.2f GB/s, plain C++ loop (g++ -O3, baseline x86-64) "
              "%.2f GB/s\n", kernelRate, plainRate);
  for (int64_t i = 0; i < n; i += 4099) ASSERT_EQ(plain[static_cast<size_t>(i)], out.as<float>()[i]);
}
