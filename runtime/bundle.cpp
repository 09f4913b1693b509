// The C interface of runtime/weft.h over cpu::Program: making a bundle runnable (checking
// its ABI version, parsing its program text, matching its kernel table to the program's
// generated fused nodes, building the schedule and the parameters' initial values), binding
// inputs, running and stepping, and reading outputs and parameters. Weights files are read
// and written in bundle_weights.cpp. Every entry point catches everything (bundle_model.h).
#include <cstring>

#include "ir/parser.h"
#include "ir/verifier.h"
#include "runtime/bundle_model.h"
#include "runtime/cpu_features.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/denormals.h"
#include "runtime/cpu/generated_steps.h"
#include "runtime/cpu/memory_plan.h"
#include "runtime/init.h"

using weft::Error;
using weft::runtime::BundleError;
using weft::runtime::guarded;
using weft::runtime::requireNonNull;
namespace ir = weft::ir;
namespace cpu = weft::cpu;

namespace weft::runtime {

namespace {

thread_local std::string lastError;

/// A byte that stands for the data of an empty input (bound values must be non-null).
const char kEmptyInput = 0;

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string bundleName(const weft_bundle& bundle) { return bundle.name ? bundle.name : "(unnamed)"; }

/// The program text of `bundle`, after checking its descriptor.
std::string_view programText(const weft_bundle& bundle, const std::string& name) {
  if (bundle.abi_version != WEFT_ABI_VERSION)
    throw BundleError(WEFT_ERROR_ABI, "bundle " + quoted(name) + " was written for weft ABI " +
                                          std::to_string(bundle.abi_version) + "; this runtime is ABI " +
                                          std::to_string(WEFT_ABI_VERSION));
  if (!bundle.program || bundle.program_bytes < 0)
    throw BundleError(WEFT_ERROR_ABI, "bundle " + quoted(name) + " has no program text");
  if (bundle.kernel_count < 0 || (bundle.kernel_count > 0 && !bundle.kernels))
    throw BundleError(WEFT_ERROR_ABI, "bundle " + quoted(name) + " has a malformed kernel table (" +
                                          std::to_string(bundle.kernel_count) + " kernels)");
  if (bundle.channel_block != 0 && bundle.channel_block != cpu::kChannelBlock)
    throw BundleError(WEFT_ERROR_ABI, "bundle " + quoted(name) + " has a malformed channel block (" +
                                          std::to_string(bundle.channel_block) + ")");
  if (const std::string missing = missingCpuFeatures(bundle.cpu_features ? bundle.cpu_features : ""); !missing.empty())
    throw BundleError(WEFT_ERROR_UNSUPPORTED, "bundle " + quoted(name) + " was compiled for a CPU with " + missing +
                                                  ", which this CPU lacks (write it again here, or for an older " +
                                                  "CPU: weft compile --aot --mcpu x86-64-v3)");
  if (bundle.channel_block != 0 && !cpu::channelBlocksFit())
    throw BundleError(WEFT_ERROR_UNSUPPORTED, "bundle " + quoted(name) +
                                                  " stores convolution data in 16-channel blocks, which oneDNN " +
                                                  "computes in only with AVX-512 (write it again here)");
  return {bundle.program, static_cast<size_t>(bundle.program_bytes)};
}

/// The kernel table of `bundle` as the program calls it, one entry per generated step of
/// `graph` (cpu::generatedSteps under `plan`, in node order, over the `blocked` data the writer
/// chose alike); `kernelOf` maps each step's node to its entry.
std::vector<cpu::KernelEntry> kernelTable(const weft_bundle& bundle, const std::string& name, const ir::Graph& graph,
                                          const cpu::MemoryPlan& plan, const std::vector<bool>& blocked,
                                          std::vector<int64_t>& kernelOf) {
  const std::vector<cpu::GeneratedStep> steps = cpu::generatedSteps(graph, plan, blocked);
  std::vector<ir::ValueId> generated;
  for (const cpu::GeneratedStep& step : steps) generated.push_back(step.value);
  std::string mismatch = "bundle " + quoted(name) + ": its kernel table does not match its program: ";
  if (bundle.kernel_count != static_cast<int64_t>(generated.size()))
    throw BundleError(WEFT_ERROR_ABI, mismatch + std::to_string(bundle.kernel_count) + " kernels for " +
                                          std::to_string(generated.size()) + " generated steps");
  std::vector<cpu::KernelEntry> kernels;
  kernels.reserve(generated.size());
  kernelOf.assign(static_cast<size_t>(graph.size()), -1);
  for (size_t i = 0; i < generated.size(); ++i) {
    const weft_kernel& k = bundle.kernels[i];
    std::string kernelName = k.name ? k.name : "#" + std::to_string(i);
    if (k.parallel_extent < 1 || k.work < 0 || (k.partial_sums != 0 && k.partial_sums != 1))
      throw BundleError(WEFT_ERROR_ABI, mismatch + "kernel " + std::to_string(i) + " (" + kernelName +
                                            ") has a malformed entry (parallel_extent " +
                                            std::to_string(k.parallel_extent) + ", work " + std::to_string(k.work) +
                                            ", partial_sums " + std::to_string(k.partial_sums) + ")");
    const size_t args = steps[i].operands.size() + steps[i].extraOutputs.size() + steps[i].sideSums.size();
    if (!k.packed || k.num_inputs != static_cast<int64_t>(args))
      throw BundleError(WEFT_ERROR_ABI, mismatch + "kernel " + std::to_string(i) + " (" + kernelName + ") takes " +
                                            std::to_string(k.num_inputs) + " inputs but the step of " +
                                            ir::valueRef(graph, generated[i]) + " passes " + std::to_string(args) +
                                            (k.packed ? "" : " (and it has no entry point)"));
    kernels.push_back(cpu::KernelEntry{kernelName, k.packed, static_cast<int>(k.num_inputs), k.parallel_extent,
                                       k.work, k.partial_sums == 1});
    kernelOf[static_cast<size_t>(generated[i])] = static_cast<int64_t>(i);
  }
  return kernels;
}

/// Checks caller-owned memory of `capacity` bytes for `needed` bytes of `what`.
void checkCallerMemory(const void* memory, size_t capacity, int64_t needed, const std::string& what,
                       const std::string& name) {
  if (!memory) {
    if (needed > 0)
      throw BundleError(WEFT_ERROR_ARGUMENT, what + " is NULL but bundle " + quoted(name) + " needs " +
                                                 std::to_string(needed) + " bytes");
    return;
  }
  if (capacity < static_cast<uint64_t>(needed))
    throw BundleError(WEFT_ERROR_ARGUMENT, what + " of " + std::to_string(capacity) + " bytes is too small: bundle " +
                                               quoted(name) + " needs " + std::to_string(needed));
  if (reinterpret_cast<uintptr_t>(memory) % cpu::kArenaAlignment != 0)
    throw BundleError(WEFT_ERROR_ARGUMENT,
                      what + " is not " + std::to_string(cpu::kArenaAlignment) + "-byte aligned");
}

/// Caller-owned memory, when weft_model_create_with_memory passes it.
struct CallerMemory {
  void* arena = nullptr;
  size_t arenaBytes = 0;
  void* state = nullptr;
  size_t stateBytes = 0;
};

/// Builds the model of `bundle` (see weft_model_create).
std::unique_ptr<weft_model> makeModel(const weft_bundle& bundle, const CallerMemory* memory) {
  auto model = std::make_unique<weft_model>();
  model->bundle = &bundle;
  model->name = bundleName(bundle);
  std::string_view text = programText(bundle, model->name);
  ir::Graph graph;
  try {
    ir::ParseOptions options;
    options.allowElidedConstants = false;  // the writer prints every constant in full
    graph = ir::parseGraph(text, "bundle '" + model->name + "'", options);  // parseGraph verifies the graph
  } catch (const Error& e) {
    throw BundleError(WEFT_ERROR_ABI, std::string(e.what()) + " (the program of bundle " + quoted(model->name) +
                                          " does not parse: was it written by another weft version?)");
  }
  std::vector<int64_t> kernelOf;
  const cpu::MemoryPlan plan = cpu::planMemory(graph);
  std::vector<bool> blocked = cpu::blockedValues(graph, plan, nullptr, bundle.channel_block != 0);
  model->kernels = kernelTable(bundle, model->name, graph, plan, blocked, kernelOf);

  cpu::ProgramOptions options;
  try {
    options.threads = cpu::defaultThreads();
    options.flushDenormals = cpu::defaultFlushDenormals();
    cpu::profileSteps();  // the program reads it too: a bad value is the caller's error
  } catch (const Error& e) {
    throw BundleError(WEFT_ERROR_ARGUMENT, "bundle " + quoted(model->name) + ": " + e.what());
  }
  const std::vector<cpu::KernelEntry>& kernels = model->kernels;
  options.kernelFor = [&kernels, kernelOf](ir::ValueId v) -> const cpu::KernelEntry* {
    int64_t i = kernelOf[static_cast<size_t>(v)];
    return i < 0 ? nullptr : &kernels[static_cast<size_t>(i)];
  };
  options.blocked = std::move(blocked);
  options.holdConstantCopies = true;
  model->paramsExposed = memory != nullptr;
  if (memory) {
    checkCallerMemory(memory->arena, memory->arenaBytes, plan.arenaBytes, "the arena", model->name);
    checkCallerMemory(memory->state, memory->stateBytes, plan.persistentBytes, "the state memory", model->name);
    options.arena = static_cast<uint8_t*>(memory->arena);
    options.arenaCapacity = static_cast<int64_t>(memory->arenaBytes);
    options.state = static_cast<uint8_t*>(memory->state);
    options.stateCapacity = static_cast<int64_t>(memory->stateBytes);
  }
  try {
    model->program = std::make_unique<cpu::Program>(std::move(graph), std::move(options));
  } catch (const Error& e) {
    throw BundleError(WEFT_ERROR_UNSUPPORTED, "bundle " + quoted(model->name) + ": " + e.what());
  } catch (const dnnl::error& e) {
    throw BundleError(WEFT_ERROR_UNSUPPORTED,
                      "bundle " + quoted(model->name) + ": oneDNN cannot build a step on this CPU: " + e.what());
  }

  model->bound.assign(static_cast<size_t>(model->graph().size()), nullptr);
  return model;
}

/// At most this many names in a message's list.
constexpr size_t kListedNames = 16;

/// The names and types of `values` of `g`, for messages: "x f32[4,16], y i32[4]".
std::string listValues(const ir::Graph& g, const std::vector<ir::ValueId>& values) {
  std::string list;
  for (size_t i = 0; i < values.size() && i < kListedNames; ++i)
    list += (i ? ", " : "") + g.node(values[i]).name + " " + g.type(values[i]).str();
  if (values.size() > kListedNames) list += " and " + std::to_string(values.size() - kListedNames) + " more";
  return list.empty() ? "none" : list;
}

/// Throws WEFT_ERROR_STATE naming the first input not set.
void requireInputsSet(const weft_model& model) {
  const ir::Graph& g = model.graph();
  for (ir::ValueId v : g.inputs())
    if (!model.bound[static_cast<size_t>(v)])
      throw BundleError(WEFT_ERROR_STATE, "bundle " + quoted(model.name) + ": input " + quoted(g.node(v).name) + " (" +
                                              g.type(v).str() + ") is not set: call weft_model_set_input first");
}

/// Runs the graph once on the bound inputs, leaving the state as it was unless `updating`
/// (a step, which applies the updates next); a failing step (bad input data) is an
/// argument error.
void execute(weft_model& model, bool updating) {
  requireInputsSet(model);
  ensureParams(model);
  model.outputsValid = false;
  if (model.paramsExposed) model.program->forgetHeldCopies();
  try {
    model.program->execute(model.bound, model.stepCounter, /*keepState=*/!updating);
  } catch (const Error& e) {
    throw BundleError(WEFT_ERROR_ARGUMENT, "bundle " + quoted(model.name) + ": " + e.what());
  }
  model.outputsValid = true;
}

}  // namespace

void ensureParams(weft_model& model) {
  if (model.paramsReady) return;
  const ir::Graph& g = model.graph();
  for (ir::ValueId p : g.params()) {
    const ir::Node& node = g.node(p);
    ir::TensorData initial = initializeParam(node.name, node.type, node.attrs);
    if (!initial.bytes.empty()) std::memcpy(model.program->paramData(p), initial.bytes.data(), initial.bytes.size());
  }
  model.program->forgetHeldCopies();
  model.paramsReady = true;
}

void recordError(const weft_model* model, const std::string& message) {
  lastError = message;
  if (model) model->error = message;
}

weft_status failWith(const weft_model* model, weft_status status, const std::string& message) {
  try {
    recordError(model, message);
  } catch (...) {  // no memory left for the message: the status still says what happened
  }
  return status;
}

std::optional<ir::ValueId> findParam(const weft_model& model, const std::string& name) {
  std::optional<ir::ValueId> v = model.graph().find(name);
  if (!v || model.graph().node(*v).op != ir::OpKind::Param) return std::nullopt;
  return v;
}

}  // namespace weft::runtime

