// Compiles a graph for the CPU: the CPU pipeline, a memory plan, one step per node that
// computes (a oneDNN primitive, a generated kernel or a reference kernel); and runs it.
#include "backends/cpu/executable.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/aligned_buffer.h"
#include "backends/cpu/generated_step.h"
#include "backends/cpu/memory_plan.h"
#include "backends/cpu/native_steps.h"
#include "backends/cpu/onednn_ops.h"
#include "backends/reference/kernels.h"
#include "backends/reference/run_support.h"
#include "ir/error.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"

namespace weft::cpu {

using ir::OpKind;
using ir::TensorData;
using ir::ValueId;

namespace {

/// The passes of the CPU pipeline, in order; those not registered (yet) are skipped.
const char* const kCpuPipeline[] = {"decompose-composites", "canonicalize", "cse",           "dce",
                                    "fuse-epilogues",       "fuse-elementwise", "dce"};

std::string cpuPipeline() {
  std::string pipeline;
  for (const char* name : kCpuPipeline)
    if (passes::findPass(name)) pipeline += (pipeline.empty() ? "" : ",") + std::string(name);
  return pipeline;
}

/// memcpy that accepts empty tensors (whose buffers may be null).
void copyBytes(void* to, const void* from, size_t bytes) {
  if (bytes) std::memcpy(to, from, bytes);
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

/// How one node computes.
struct Step {
  ValueId value = 0;
  std::unique_ptr<OneDnnStep> onednn;            ///< set: oneDNN runs it
  const GeneratedKernel* generated = nullptr;   ///< set: an MLIR-generated kernel runs it
  NativeStep native = nullptr;                  ///< set: a hand-written step runs it
  reference::Kernel kernel = nullptr;           ///< otherwise: its reference kernel
};

struct Executable::Impl {
  ir::Graph graph;                                  ///< the compiled graph (after the CPU pipeline)
  CompileOptions options;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};  ///< the CPU engine of every primitive
  MemoryPlan plan;
  std::vector<Step> steps;                          ///< in node order
  std::vector<const void*> constants;               ///< per value: a constant's bytes, else null
  std::shared_ptr<KernelCompiler> compiler;         ///< owns the generated code of `steps`
  AlignedBuffer arena;                              ///< activations
  AlignedBuffer state;                              ///< parameters, at their planned offsets
  CompileStats stats;
  std::vector<const void*> operandPtrs;  ///< scratch of runStep (one run at a time)
  std::vector<double> stepSeconds;  ///< per step, summed over runs, when WEFT_PROFILE is set
  int profiledRuns = 0;

  ~Impl() { printProfile(); }
  /// Prints the slowest steps to stderr (WEFT_PROFILE=1 runs only).
  void printProfile() const;
  /// Runs one step (its operands and result at `bound` or their planned storage).
  void runStep(const Step& step, const std::vector<const void*>& bound, const reference::TensorMap& feeds,
               const reference::RunOptions& runOptions, dnnl::stream& stream);
  /// Runs every step with `bound[v]` (inputs and fed parameters) read instead of planned storage.
  void execute(const std::vector<const void*>& bound, const reference::TensorMap& feeds,
               const reference::RunOptions& options);
  /// The bytes of value `v` during a run.
  void* address(ValueId v, const std::vector<const void*>& bound);
  /// Checks and binds the feeds: graph inputs (all required) and, if `allowParams`, parameters.
  std::vector<TensorData> bindFeeds(const reference::TensorMap& feeds, bool allowParams, std::vector<const void*>& bound);
  /// The outputs by name, copied out of the arena.
  reference::TensorMap collectOutputs(const std::vector<const void*>& bound);
};

void* Executable::Impl::address(ValueId v, const std::vector<const void*>& bound) {
  const Placement& p = plan.values[static_cast<size_t>(v)];
  ValueId owner = p.storage == Storage::View ? p.viewOf : v;
  if (const void* b = bound[static_cast<size_t>(owner)]) return const_cast<void*>(b);
  const Placement& o = plan.values[static_cast<size_t>(owner)];
  switch (o.storage) {
    case Storage::Arena: return arena.data() + o.offset;
    case Storage::Persistent: return state.data() + o.offset;
    case Storage::Constant: return const_cast<void*>(constants[static_cast<size_t>(owner)]);
    default: throw std::logic_error("value %" + std::to_string(owner) + " has no storage");
  }
}

std::vector<TensorData> Executable::Impl::bindFeeds(const reference::TensorMap& feeds, bool allowParams,
                                                     std::vector<const void*>& bound) {
  reference::checkFeedNames(graph, feeds);
  bound.assign(static_cast<size_t>(graph.size()), nullptr);
  std::vector<TensorData> checked;
  checked.reserve(feeds.size());
  reference::RunOptions none;
  for (ValueId v = 0; v < graph.size(); ++v) {
    const ir::Node& node = graph.node(v);
    bool isParam = node.op == OpKind::Param;
    if (node.op != OpKind::Input && !isParam) continue;
    if (isParam && !feeds.count(node.name)) continue;
    if (isParam && !allowParams)
      throw Error("param " + ir::valueRef(graph, v) + ": parameters come from the executable's state, not the inputs");
    // The reference source kernels check the feed (missing, dtype, shape) with their messages.
    reference::KernelContext ctx{graph, v, {}, feeds, none};
    checked.push_back(reference::kernelFor(node.op)(ctx));
  }
  size_t next = 0;
  for (ValueId v = 0; v < graph.size(); ++v) {
    const ir::Node& node = graph.node(v);
    if (node.op == OpKind::Input || (node.op == OpKind::Param && feeds.count(node.name)))
      bound[static_cast<size_t>(v)] = checked[next++].bytes.data();
  }
  return checked;
}

void Executable::Impl::execute(const std::vector<const void*>& bound, const reference::TensorMap& feeds,
                               const reference::RunOptions& runOptions) {
  omp_set_num_threads(options.threads);  // oneDNN's primitives read OpenMP's thread count
  dnnl::stream stream(engine);
  if (stepSeconds.empty()) {
    for (const Step& step : steps) runStep(step, bound, feeds, runOptions, stream);
    return;
  }
  ++profiledRuns;
  for (size_t index = 0; index < steps.size(); ++index) {
    auto start = std::chrono::steady_clock::now();
    runStep(steps[index], bound, feeds, runOptions, stream);
    stepSeconds[index] += secondsSince(start);
  }
}

void Executable::Impl::runStep(const Step& step, const std::vector<const void*>& bound,
                               const reference::TensorMap& feeds, const reference::RunOptions& runOptions,
                               dnnl::stream& stream) {
  const ir::Node& node = graph.node(step.value);
  operandPtrs.clear();
  for (ValueId o : node.operands) operandPtrs.push_back(address(o, bound));
  void* result = address(step.value, bound);
  if (step.onednn) return step.onednn->run(operandPtrs, result, stream);
  if (step.generated) return runGenerated(*step.generated, result, operandPtrs, options.threads, node.type.numel());
  if (step.native) return step.native(graph, step.value, operandPtrs, result);
  // The fallback: a reference kernel on copies of the operands.
  std::vector<TensorData> operandCopies;
  operandCopies.reserve(node.operands.size());
  for (size_t i = 0; i < node.operands.size(); ++i) {
    TensorData t(graph.type(node.operands[i]));
    copyBytes(t.bytes.data(), operandPtrs[i], t.bytes.size());
    operandCopies.push_back(std::move(t));
  }
  reference::KernelContext ctx{graph, step.value, {}, feeds, runOptions};
  for (const TensorData& t : operandCopies) ctx.operands.push_back(&t);
  TensorData out = reference::runKernel(step.kernel, ctx);
  copyBytes(result, out.bytes.data(), out.bytes.size());
}

reference::TensorMap Executable::Impl::collectOutputs(const std::vector<const void*>& bound) {
  reference::TensorMap outputs;
  for (const auto& out : graph.outputs()) {
    TensorData t(graph.type(out.value));
    copyBytes(t.bytes.data(), address(out.value, bound), t.bytes.size());
    outputs[out.name] = std::move(t);
  }
  return outputs;
}

void Executable::Impl::printProfile() const {
  if (stepSeconds.empty() || profiledRuns == 0) return;
  std::vector<size_t> order(steps.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return stepSeconds[a] > stepSeconds[b]; });
  double total = 0;
  for (double t : stepSeconds) total += t;
  double byKind[3] = {0, 0, 0};  // oneDNN, generated, reference
  for (size_t i = 0; i < steps.size(); ++i)
    byKind[steps[i].onednn ? 0 : steps[i].generated || steps[i].native ? 1 : 2] += stepSeconds[i];
  std::fprintf(stderr,
               "WEFT_PROFILE @%s: %d runs, %.3f ms per run in %zu steps (oneDNN %.3f, generated and native %.3f, reference %.3f); "
               "slowest:\n",
               graph.name().c_str(), profiledRuns, total * 1e3 / profiledRuns, steps.size(),
               byKind[0] * 1e3 / profiledRuns, byKind[1] * 1e3 / profiledRuns, byKind[2] * 1e3 / profiledRuns);
  for (size_t k = 0; k < std::min<size_t>(order.size(), 12); ++k) {
    const Step& st = steps[order[k]];
    const ir::Node& n = graph.node(st.value);
    std::string how = st.onednn      ? "onednn " + st.onednn->describe()
                      : st.generated ? "generated " + st.generated->name
                      : st.native    ? "native"
                                     : "reference";
    std::fprintf(stderr, "  %8.3f ms  %5.1f%%  %s %s %s : %s\n", stepSeconds[order[k]] * 1e3 / profiledRuns,
                 100.0 * stepSeconds[order[k]] / total, std::string(ir::opName(n.op)).c_str(),
                 ir::valueRef(graph, st.value).c_str(), how.c_str(), n.type.str().c_str());
  }
}

Executable compile(const ir::Graph& input, const CompileOptions& options) {
  ir::verify(input);
  auto impl = std::make_shared<Executable::Impl>();
  impl->options = options;
  if (impl->options.threads <= 0) {
    const char* env = std::getenv("WEFT_THREADS");
    int fromEnv = env ? std::atoi(env) : 0;
    impl->options.threads = fromEnv > 0 ? fromEnv : 2;
  }
  impl->graph = input;
  auto start = std::chrono::steady_clock::now();
  if (options.optimize) passes::PassManager(cpuPipeline()).run(impl->graph);
  impl->stats.stageSeconds.emplace_back("optimize", secondsSince(start));
  const ir::Graph& g = impl->graph;

  start = std::chrono::steady_clock::now();
  impl->plan = planMemory(g);
  // Every arena byte is written before it is read, and setState() below writes every parameter.
  impl->arena = AlignedBuffer(impl->plan.arenaBytes, /*zeroed=*/false);
  impl->state = AlignedBuffer(impl->plan.persistentBytes, /*zeroed=*/false);
  impl->constants.assign(static_cast<size_t>(g.size()), nullptr);
  for (ValueId v = 0; v < g.size(); ++v)
    if (g.node(v).op == OpKind::Constant)
      impl->constants[static_cast<size_t>(v)] = ir::AttrReader(g.node(v).attrs, OpKind::Constant).tensor("value")->bytes.data();
  impl->stats.stageSeconds.emplace_back("plan", secondsSince(start));

  start = std::chrono::steady_clock::now();
  std::vector<ValueId> generatedValues;  // fused loop/reduce nodes the kernel compiler takes
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& node = g.node(v);
    if (node.op == OpKind::Input || node.op == OpKind::Param || node.op == OpKind::Constant ||
        node.op == OpKind::Reshape)
      continue;  // bound, persistent, constant data or a view: nothing runs
    Step step;
    step.value = v;
    step.onednn = compileOneDnnNode(g, v, impl->engine);
    if (step.onednn) {
      ++impl->stats.onednnPrimitives;
    } else if (options.generateKernels && node.op == OpKind::Fused && node.body &&
               !KernelCompiler::unsupported(*node.body)) {
      generatedValues.push_back(v);
      ++impl->stats.generatedKernels;
    } else if ((step.native = nativeStepFor(g, v))) {
      ++impl->stats.nativeSteps;
    } else {
      if (!reference::hasKernel(node.op))
        throw Error("the CPU backend cannot run " + std::string(ir::opName(node.op)) + " " + ir::valueRef(g, v));
      step.kernel = reference::kernelFor(node.op);
      ++impl->stats.referenceKernels;
    }
    impl->steps.push_back(std::move(step));
  }
  impl->stats.stageSeconds.emplace_back("onednn", secondsSince(start));

