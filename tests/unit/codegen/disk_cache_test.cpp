// KernelCompiler's disk cache: a batch compiled by one compiler is stored as one file and
// loaded (not compiled) by a new compiler with the same folder, giving bitwise-equal results;
// corrupt entries are recompiled and rewritten; a disabled cache writes nothing; the folder
// comes from the environment by default; dumps always compile.
#include "tests/unit/codegen/codegen_test_util.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

#include <unistd.h>

using namespace cgtest;
namespace fs = std::filesystem;

namespace {

TensorType f32(Shape shape) { return {DType::f32, std::move(shape)}; }

/// tanh(a * b + 0.5) over two inputs of `shape`, in a graph named `name`.
Graph fma(const std::string& name, const Shape& shape) {
  Graph g(name);
  ValueId a = g.addInput("a", f32(shape)), b = g.addInput("b", f32(shape));
  ValueId sum = g.addOp(OpKind::Add, {g.addOp(OpKind::Mul, {a, b}), g.addConstant(scalarConstant(DType::f32, 0.5))});
  g.addOutput("out", g.addOp(OpKind::Tanh, {sum}));
  return g;
}

/// The sum over the last axis of exp(x), x of shape [rows, 33].
Graph expSum(const std::string& name, int64_t rows) {
  Graph g(name);
  ValueId x = g.addInput("x", f32({rows, 33}));
  g.addOutput("out", g.addOp(OpKind::ReduceSum, {g.addOp(OpKind::Exp, {x})},
                             {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}}));
  return g;
}

/// A fresh, empty directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("weft_disk_cache_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

/// The files in `dir` (none when it does not exist).
std::vector<fs::path> filesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  if (fs::exists(dir))
    for (const auto& entry : fs::directory_iterator(dir)) files.push_back(entry.path());
  return files;
}

KernelCompiler::Options cachedIn(const fs::path& dir) {
  KernelCompiler::Options options;
  options.cacheDir = dir.string();
  return options;
}

/// The two test bodies, their inputs, and what a compiler's kernels compute on them.
struct Workload {
  Graph first = fma("first", {5, 37});
  Graph second = expSum("second", 9);
  std::vector<TensorData> firstInputs = {spread(f32({5, 37}), -2, 2), spread(f32({5, 37}), -1, 1, 1)};
  std::vector<TensorData> secondInputs = {spread(f32({9, 33}), -3, 1)};

  /// Compiles both bodies with `compiler` and runs them (each in 3 pieces).
  std::vector<TensorData> run(KernelCompiler& compiler) const {
    auto kernels = compiler.compile({&first, &second});
    return {runKernel(*kernels.at(0), first, firstInputs, 3), runKernel(*kernels.at(1), second, secondInputs, 3)};
  }

  /// Expects `got` close to the reference interpreter's results.
  void expectCorrect(const std::vector<TensorData>& got) const {
    ASSERT_EQ(got.size(), 2u);
    expectClose(got[0], referenceRun(first, firstInputs), 1e-5);
    expectClose(got[1], referenceRun(second, secondInputs), 1e-5);
  }
};

void expectBitwise(const std::vector<TensorData>& got, const std::vector<TensorData>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].type, want[i].type);
    EXPECT_TRUE(got[i].bytes == want[i].bytes) << "result " << i << " differs";
  }
}

/// Sets an environment variable for one scope, restoring its previous state.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST(CodegenDiskCache, ANewCompilerLoadsWhatAnotherStored) {
  TempDir dir("hit");
  Workload work;
  KernelCompiler a(cachedIn(dir.path));
  EXPECT_EQ(a.cacheDir(), dir.path.string());
  std::vector<TensorData> compiled = work.run(a);
  work.expectCorrect(compiled);
  EXPECT_EQ(a.diskMisses(), 1);
  EXPECT_EQ(a.diskHits(), 0);
  std::vector<fs::path> files = filesIn(dir.path);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].extension(), ".wkc");
  EXPECT_GT(fs::file_size(files[0]), 64u);

  KernelCompiler b(cachedIn(dir.path));
  auto kernels = b.compile({&work.first, &work.second});
  EXPECT_EQ(b.diskHits(), 1);
  EXPECT_EQ(b.diskMisses(), 0);
  EXPECT_EQ(b.kernelsCompiled(), 2);
  EXPECT_TRUE(kernels.at(0)->mlir.empty());  // loaded, not generated
  expectBitwise(work.run(b), compiled);
  EXPECT_EQ(filesIn(dir.path).size(), 1u);
  // The in-process cache answers a repeat without touching the disk.
  b.compile({&work.second});
  EXPECT_EQ(b.diskHits() + b.diskMisses(), 1);
}