using namespace weft::runtime;

namespace {

weft_status createModel(const weft_bundle* bundle, const CallerMemory* memory, weft_model** model) {
  if (model) *model = nullptr;
  return guarded(nullptr, WEFT_ERROR_INTERNAL, WEFT_ERROR_UNSUPPORTED, [&] {
    requireNonNull(model, "weft_model_create: the model pointer");
    requireNonNull(bundle, "weft_model_create: the bundle");
    *model = makeModel(*bundle, memory).release();
  });
}

}  // namespace

extern "C" {

int weft_runtime_abi_version(void) { return WEFT_ABI_VERSION; }

const char* weft_last_error(void) { return lastError.c_str(); }

weft_status weft_model_create(const weft_bundle* bundle, weft_model** model) {
  return createModel(bundle, nullptr, model);
}

weft_status weft_model_create_with_memory(const weft_bundle* bundle, void* arena, size_t arena_bytes, void* state,
                                          size_t state_bytes, weft_model** model) {
  CallerMemory memory{arena, arena_bytes, state, state_bytes};
  return createModel(bundle, &memory, model);
}

void weft_model_destroy(weft_model* model) { delete model; }

const char* weft_model_error(const weft_model* model) {
  return model ? model->error.c_str() : "weft_model_error: the model is NULL";
}

weft_status weft_model_set_threads(weft_model* model, int threads) {
  return guarded(model, WEFT_ERROR_ARGUMENT, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_set_threads: the model");
    if (threads < 1 || threads > cpu::kMaxThreads)
      throw BundleError(WEFT_ERROR_ARGUMENT, "weft_model_set_threads: " + std::to_string(threads) +
                                                 " threads: expected 1 to " + std::to_string(cpu::kMaxThreads));
    model->program->setThreads(threads);
  });
}

