// KernelCompiler::emitBundle: the object of an ahead-of-time bundle, linked by the C++
// compiler into shared libraries (and a PIE program), loaded with dlopen and read through the
// C header's structs: the descriptor's fields, shared functions for identical bodies, kernels
// bitwise equal to the JIT's, NAME_bundle as the only global symbol, two bundles in one
// library, other x86-64 CPUs, and the errors for unknown CPUs and foreign triples.
#include "tests/unit/codegen/codegen_test_util.h"

#include <dlfcn.h>
#include <elf.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "runtime/cpu_features.h"
#include "runtime/weft.h"
#include "tests/unit/common/run_command.h"

#ifndef WEFT_TEST_CXX
#define WEFT_TEST_CXX "c++"
#endif

using namespace cgtest;
namespace fs = std::filesystem;

namespace {

TensorType f32(Shape shape) { return {DType::f32, std::move(shape)}; }

/// tanh(x * scale + z) over [64, 33], `scale` a dense constant row (a global in the object).
Graph loopBody(const std::string& name, const std::string& prefix) {
  Graph g(name);
  ValueId x = g.addInput(prefix + "x", f32({64, 33})), z = g.addInput(prefix + "z", f32({64, 33}));
  auto scale = std::make_shared<TensorData>(spread(f32({33}), 0.5, 1.5, 3));
  ValueId scaled = g.addOp(OpKind::Mul, {x, g.addConstant(scale)}, {}, prefix + "scaled");
  g.addOutput("out", g.addOp(OpKind::Tanh, {g.addOp(OpKind::Add, {scaled, z}, {}, prefix + "sum")}, {}, prefix + "t"));
  return g;
}

/// sum(exp(x), axis 1) over [37, 300].
Graph reduceBody() {
  Graph g("row_exp_sum");
  ValueId x = g.addInput("x", f32({37, 300}));
  ValueId e = g.addOp(OpKind::Exp, {x}, {}, "e");
  g.addOutput("out", g.addOp(OpKind::ReduceSum, {e}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}}));
  return g;
}

/// The inputs a body is run on.
std::vector<TensorData> inputsOf(const Graph& body) {
  std::vector<TensorData> inputs;
  int seed = 0;
  for (ValueId id : body.inputs()) inputs.push_back(spread(body.type(id), -2, 2, seed++));
  return inputs;
}

/// A fresh, empty directory under the system temp dir.
fs::path freshDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("weft_bundle_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void writeBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream stream(path, std::ios::binary);
  stream << bytes;
  ASSERT_TRUE(static_cast<bool>(stream)) << path;
}

using weft::testing::runCommand;

/// Links `objects` into the shared library `library` with the C++ compiler (no warnings allowed).
void linkShared(const std::vector<fs::path>& objects, const fs::path& library) {
  std::string command = std::string(WEFT_TEST_CXX) + " -shared -o " + library.string();
  for (const fs::path& o : objects) command += " " + o.string();
  command += " -lm";
  std::string output;
  ASSERT_EQ(runCommand(command, output), 0) << command << "\n" << output;
  EXPECT_EQ(output, "") << command;
}

/// A dlopen'ed shared library, closed on destruction.
struct Library {
  void* handle = nullptr;
  explicit Library(const fs::path& path) : handle(::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    if (!handle) ADD_FAILURE() << "dlopen " << path << ": " << ::dlerror();
  }
  ~Library() {
    if (handle) ::dlclose(handle);
  }
  const weft_bundle* bundle(const std::string& name) const {
    return handle ? static_cast<const weft_bundle*>(::dlsym(handle, (name + "_bundle").c_str())) : nullptr;
  }
};

/// The names of the symbols `elf` (a 64-bit relocatable object) defines with global or weak binding.
std::set<std::string> definedGlobalSymbols(const std::string& elf) {
  std::set<std::string> names;
  const auto* header = reinterpret_cast<const Elf64_Ehdr*>(elf.data());
  EXPECT_EQ(header->e_ident[EI_CLASS], ELFCLASS64);
  EXPECT_EQ(header->e_type, ET_REL);
  EXPECT_EQ(header->e_machine, EM_X86_64);
  const auto* sections = reinterpret_cast<const Elf64_Shdr*>(elf.data() + header->e_shoff);
  for (int s = 0; s < header->e_shnum; ++s) {
    if (sections[s].sh_type != SHT_SYMTAB) continue;
    const char* strings = elf.data() + sections[sections[s].sh_link].sh_offset;
    const auto* symbols = reinterpret_cast<const Elf64_Sym*>(elf.data() + sections[s].sh_offset);
    size_t count = sections[s].sh_size / sizeof(Elf64_Sym);
    for (size_t i = 0; i < count; ++i)
      if (ELF64_ST_BIND(symbols[i].st_info) != STB_LOCAL && symbols[i].st_shndx != SHN_UNDEF)
        names.insert(strings + symbols[i].st_name);
  }
  return names;
}