TEST(CodegenDiskCache, HitsDoNotDependOnNamesOrOnWhatWasCompiledBefore) {
  TempDir dir("names");
  Workload work;
  KernelCompiler a(cachedIn(dir.path));
  std::vector<TensorData> compiled = work.run(a);

  // Another compiler first compiles something else (so its kernel names differ), then the
  // same computations under other graph and value names.
  KernelCompiler b(cachedIn(dir.path));
  Graph unrelated = fma("unrelated", {3});
  b.compile({&unrelated});
  Graph renamedFirst = fma("renamed_first", {5, 37}), renamedSecond = expSum("renamed_second", 9);
  auto kernels = b.compile({&renamedFirst, &renamedSecond});
  EXPECT_EQ(b.diskHits(), 1);
  EXPECT_EQ(b.diskMisses(), 1);  // `unrelated`
  EXPECT_NE(kernels[0]->name, kernels[1]->name);
  std::vector<TensorData> loaded = {runKernel(*kernels[0], renamedFirst, work.firstInputs),
                                    runKernel(*kernels[1], renamedSecond, work.secondInputs)};
  expectBitwise(loaded, compiled);
  EXPECT_EQ(filesIn(dir.path).size(), 2u);
}

TEST(CodegenDiskCache, DifferentBatchesAreDifferentFiles) {
  TempDir dir("different");
  Workload work;
  KernelCompiler a(cachedIn(dir.path)), b(cachedIn(dir.path)), c(cachedIn(dir.path));
  a.compile({&work.first});
  b.compile({&work.second});
  Graph wider = fma("first", {5, 38});  // another shape: another kernel
  c.compile({&wider});
  EXPECT_EQ(filesIn(dir.path).size(), 3u);
  EXPECT_EQ(a.diskMisses() + b.diskMisses() + c.diskMisses(), 3);
  // The order of a batch's bodies is part of its key.
  KernelCompiler d(cachedIn(dir.path));
  d.compile({&work.second, &work.first});
  EXPECT_EQ(d.diskMisses(), 1);
  EXPECT_EQ(filesIn(dir.path).size(), 4u);
}

TEST(CodegenDiskCache, CorruptEntriesAreRecompiledAndRewritten) {
  TempDir dir("corrupt");
  Workload work;
  KernelCompiler a(cachedIn(dir.path));
  std::vector<TensorData> compiled = work.run(a);
  ASSERT_EQ(filesIn(dir.path).size(), 1u);
  const fs::path entry = filesIn(dir.path)[0];
  const uintmax_t size = fs::file_size(entry);

  auto corruptions = std::vector<std::pair<std::string, std::function<void()>>>{
      {"truncated", [&] { fs::resize_file(entry, size / 2); }},
      {"empty", [&] { fs::resize_file(entry, 0); }},
      {"one byte flipped", [&] {
         std::fstream stream(entry, std::ios::in | std::ios::out | std::ios::binary);
         stream.seekg(static_cast<std::streamoff>(size / 2));
         char c = 0;
         stream.read(&c, 1);
         stream.seekp(static_cast<std::streamoff>(size / 2));
         c = static_cast<char>(c ^ 0x5a);
         stream.write(&c, 1);
       }},
      {"garbage", [&] { std::ofstream(entry, std::ios::binary | std::ios::trunc) << std::string(size, '\x7f'); }},
      {"a directory", [&] {
         fs::remove(entry);
         fs::create_directory(entry);
       }},
  };
  for (auto& [what, corrupt] : corruptions) {
    SCOPED_TRACE(what);
    corrupt();
    KernelCompiler b(cachedIn(dir.path));
    std::vector<TensorData> recompiled = work.run(b);
    EXPECT_EQ(b.diskHits(), 0);
    EXPECT_EQ(b.diskMisses(), 1);
    work.expectCorrect(recompiled);
    expectBitwise(recompiled, compiled);
    if (fs::is_directory(entry)) {
      fs::remove(entry);  // could not be replaced by a file; the next compiler writes it again
      KernelCompiler(cachedIn(dir.path)).compile({&work.first, &work.second});
    }
    EXPECT_EQ(fs::file_size(entry), size);  // rewritten
    KernelCompiler c(cachedIn(dir.path));
    c.compile({&work.first, &work.second});
    EXPECT_EQ(c.diskHits(), 1);
  }
}