  start = std::chrono::steady_clock::now();
  if (!generatedValues.empty()) {
    std::vector<const ir::Graph*> bodies;
    for (ValueId v : generatedValues) bodies.push_back(g.node(v).body.get());
    std::vector<const GeneratedKernel*> kernels;
    if (options.dumpMlirDir.empty() && options.dumpAsmDir.empty()) {
      impl->compiler = sharedKernelCompiler();
      kernels = compileShared(bodies);
    } else {
      impl->compiler = std::make_shared<KernelCompiler>(KernelCompiler::Options{options.dumpMlirDir, options.dumpAsmDir});
      kernels = impl->compiler->compile(bodies);
    }
    size_t next = 0;
    for (Step& step : impl->steps)
      if (next < generatedValues.size() && step.value == generatedValues[next]) step.generated = kernels[next++];
  }
  impl->stats.stageSeconds.emplace_back("codegen", secondsSince(start));
  impl->stats.kernels = static_cast<int>(impl->steps.size());
  if (const char* p = std::getenv("WEFT_PROFILE"); p && *p && std::string(p) != "0")
    impl->stepSeconds.assign(impl->steps.size(), 0.0);
  impl->stats.arenaBytes = impl->plan.arenaBytes;
  impl->stats.persistentBytes = impl->plan.persistentBytes;
  int64_t io = 0;
  for (ValueId v : g.inputs()) io += static_cast<int64_t>(g.type(v).byteSize());
  for (const auto& out : g.outputs()) io += static_cast<int64_t>(g.type(out.value).byteSize());
  impl->stats.peakBytes = impl->stats.arenaBytes + impl->stats.persistentBytes + io;