weft_status weft_model_set_denormals(weft_model* model, int flush) {
  return guarded(model, WEFT_ERROR_ARGUMENT, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_set_denormals: the model");
    if (flush != 0 && flush != 1)
      throw BundleError(WEFT_ERROR_ARGUMENT, "weft_model_set_denormals: " + std::to_string(flush) +
                                                 ": 1 flushes denormals, 0 keeps them");
    model->program->setFlushDenormals(flush == 1);
  });
}

weft_status weft_model_set_step(weft_model* model, uint64_t step) {
  return guarded(model, WEFT_ERROR_ARGUMENT, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_set_step: the model");
    model->stepCounter = step;
  });
}

weft_status weft_model_set_input(weft_model* model, const char* name, const void* data, size_t bytes) {
  return guarded(model, WEFT_ERROR_ARGUMENT, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_set_input: the model");
    requireNonNull(name, "weft_model_set_input: the input name");
    const weft::ir::Graph& g = model->graph();
    std::optional<weft::ir::ValueId> v = g.find(name);
    if (!v || g.node(*v).op != weft::ir::OpKind::Input)
      throw BundleError(WEFT_ERROR_ARGUMENT, "bundle '" + model->name + "' has no input '" + name +
                                                 "' (its inputs: " + listValues(g, g.inputs()) + ")");
    const weft::ir::TensorType& type = g.type(*v);
    if (bytes != type.byteSize())
      throw BundleError(WEFT_ERROR_ARGUMENT, "input '" + std::string(name) + "' of bundle '" + model->name + "' is " +
                                                 type.str() + ": " + std::to_string(type.byteSize()) +
                                                 " bytes expected, got " + std::to_string(bytes));
    if (!data && bytes > 0) throw BundleError(WEFT_ERROR_ARGUMENT, "weft_model_set_input: the data of input '" +
                                                                       std::string(name) + "' is NULL");
    model->bound[static_cast<size_t>(*v)] = data ? data : &kEmptyInput;
  });
}