/// Runs `kernel` through its packed entry point over [begin, end) (the JIT's `invoke` convention).
void callPacked(const weft_kernel& kernel, void* out, const std::vector<TensorData>& inputs, int64_t begin,
                int64_t end) {
  std::vector<void*> pointers = {out};
  for (const TensorData& t : inputs) pointers.push_back(const_cast<uint8_t*>(t.bytes.data()));
  std::vector<void*> args;
  for (void*& p : pointers) args.push_back(&p);
  args.push_back(&begin);
  args.push_back(&end);
  kernel.packed(args.data());
}

/// Expects `kernel` (from a loaded bundle) to compute `body` bitwise as the JIT does, over its
/// whole range in one call and in three (added up for a partial-sums kernel).
void expectSameAsJit(const weft_kernel& kernel, const Graph& body) {
  static KernelCompiler jit;
  const GeneratedKernel* reference = jit.compile({&body}).at(0);
  ASSERT_EQ(kernel.num_inputs, reference->numInputs);
  ASSERT_EQ(kernel.parallel_extent, reference->parallelExtent);
  ASSERT_EQ(kernel.work, reference->work);
  ASSERT_EQ(kernel.partial_sums, reference->partialSums ? 1 : 0);
  std::vector<TensorData> inputs = inputsOf(body);
  TensorData want = runKernel(*reference, body, inputs), wantPieces = runKernel(*reference, body, inputs, 3);
  TensorData whole(want.type), pieces(want.type);
  callPacked(kernel, whole.bytes.data(), inputs, 0, kernel.parallel_extent);
  for (int p = 0; p < 3; ++p) {
    TensorData part(want.type);
    TensorData& target = kernel.partial_sums && p > 0 ? part : pieces;
    callPacked(kernel, target.bytes.data(), inputs, kernel.parallel_extent * p / 3, kernel.parallel_extent * (p + 1) / 3);
    if (&target == &part)
      for (int64_t i = 0; i < part.numel(); ++i) pieces.as<float>()[i] += part.as<float>()[i];
  }
  EXPECT_TRUE(whole.bytes == want.bytes) << kernel.name << " differs from the JIT kernel";
  EXPECT_TRUE(pieces.bytes == wantPieces.bytes) << kernel.name << " in three calls differs from the JIT kernel";
  expectClose(whole, referenceRun(body, inputs), 2e-6);
}

}  // namespace

static_assert(sizeof(weft_kernel) == 48 && sizeof(weft_bundle) == 64, "the ABI's structs have no padding on x86-64");