TEST(CodegenDiskCache, DisabledCacheWritesNothing) {
  TempDir dir("off");
  Workload work;
  {
    ScopedEnv env("WEFT_CACHE_DIR", dir.path.c_str());
    KernelCompiler off({"", "", "off"});
    EXPECT_EQ(off.cacheDir(), "");
    work.expectCorrect(work.run(off));
    EXPECT_EQ(off.diskHits() + off.diskMisses(), 0);
    EXPECT_FALSE(fs::exists(dir.path));
  }
  {
    ScopedEnv env("WEFT_CACHE_DIR", "off");
    EXPECT_EQ(KernelCompiler::defaultCacheDir(), "");
    KernelCompiler fromEnv;
    EXPECT_EQ(fromEnv.cacheDir(), "");
    fromEnv.compile({&work.first});
    EXPECT_EQ(fromEnv.diskMisses(), 0);
  }
}

TEST(CodegenDiskCache, TheFolderComesFromTheEnvironment) {
  {
    ScopedEnv cache("WEFT_CACHE_DIR", "/somewhere/kernels"), xdg("XDG_CACHE_HOME", "/xdg"), home("HOME", "/home/u");
    EXPECT_EQ(KernelCompiler::defaultCacheDir(), "/somewhere/kernels");
    EXPECT_EQ(KernelCompiler().cacheDir(), "/somewhere/kernels");
    EXPECT_EQ(KernelCompiler(cachedIn("/explicit")).cacheDir(), "/explicit");  // the option wins
  }
  {
    ScopedEnv cache("WEFT_CACHE_DIR", ""), xdg("XDG_CACHE_HOME", "/xdg"), home("HOME", "/home/u");
    EXPECT_EQ(KernelCompiler::defaultCacheDir(), "/xdg/weft/kernels");
  }
  {
    ScopedEnv cache("WEFT_CACHE_DIR", nullptr), xdg("XDG_CACHE_HOME", "relative"), home("HOME", "/home/u");
    EXPECT_EQ(KernelCompiler::defaultCacheDir(), "/home/u/.cache/weft/kernels");
  }
  {
    ScopedEnv cache("WEFT_CACHE_DIR", nullptr), xdg("XDG_CACHE_HOME", nullptr), home("HOME", "");
    EXPECT_EQ(KernelCompiler::defaultCacheDir(), "");
  }
}

TEST(CodegenDiskCache, AnUnusableFolderOnlyMeansCompiling) {
  TempDir dir("unusable");
  fs::create_directories(dir.path);
  std::ofstream(dir.path / "file") << "not a folder";
  Workload work;
  KernelCompiler compiler(cachedIn(dir.path / "file" / "kernels"));
  work.expectCorrect(work.run(compiler));
  EXPECT_EQ(compiler.diskMisses(), 1);
  EXPECT_EQ(filesIn(dir.path).size(), 1u);
}

TEST(CodegenDiskCache, DumpsAlwaysCompile) {
  TempDir dir("dumps"), mlirDir("dumps_mlir");
  Workload work;
  KernelCompiler a(cachedIn(dir.path));
  std::vector<TensorData> compiled = work.run(a);
  KernelCompiler dumping({mlirDir.path.string(), "", dir.path.string()});
  auto kernels = dumping.compile({&work.first, &work.second});
  EXPECT_EQ(dumping.diskHits(), 0);
  EXPECT_EQ(dumping.diskMisses(), 1);
  for (const GeneratedKernel* k : kernels) {
    EXPECT_FALSE(k->mlir.empty());
    EXPECT_TRUE(fs::exists(mlirDir.path / (k->name + ".mlir"))) << k->name;
  }
  expectBitwise(work.run(dumping), compiled);
}