weft_status weft_model_run(weft_model* model) {
  return guarded(model, WEFT_ERROR_ARGUMENT, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_run: the model");
    execute(*model, /*updating=*/false);
  });
}

weft_status weft_model_step(weft_model* model) {
  return guarded(model, WEFT_ERROR_ARGUMENT, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_step: the model");
    if (model->graph().updates().empty())
      throw BundleError(WEFT_ERROR_STATE, "bundle '" + model->name +
                                              "' has no updates (an inference bundle): weft_model_step needs a "
                                              "training bundle (weft compile --aot --train); use weft_model_run");
    execute(*model, /*updating=*/true);
    model->program->applyUpdates(model->bound);
    ++model->stepCounter;
  });
}

const void* weft_model_output(const weft_model* model, const char* name, size_t* bytes) {
  if (bytes) *bytes = 0;
  const void* result = nullptr;
  guarded(model, WEFT_ERROR_ARGUMENT, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_output: the model");
    requireNonNull(name, "weft_model_output: the output name");
    const weft::ir::Graph& g = model->graph();
    std::optional<weft::ir::ValueId> v = g.findOutput(name);
    if (!v) {
      std::string list;  // outputs are named apart from their values
      for (const auto& out : g.outputs()) list += (list.empty() ? "" : ", ") + out.name + " " + g.type(out.value).str();
      throw BundleError(WEFT_ERROR_ARGUMENT, "bundle '" + model->name + "' has no output '" + name +
                                                 "' (its outputs: " + (list.empty() ? "none" : list) + ")");
    }
    if (!model->outputsValid)
      throw BundleError(WEFT_ERROR_STATE, "bundle '" + model->name + "': output '" + name +
                                              "' is not computed yet: call weft_model_run or weft_model_step first");
    result = model->program->address(*v, model->bound);
    if (bytes) *bytes = g.type(*v).byteSize();
  });
  return result;
}

void* weft_model_param(weft_model* model, const char* name, size_t* bytes) {
  if (bytes) *bytes = 0;
  void* result = nullptr;
  guarded(model, WEFT_ERROR_ARGUMENT, WEFT_ERROR_INTERNAL, [&] {
    requireNonNull(model, "weft_model_param: the model");
    requireNonNull(name, "weft_model_param: the parameter name");
    std::optional<weft::ir::ValueId> p = findParam(*model, name);
    if (!p)
      throw BundleError(WEFT_ERROR_ARGUMENT, "bundle '" + model->name + "' has no parameter '" + name +
                                                 "' (its parameters: " +
                                                 listValues(model->graph(), model->graph().params()) + ")");
    weft::runtime::ensureParams(*model);
    model->paramsExposed = true;
    result = model->program->paramData(*p);
    if (bytes) *bytes = model->graph().type(*p).byteSize();
  });
  return result;
}

}  // extern "C"