TEST(CodegenBundle, ObjectLoadsAndMatchesTheJitBitwise) {
  Graph loop = loopBody("scaled_tanh", ""), reduce = reduceBody(), again = loopBody("scaled_tanh_again", "other_");
  const std::string program = "graph @alpha { ... }\n";
  KernelCompiler compiler;
  weft::cpu::BundleObject object = compiler.emitBundle({&loop, &reduce, &again}, {"alpha", program});
  EXPECT_EQ(object.distinctKernels, 2);
  ASSERT_GE(object.elf.size(), 4u);
  EXPECT_EQ(object.elf.substr(0, 4), "\x7f" "ELF");
  EXPECT_EQ(definedGlobalSymbols(object.elf), std::set<std::string>{"alpha_bundle"});
  std::printf("  bundle object of 3 bodies (2 kernels): %zu bytes for %s\n", object.elf.size(),
              KernelCompiler::hostCpuName().c_str());

  fs::path dir = freshDir("alpha");
  writeBytes(dir / "alpha.o", object.elf);
  linkShared({dir / "alpha.o"}, dir / "libalpha.so");
  Library library(dir / "libalpha.so");
  const weft_bundle* bundle = library.bundle("alpha");
  ASSERT_NE(bundle, nullptr) << ::dlerror();
  EXPECT_EQ(bundle->abi_version, WEFT_ABI_VERSION);
  EXPECT_STREQ(bundle->name, "alpha");
  EXPECT_STREQ(bundle->program, program.c_str());
  EXPECT_EQ(bundle->program_bytes, static_cast<int64_t>(program.size()));
  ASSERT_EQ(bundle->kernel_count, 3);
  EXPECT_EQ(bundle->channel_block, 0);
  // The features of the host's code, each of which this CPU has; AVX2 on every machine here.
  ASSERT_NE(bundle->cpu_features, nullptr);
  EXPECT_EQ(weft::runtime::missingCpuFeatures(bundle->cpu_features), "");
  EXPECT_NE(std::string(bundle->cpu_features).find("avx2"), std::string::npos) << bundle->cpu_features;
  EXPECT_EQ(std::string(bundle->cpu_features).find("avx512f") != std::string::npos,
            __builtin_cpu_supports("avx512f") != 0)
      << bundle->cpu_features;
  const weft_kernel* k = bundle->kernels;
  EXPECT_EQ(k[0].num_inputs, 2);
  EXPECT_EQ(k[0].parallel_extent, 64);  // the [33] constant broadcasts: one iteration per row
  EXPECT_EQ(k[1].num_inputs, 1);
  EXPECT_EQ(k[1].parallel_extent, 37);  // one iteration per kept row
  EXPECT_EQ(k[2].packed, k[0].packed);  // identical bodies share one function
  EXPECT_STREQ(k[2].name, k[0].name);
  EXPECT_NE(k[1].packed, k[0].packed);
  EXPECT_EQ(std::string(k[0].name).rfind("weft_", 0), 0u) << k[0].name;
  // Internal functions are not exported by the library either.
  EXPECT_EQ(::dlsym(library.handle, (std::string(k[0].name) + "_packed").c_str()), nullptr);
  expectSameAsJit(k[0], loop);
  expectSameAsJit(k[1], reduce);
  expectSameAsJit(k[2], again);
  fs::remove_all(dir);
}

TEST(CodegenBundle, TwoBundlesLinkIntoOneLibraryAndOneProgram) {
  Graph loop = loopBody("scaled_tanh", ""), reduce = reduceBody();
  KernelCompiler compiler;  // the same compiler, so the kernels of both objects have equal names too
  weft::cpu::BundleObject first = compiler.emitBundle({&loop, &reduce}, {"first", "graph @first {}\n"});
  weft::cpu::BundleObject second = compiler.emitBundle({&reduce, &loop}, {"second", "graph @second {}\n"});
  weft::cpu::BundleObject empty = compiler.emitBundle({}, {"nothing", ""});
  EXPECT_EQ(empty.distinctKernels, 0);
  fs::path dir = freshDir("pair");
  writeBytes(dir / "first.o", first.elf);
  writeBytes(dir / "second.o", second.elf);
  writeBytes(dir / "nothing.o", empty.elf);
  linkShared({dir / "first.o", dir / "second.o", dir / "nothing.o"}, dir / "libpair.so");
  {
    Library library(dir / "libpair.so");
    const weft_bundle *a = library.bundle("first"), *b = library.bundle("second"), *none = library.bundle("nothing");
    ASSERT_TRUE(a && b && none);
    ASSERT_EQ(a->kernel_count, 2);
    ASSERT_EQ(b->kernel_count, 2);
    EXPECT_EQ(none->kernel_count, 0);
    EXPECT_EQ(none->kernels, nullptr);
    EXPECT_STREQ(none->program, "");
    EXPECT_STREQ(b->program, "graph @second {}\n");
    EXPECT_NE(a->kernels[0].packed, b->kernels[1].packed);  // each object keeps its own code
    expectSameAsJit(a->kernels[0], loop);
    expectSameAsJit(a->kernels[1], reduce);
    expectSameAsJit(b->kernels[0], reduce);
    expectSameAsJit(b->kernels[1], loop);
  }

  // A position-independent executable linking both objects directly.
  std::ofstream(dir / "main.cpp") << "#include \"runtime/weft.h\"\n#include <cstdio>\n"
                                     "extern \"C\" const weft_bundle first_bundle, second_bundle;\n"
                                     "int main() {\n"
                                     "  std::printf(\"%s %lld %s %lld\\n\", first_bundle.name, (long long)first_bundle.kernel_count,\n"
                                     "              second_bundle.name, (long long)second_bundle.kernels[1].parallel_extent);\n"
                                     "}\n";
  std::string command = std::string(WEFT_TEST_CXX) + " -fPIE -pie -I" + WEFT_SOURCE_DIR + " -o " +
                        (dir / "main").string() + " " + (dir / "main.cpp").string() + " " + (dir / "first.o").string() +
                        " " + (dir / "second.o").string() + " -lm";
  std::string output;
  ASSERT_EQ(runCommand(command, output), 0) << command << "\n" << output;
  output.clear();
  ASSERT_EQ(runCommand((dir / "main").string(), output), 0) << output;
  EXPECT_EQ(output, "first 2 second 64\n");
  fs::remove_all(dir);
}