TEST(CodegenDiskCache, TrimmingDeletesTheLeastRecentlyUsedEntriesOnly) {
  TempDir dir("trim");
  std::vector<Graph> bodies;
  for (int64_t width = 10; width < 14; ++width) bodies.push_back(fma("trim", {3, width}));
  // Three entries, used long ago in this order, and a file that is not an entry.
  uintmax_t largest = 0;
  std::vector<fs::path> old;
  for (size_t i = 0; i < 3; ++i) {
    KernelCompiler(cachedIn(dir.path)).compile({&bodies[i]});
    for (const fs::path& file : filesIn(dir.path))
      if (std::find(old.begin(), old.end(), file) == old.end()) old.push_back(file);
    ASSERT_EQ(old.size(), i + 1);
    largest = std::max(largest, fs::file_size(old.back()));
    fs::last_write_time(old.back(), fs::file_time_type::clock::now() - std::chrono::hours(100 - static_cast<int>(i)));
  }
  std::ofstream(dir.path / "notes.txt") << std::string(4 * largest, 'x');

  // Loading the oldest refreshes it; then a fourth entry goes over a limit of 3 entries,
  // and the folder is trimmed to 2.25 entries.
  KernelCompiler(cachedIn(dir.path)).compile({&bodies[0]});
  KernelCompiler::Options options = cachedIn(dir.path);
  options.cacheBytesLimit = largest * 3;
  KernelCompiler limited(options);
  limited.compile({&bodies[3]});
  EXPECT_EQ(limited.diskMisses(), 1);
  EXPECT_TRUE(fs::exists(dir.path / "notes.txt"));
  EXPECT_TRUE(fs::exists(old[0])) << "recently loaded";
  EXPECT_FALSE(fs::exists(old[1]));
  EXPECT_FALSE(fs::exists(old[2]));
  EXPECT_EQ(filesIn(dir.path).size(), 3u);  // notes.txt, the refreshed entry and the new one
}

TEST(CodegenDiskCache, ALargeBatchCompilesInPartsEachItsOwnEntry) {
  // 20 distinct bodies (distinct shapes): two parts of 10 on two threads, stored as two entries.
  std::vector<Graph> bodies;
  for (int64_t rows = 1; rows <= 10; ++rows) {
    bodies.push_back(fma("fma" + std::to_string(rows), {rows, 7}));
    bodies.push_back(expSum("sum" + std::to_string(rows), rows));
  }
  std::vector<const Graph*> batch;
  for (const Graph& body : bodies) batch.push_back(&body);
  ASSERT_GE(batch.size(), 2 * KernelCompiler::kMinPartKernels);
  TempDir dir("parts");
  KernelCompiler::Options options = cachedIn(dir.path);
  options.threads = 2;
  KernelCompiler a(options);
  std::vector<const GeneratedKernel*> kernels = a.compile(batch);
  EXPECT_EQ(a.diskMisses(), 2);
  EXPECT_EQ(a.kernelsCompiled(), 20);
  EXPECT_EQ(filesIn(dir.path).size(), 2u);
  std::vector<TensorData> results;
  for (size_t i = 0; i < bodies.size(); ++i) {
    SCOPED_TRACE(bodies[i].name());
    ASSERT_FALSE(kernels[i]->mlir.empty());
    std::vector<TensorData> inputs;
    int seed = 0;
    for (ValueId v : bodies[i].inputs()) inputs.push_back(spread(bodies[i].type(v), -2, 2, seed++));
    results.push_back(runKernel(*kernels[i], bodies[i], inputs));
    expectClose(results.back(), referenceRun(bodies[i], inputs), 1e-5);
  }

  // One thread compiles the same batch as one part: a new entry, the same code.
  options.threads = 1;
  KernelCompiler single(options);
  kernels = single.compile(batch);
  EXPECT_EQ(single.diskMisses(), 1);
  EXPECT_EQ(filesIn(dir.path).size(), 3u);
  // Two threads again: both parts load.
  options.threads = 2;
  KernelCompiler b(options);
  std::vector<const GeneratedKernel*> loaded = b.compile(batch);
  EXPECT_EQ(b.diskHits(), 2);
  EXPECT_EQ(b.diskMisses(), 0);
  for (size_t i = 0; i < bodies.size(); ++i) {
    std::vector<TensorData> inputs;
    int seed = 0;
    for (ValueId v : bodies[i].inputs()) inputs.push_back(spread(bodies[i].type(v), -2, 2, seed++));
    EXPECT_TRUE(runKernel(*loaded[i], bodies[i], inputs).bytes == results[i].bytes) << bodies[i].name();
    EXPECT_TRUE(runKernel(*kernels[i], bodies[i], inputs).bytes == results[i].bytes) << bodies[i].name();
  }
}