  Executable exe(impl);
  exe.setState(reference::initialState(g));
  return exe;
}

reference::TensorMap Executable::run(const reference::TensorMap& feeds, const reference::RunOptions& options) {
  std::vector<const void*> bound;
  std::vector<TensorData> keep = impl_->bindFeeds(feeds, /*allowParams=*/true, bound);
  impl_->execute(bound, feeds, options);
  return impl_->collectOutputs(bound);
}

reference::TensorMap Executable::step(const reference::TensorMap& inputs, const reference::RunOptions& options) {
  std::vector<const void*> bound;
  std::vector<TensorData> keep = impl_->bindFeeds(inputs, /*allowParams=*/false, bound);
  impl_->execute(bound, inputs, options);
  reference::TensorMap outputs = impl_->collectOutputs(bound);
  // Update values live to the end of the run, so parameters can be overwritten now. A value
  // in the arena is copied straight in; one that is itself a parameter (or a view or fed
  // value) goes through a copy first, since an earlier write-back may overwrite it.
  const ir::Graph& g = impl_->graph;
  std::vector<std::pair<size_t, TensorData>> staged;
  for (size_t i = 0; i < g.updates().size(); ++i) {
    const auto& u = g.updates()[i];
    if (impl_->plan.values[static_cast<size_t>(u.value)].storage == Storage::Arena) continue;
    TensorData t(g.type(u.value));
    copyBytes(t.bytes.data(), impl_->address(u.value, bound), t.bytes.size());
    staged.emplace_back(i, std::move(t));
  }
  for (const auto& u : g.updates())
    if (impl_->plan.values[static_cast<size_t>(u.value)].storage == Storage::Arena)
      copyBytes(impl_->address(u.param, bound), impl_->address(u.value, bound), g.type(u.value).byteSize());
  for (const auto& [i, t] : staged)
    copyBytes(impl_->address(g.updates()[i].param, bound), t.bytes.data(), t.bytes.size());
  return outputs;
}

