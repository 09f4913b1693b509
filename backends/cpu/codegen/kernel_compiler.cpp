// KernelCompiler: the cache of generated kernels and the calling convention. Algorithm:
// each body is keyed by its printed text with every value name, location, the graph name
// and the output name dropped (so identical kernels from different places share one key);
// bodies missing from the cache are planned (kernel_plan.cpp), named, and compiled together
// as one batch by MlirJit. invoke() packs the arguments as the packed entry point expects:
// args[i] points to argument i of `void(out, in..., begin, end)`. emitBundle dedups bodies
// by the same key and hands the distinct ones, with the weft_kernel table, to MlirJit.
#include "backends/cpu/codegen/kernel_compiler.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "backends/cpu/codegen/kernel_plan.h"
#include "backends/cpu/codegen/mlir_jit.h"
#include "ir/error.h"
#include "ir/printer.h"

namespace weft::cpu {
namespace {

/// The cache key of a body: its full text (no elided constants) without names.
std::string cacheKey(const ir::Graph& body) {
  ir::Graph anonymous = body;
  anonymous.setName("kernel");
  for (ir::ValueId v = 0; v < anonymous.size(); ++v) {
    anonymous.node(v).name.clear();
    anonymous.node(v).loc.clear();
  }
  for (ir::Output& o : anonymous.outputs()) o.name = "out";
  ir::PrintOptions options;
  options.elideLargeConstants = false;
  return ir::printGraph(anonymous, options);
}

void writeFile(const std::string& dir, const std::string& file, const std::string& text) {
  std::filesystem::create_directories(dir);
  std::ofstream stream(std::filesystem::path(dir) / file);
  stream << text;
  if (!stream) throw Error("cannot write " + (std::filesystem::path(dir) / file).string());
}

}  // namespace

KernelCompiler::KernelCompiler(Options options)
    : options_(std::move(options)), jit_(std::make_unique<MlirJit>(options_.dumpAsmDir)) {}

KernelCompiler::~KernelCompiler() = default;

std::optional<std::string> KernelCompiler::unsupported(const ir::Graph& body) {
  return codegen::unsupportedReason(body);
}

std::string KernelCompiler::nextName(const ir::Graph& body) {
  std::string name = "weft_";
  for (char c : body.name()) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name + "_" + std::to_string(nameCounter_++);
}

std::vector<const GeneratedKernel*> KernelCompiler::compile(const std::vector<const ir::Graph*>& bodies) {
  std::vector<std::string> keys;
  std::vector<KernelRequest> requests;
  std::vector<std::string> requestKeys;
  int hits = 0;
  for (const ir::Graph* body : bodies) {
    if (!body) throw Error("KernelCompiler::compile: null body");
    std::string key = cacheKey(*body);
    bool queued = std::find(requestKeys.begin(), requestKeys.end(), key) != requestKeys.end();
    if (cache_.count(key) || queued) {
      ++hits;
    } else {
      requests.push_back({body, codegen::planKernel(*body), nextName(*body)});
      requestKeys.push_back(key);
    }
    keys.push_back(std::move(key));
  }
  CompiledBatch batch = jit_->compile(requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto kernel = std::make_unique<GeneratedKernel>();
    kernel->name = requests[i].name;
    kernel->mlir = batch.mlirTexts[i];
    kernel->parallelExtent = requests[i].plan.parallelExtent;
    kernel->numInputs = static_cast<int>(requests[i].body->inputs().size());
    kernel->entry = batch.entries[i];
    if (!options_.dumpMlirDir.empty()) writeFile(options_.dumpMlirDir, kernel->name + ".mlir", kernel->mlir);
    cache_[requestKeys[i]] = std::move(kernel);
  }
  kernelsCompiled_ += static_cast<int>(requests.size());
  cacheHits_ += hits;
  std::vector<const GeneratedKernel*> result;
  for (const std::string& key : keys) result.push_back(cache_.at(key).get());
  return result;
}

KernelObject KernelCompiler::emitObject(const std::vector<const ir::Graph*>& bodies) {
  KernelObject object;
  std::vector<KernelRequest> requests;
  for (const ir::Graph* body : bodies) {
    if (!body) throw Error("KernelCompiler::emitObject: null body");
    requests.push_back({body, codegen::planKernel(*body), nextName(*body)});
    object.symbols.push_back(requests.back().name);
    object.parallelExtents.push_back(requests.back().plan.parallelExtent);
  }
  object.elf = jit_->emitObject(requests);
  return object;
}

BundleObject KernelCompiler::emitBundle(const std::vector<const ir::Graph*>& bodies, const BundleSymbols& symbols,
                                        const ObjectTarget& target) {
  BundleRequest bundle;
  bundle.symbols = symbols;
  std::vector<std::string> distinctKeys;
  for (const ir::Graph* body : bodies) {
    if (!body) throw Error("KernelCompiler::emitBundle: null body");
    std::string key = cacheKey(*body);
    auto found = std::find(distinctKeys.begin(), distinctKeys.end(), key);
    int index = static_cast<int>(found - distinctKeys.begin());
    if (found == distinctKeys.end()) {
      bundle.kernels.push_back({body, codegen::planKernel(*body), nextName(*body)});
      distinctKeys.push_back(std::move(key));
    }
    const KernelRequest& request = bundle.kernels[static_cast<size_t>(index)];
    bundle.entries.push_back({index, static_cast<int64_t>(body->inputs().size()), request.plan.parallelExtent});
  }
  BundleObject object;
  object.elf = jit_->emitBundle(bundle, target);
  object.distinctKernels = static_cast<int>(bundle.kernels.size());
  return object;
}

std::string KernelCompiler::hostCpuName() { return llvmHostCpu(); }

std::string KernelCompiler::hostTriple() { return llvmHostTriple(); }

void invoke(const GeneratedKernel& kernel, void* out, const std::vector<const void*>& inputs, int64_t begin,
            int64_t end) {
  if (static_cast<int>(inputs.size()) != kernel.numInputs)
    throw Error("kernel " + kernel.name + " takes " + std::to_string(kernel.numInputs) + " inputs, got " +
                std::to_string(inputs.size()));
  if (begin < 0 || begin > end || end > kernel.parallelExtent)
    throw Error("kernel " + kernel.name + ": range [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") is not within [0, " + std::to_string(kernel.parallelExtent) + ")");
  if (!kernel.entry) throw Error("kernel " + kernel.name + " has no entry point");
  constexpr size_t kInline = 16;  // arguments of most kernels fit without allocating
  size_t count = inputs.size() + 3;
  void* pointerStorage[kInline];
  void* argStorage[kInline];
  std::vector<void*> pointerHeap, argHeap;
  void** pointers = pointerStorage;
  void** args = argStorage;
  if (count > kInline) {
    pointerHeap.resize(count);
    argHeap.resize(count);
    pointers = pointerHeap.data();
    args = argHeap.data();
  }
  pointers[0] = out;
  for (size_t i = 0; i < inputs.size(); ++i) pointers[i + 1] = const_cast<void*>(inputs[i]);
  for (size_t i = 0; i + 2 < count; ++i) args[i] = &pointers[i];
  args[count - 2] = &begin;
  args[count - 1] = &end;
  kernel.entry(args);
}

}  // namespace weft::cpu