TEST(CodegenBundle, OtherX86CpusAndTheirErrors) {
  Graph loop = loopBody("scaled_tanh", ""), reduce = reduceBody();
  KernelCompiler compiler;
  // The x86-64 baseline with SSE4.2 runs on every machine these tests run on.
  weft::cpu::BundleObject v2 = compiler.emitBundle({&loop, &reduce}, {"baseline", ""}, {"", "x86-64-v2"});
  fs::path dir = freshDir("v2");
  writeBytes(dir / "baseline.o", v2.elf);
  linkShared({dir / "baseline.o"}, dir / "libbaseline.so");
  {
    Library library(dir / "libbaseline.so");
    const weft_bundle* bundle = library.bundle("baseline");
    ASSERT_NE(bundle, nullptr);
    ASSERT_EQ(bundle->kernel_count, 2);
    for (int i = 0; i < 2; ++i) {
      const Graph& body = i == 0 ? loop : reduce;
      std::vector<TensorData> inputs = inputsOf(body);
      TensorData out(body.type(body.outputs()[0].value));
      callPacked(bundle->kernels[i], out.bytes.data(), inputs, 0, bundle->kernels[i].parallel_extent);
      expectClose(out, referenceRun(body, inputs), 2e-6);
    }
  }
  fs::remove_all(dir);
  // Other CPUs and a spelled-out triple emit objects (not run: this machine may lack their features).
  for (const char* cpu : {"x86-64-v3", "x86-64-v4", "skylake-avx512", "znver3"}) {
    weft::cpu::BundleObject other = compiler.emitBundle({&loop}, {"other", ""}, {"x86_64-unknown-linux-gnu", cpu});
    EXPECT_EQ(definedGlobalSymbols(other.elf), std::set<std::string>{"other_bundle"}) << cpu;
  }
  expectError([&] { compiler.emitBundle({&loop}, {"bad", ""}, {"", "pentium9000"}); },
              {"unknown CPU name 'pentium9000'"});
  expectError([&] { compiler.emitBundle({&loop}, {"bad", ""}, {"aarch64-unknown-linux-gnu", ""}); },
              {"cannot emit code for aarch64-unknown-linux-gnu", "only the host architecture (x86_64)"});
  expectError([&] { compiler.emitBundle({&loop}, {"bad", ""}, {"riscv64-linux-gnu", "znver3"}); },
              {"riscv64-linux-gnu", "only the host architecture"});
  expectError([&] { compiler.emitBundle({&loop}, {"bad", ""}, {"x86_64-apple-darwin", ""}); }, {"not ELF"});
  expectError([&] { compiler.emitBundle({&loop}, {"9lives", ""}); }, {"'9lives'", "not a C identifier"});
  expectError([&] { compiler.emitBundle({&loop}, {"a-b", ""}); }, {"'a-b'", "not a C identifier"});
  Graph matmul("with_matmul");
  ValueId a = matmul.addInput("a", f32({4, 8})), b = matmul.addInput("b", f32({8, 3}));
  matmul.addOutput("out", matmul.addOp(OpKind::Matmul, {a, b}, {}, "mm"));
  expectError([&] { compiler.emitBundle({&loop, &matmul}, {"bad", ""}); }, {"matmul %mm", "not supported"});
}

TEST(CodegenBundle, HostNames) {
  EXPECT_FALSE(KernelCompiler::hostCpuName().empty());
  EXPECT_EQ(KernelCompiler::hostTriple().rfind("x86_64", 0), 0u) << KernelCompiler::hostTriple();
}