reference::TensorMap Executable::state() const {
  reference::TensorMap out;
  const ir::Graph& g = impl_->graph;
  for (ValueId p : g.params()) {
    TensorData t(g.type(p));
    copyBytes(t.bytes.data(), impl_->state.data() + impl_->plan.values[static_cast<size_t>(p)].offset,
                t.bytes.size());
    out[g.node(p).name] = std::move(t);
  }
  return out;
}

void Executable::setState(const reference::TensorMap& state) {
  const ir::Graph& g = impl_->graph;
  for (const auto& [name, t] : state) {
    auto v = g.find(name);
    if (!v || g.node(*v).op != OpKind::Param)
      throw Error("setState: '" + name + "' is not a parameter of graph @" + g.name());
    if (t.type != g.type(*v) || t.bytes.size() != t.type.byteSize())
      throw Error("setState: '" + name + "' has type " + t.type.str() + ", the parameter is " + g.type(*v).str());
  }
  for (const auto& [name, t] : state)
    copyBytes(impl_->state.data() + impl_->plan.values[static_cast<size_t>(*g.find(name))].offset,
                t.bytes.data(), t.bytes.size());
}

const CompileStats& Executable::stats() const { return impl_->stats; }

int Executable::oneDnnNodeCount() const { return impl_->stats.onednnPrimitives; }

const ir::Graph& Executable::graph() const { return impl_->graph; }

reference::TensorMap runStep(Executable& exe, const reference::TensorMap& inputs, reference::TensorMap& state,
                             const reference::RunOptions& options) {
  exe.setState(state);
  reference::TensorMap out = exe.step(inputs, options);
  state = exe.state();
  return out;
}

}  // namespace weft::cpu
