// The startup of a bundle measured in this process: the bundle's program with its kernels
// JIT-compiled here (the same code the object holds for the host CPU) behind an in-memory
// weft_bundle, run through the C interface exactly as a program that links NAME.o would:
// weft_model_create, weft_model_load_weights(NAME.safetensors), a first run on zero inputs,
// then the median of a few more runs. oneDNN's primitive cache is emptied and disabled while
// measuring, so that primitives the writer (or a JIT executable) already created in this
// process do not make weft_model_create look faster than in a fresh program.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>

#include "backends/cpu/aot.h"
#include "backends/cpu/shared_compiler.h"
#include "ir/error.h"
#include "ir/parser.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/generated_steps.h"
#include "runtime/cpu/program.h"
#include "runtime/weft.h"

namespace weft::cpu {

using ir::ValueId;

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Destroys a weft_model when it goes out of scope.
struct ModelDeleter {
  void operator()(weft_model* m) const { weft_model_destroy(m); }
};
using ModelPtr = std::unique_ptr<weft_model, ModelDeleter>;

/// Throws weft::Error for a failed call of the C interface, with the runtime's message.
void check(weft_status status, const weft_model* model, const std::string& what) {
  if (status == WEFT_OK) return;
  std::string message = model ? weft_model_error(model) : weft_last_error();
  throw Error(what + " failed (status " + std::to_string(static_cast<int>(status)) + "): " + message);
}

constexpr int kTimedRuns = 5;

/// Empties and disables oneDNN's primitive cache for its lifetime, then restores its capacity.
class PrimitiveCacheOff {
 public:
  PrimitiveCacheOff() : capacity_(dnnl::get_primitive_cache_capacity()) { dnnl::set_primitive_cache_capacity(0); }
  ~PrimitiveCacheOff() { dnnl::set_primitive_cache_capacity(capacity_); }
  PrimitiveCacheOff(const PrimitiveCacheOff&) = delete;
  PrimitiveCacheOff& operator=(const PrimitiveCacheOff&) = delete;

 private:
  int capacity_;
};

}  // namespace

AotStartup measureStartup(const AotOptions& options, const AotResult& result) {
  const std::string what = "bundle " + result.name;
  ir::Graph program = ir::parseGraph(result.program, what + " program");

  // The kernels of the program's generated steps, as the bundle holds them (one per step,
  // merged optimizer steps and side sums included) and as the loader asks for them.
  const MemoryPlan plan = planMemory(program);
  const std::vector<GeneratedStep> steps =
      generatedSteps(program, plan, blockedValues(program, plan, nullptr, result.channelBlock != 0));
  std::vector<const ir::Graph*> bodies;
  for (const GeneratedStep& step : steps) bodies.push_back(step.body.get());
  std::vector<const GeneratedKernel*> compiled = bodies.empty() ? std::vector<const GeneratedKernel*>{}
                                                                : compileShared(bodies);
  std::vector<weft_kernel> kernels;
  kernels.reserve(compiled.size());
  for (const GeneratedKernel* k : compiled)
    kernels.push_back({k->name.c_str(), k->entry, k->numInputs, k->parallelExtent, k->work, k->partialSums ? 1 : 0});
  const weft_bundle bundle{WEFT_ABI_VERSION,
                           result.name.c_str(),
                           result.program.c_str(),
                           static_cast<int64_t>(result.program.size()),
                           kernels.data(),
                           static_cast<int64_t>(kernels.size()),
                           "",  // this host's code
                           result.channelBlock};

  AotStartup startup;
  PrimitiveCacheOff freshPrimitives;
  auto start = std::chrono::steady_clock::now();
  weft_model* raw = nullptr;
  check(weft_model_create(&bundle, &raw), nullptr, what + ": weft_model_create");
  ModelPtr model(raw);
  startup.createSeconds = secondsSince(start);

  const std::string weights = (std::filesystem::path(options.outDir) / (result.name + ".safetensors")).string();
  start = std::chrono::steady_clock::now();
  check(weft_model_load_weights(model.get(), weights.c_str()), model.get(), what + ": weft_model_load_weights");
  startup.loadSeconds = secondsSince(start);

  // Zero inputs: valid for every model (indices 0, labels of class 0).
  std::vector<std::vector<uint8_t>> inputs;
  for (ValueId v : program.inputs()) {
    size_t bytes = program.type(v).byteSize();
    inputs.emplace_back(std::max<size_t>(bytes, 1), 0);  // never a null pointer, even for an empty input
    check(weft_model_set_input(model.get(), program.node(v).name.c_str(), inputs.back().data(), bytes),
          model.get(), what + ": weft_model_set_input");
  }
  start = std::chrono::steady_clock::now();
  check(weft_model_run(model.get()), model.get(), what + ": weft_model_run");
  startup.firstRunSeconds = secondsSince(start);

  std::vector<double> runs;
  for (int i = 0; i < kTimedRuns; ++i) {
    start = std::chrono::steady_clock::now();
    check(weft_model_run(model.get()), model.get(), what + ": weft_model_run");
    runs.push_back(secondsSince(start));
  }
  std::sort(runs.begin(), runs.end());
  startup.nextRunSeconds = runs[runs.size() / 2];
  return startup;
}

}  // namespace weft::cpu
