// Compiles a graph for the CPU: the CPU pipeline, a memory plan, one step per node that
// computes (a oneDNN primitive, a generated kernel or a reference kernel); and runs it.
#include "backends/cpu/executable.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/shared_compiler.h"
#include "backends/reference/kernels.h"
#include "backends/reference/run_support.h"
#include "ir/error.h"
#include "ir/verifier.h"
#include "passes/builtin_passes.h"
#include "passes/pass_manager.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/denormals.h"
#include "runtime/cpu/generated_steps.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/memory_plan.h"
#include "runtime/cpu/program.h"

namespace weft::cpu {

using ir::OpKind;
using ir::TensorData;
using ir::ValueId;

namespace {

/// The passes of the CPU pipeline, in order; those not registered (yet) are skipped.
const char* const kCpuPipeline[] = {
    "strip-stop-gradient", "decompose-composites", "canonicalize", "fold-conv-affine", "cse", "dce",
    "affine-grads-from-weight-grads", "channels-last", "canonicalize", "cse", "dce", "pool-gradient-masks", "dce",
    "pointwise-convs-to-matmuls", "masked-contractions", "cse", "split-long-contractions", "triangular-matmuls",
    "fuse-epilogues", "fold-matmul-transposes", "fuse-elementwise", "fuse-rows", "fuse-attention",
    "precompute-derivatives", "dce"};

/// The CPU pipeline as a pass list; without fuse-attention unless `forThisCpu`, and for this
/// CPU without AVX-512 (oneDNN's 8-channel kernels, channelBlocksFit false) with
/// fuse-epilogues-leaving-gelu: oneDNN's gelu_erf post-op is slow there.
std::string cpuPipeline(bool forThisCpu) {
  static const bool registered = (registerCpuPasses(), true);
  (void)registered;
  std::string pipeline;
  for (const char* name : kCpuPipeline) {
    if (!passes::findPass(name) || (!forThisCpu && std::string(name) == "fuse-attention")) continue;
    const bool leavesGelu = forThisCpu && !channelBlocksFit() && std::string(name) == "fuse-epilogues";
    pipeline += (pipeline.empty() ? "" : ",") + std::string(leavesGelu ? "fuse-epilogues-leaving-gelu" : name);
  }
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

struct Executable::Impl {
  CompileOptions options;
  std::shared_ptr<KernelCompiler> compiler;  ///< owns the generated code the program calls
  std::vector<KernelEntry> kernels;          ///< the program's generated kernels (reserved: never moves)
  std::unique_ptr<Program> program;
  CompileStats stats;

  /// Checks and binds the feeds, read in place: graph inputs (all required) and, if
  /// `allowParams`, parameters.
  void bindFeeds(const reference::TensorMap& feeds, bool allowParams, std::vector<const void*>& bound);
  /// The outputs by name, copied out of the arena.
  reference::TensorMap collectOutputs(const std::vector<const void*>& bound);
};

void Executable::Impl::bindFeeds(const reference::TensorMap& feeds, bool allowParams, std::vector<const void*>& bound) {
  const ir::Graph& graph = program->graph();
  reference::checkFeedNames(graph, feeds);
  bound.assign(static_cast<size_t>(graph.size()), nullptr);
  reference::RunOptions none;
  for (ValueId v = 0; v < graph.size(); ++v) {
    const ir::Node& node = graph.node(v);
    bool isParam = node.op == OpKind::Param;
    if (node.op != OpKind::Input && !isParam) continue;
    auto feed = feeds.find(node.name);
    if (isParam && feed == feeds.end()) continue;
    if (isParam && !allowParams)
      throw Error("param " + ir::valueRef(graph, v) + ": parameters come from the executable's state, not the inputs");
    // A feed of the declared type is read where it is (steps never write their inputs);
    // the reference source kernels refuse any other with their messages (missing, dtype, shape).
    if (feed == feeds.end() || feed->second.type != node.type || feed->second.bytes.size() != node.type.byteSize()) {
      reference::KernelContext ctx{graph, v, {}, feeds, none};
      reference::kernelFor(node.op)(ctx);
      throw Error("internal: the feed of " + ir::valueRef(graph, v) + " was neither bound nor refused");
    }
    bound[static_cast<size_t>(v)] = feed->second.bytes.data();
  }
}

reference::TensorMap Executable::Impl::collectOutputs(const std::vector<const void*>& bound) {
  const ir::Graph& graph = program->graph();
  reference::TensorMap outputs;
  for (const auto& out : graph.outputs()) {
    TensorData t;  // filled from the arena directly (TensorData(type) would zero it first)
    t.type = graph.type(out.value);
    const auto* data = static_cast<const uint8_t*>(program->address(out.value, bound));
    t.bytes.assign(data, data + t.type.byteSize());
    outputs[out.name] = std::move(t);
  }
  return outputs;
}

namespace {

/// The reference kernel of node `v` as a host step: it runs on copies of the operands.
HostStep referenceStep(const ir::Graph& g, ValueId v) {
  const ir::Node& node = g.node(v);
  if (!reference::hasKernel(node.op)) return {};
  reference::Kernel kernel = reference::kernelFor(node.op);
  return [&g, v, kernel](const std::vector<const void*>& operands, void* result, uint64_t step) {
    const ir::Node& n = g.node(v);
    std::vector<TensorData> operandCopies;
    operandCopies.reserve(n.operands.size());
    for (size_t i = 0; i < n.operands.size(); ++i) {
      TensorData t(g.type(n.operands[i]));
      copyBytes(t.bytes.data(), operands[i], t.bytes.size());
      operandCopies.push_back(std::move(t));
    }
    reference::TensorMap noFeeds;
    reference::RunOptions runOptions;
    runOptions.step = step;
    reference::KernelContext ctx{g, v, {}, noFeeds, runOptions};
    for (const TensorData& t : operandCopies) ctx.operands.push_back(&t);
    TensorData out = reference::runKernel(kernel, ctx);
    copyBytes(result, out.bytes.data(), out.bytes.size());
  };
}

/// "op %v : type", and why no generated kernel or oneDNN primitive runs node `v`.
std::string fallbackReason(const ir::Graph& g, ValueId v) {
  const ir::Node& node = g.node(v);
  std::string what = std::string(ir::opName(node.op)) + " " + ir::valueRef(g, v) + " : " + node.type.str();
  if (runsGeneratedKernel(node))
    if (auto why = KernelCompiler::unsupported(*node.body)) return what + " (" + *why + ")";
  if (node.op == OpKind::Fused) return what + " (oneDNN has no fast primitive for this contraction and epilogue)";
  return what + " (no oneDNN primitive, generated kernel or native step)";
}

}  // namespace

namespace {

/// Throws weft::Error naming the first input or parameter of `g` without elements (a
/// dimension of size 0), or the first node that computes elements from an operand without any
/// (a sum over an empty axis): the CPU backend's steps assume such data has bytes. A node whose
/// result is empty too (a slice to nothing) computes nothing and is fine.
void requireElements(const ir::Graph& g) {
  auto refuse = [&](ValueId v, const std::string& why) {
    const ir::Node& n = g.node(v);
    throw Error("the CPU backend does not compile " + std::string(ir::opName(n.op)) + " " + ir::valueRef(g, v) + " : " +
                g.type(v).str() + (n.loc.empty() ? "" : " at " + n.loc) + ": " + why +
                " (the reference backend runs it: --backend=reference)");
  };
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if ((n.op == OpKind::Input || n.op == OpKind::Param) && g.type(v).numel() == 0) refuse(v, "it has no elements");
    if (g.type(v).numel() == 0) continue;
    for (ValueId o : n.operands)
      if (g.type(o).numel() == 0) refuse(v, "it reads " + ir::valueRef(g, o) + " : " + g.type(o).str() + ", which has no elements");
  }
}

}  // namespace

ir::Graph optimizeForCpu(const ir::Graph& g, bool forThisCpu) {
  ir::verify(g);
  requireElements(g);
  ir::Graph optimized = g;
  passes::PassManager(cpuPipeline(forThisCpu)).run(optimized);
  // Last, the node order: orders compared with each convolution's conversion copies, which
  // the memory plan reserves for its step.
  passes::scheduleForMemory(optimized, conversionBound);
  return optimized;
}

Executable compile(const ir::Graph& input, const CompileOptions& options) {
  checkCpuIsaEnvironment();
  auto impl = std::make_shared<Executable::Impl>();
  impl->options = options;
  impl->options.threads = options.threads > 0 ? checkedThreads(options.threads, "CompileOptions::threads") : defaultThreads();
  auto start = std::chrono::steady_clock::now();
  if (!options.optimize) {  // optimizeForCpu checks its input so
    ir::verify(input);
    requireElements(input);
  }
  ir::Graph g = options.optimize ? optimizeForCpu(input) : input;
  impl->stats.stageSeconds.emplace_back("optimize", secondsSince(start));
  if (options.tuneMatmuls && tuneMatmulsFromEnvironment()) {
    start = std::chrono::steady_clock::now();
    impl->stats.matmuls = tuneMatmuls(g, impl->options.threads, sharedMatmulChoices(), /*holdConstants=*/true);
    impl->stats.stageSeconds.emplace_back("tune", secondsSince(start));
  }

  // Generated kernels first (one batch, one LLVM module); the program then takes them.
  start = std::chrono::steady_clock::now();
  std::vector<ValueId> generatedValues;
  std::vector<const ir::Graph*> bodies;
  // Data stored channel-blocked only between steps that take it so: convolutions and the
  // kernels generated here (none when kernels are not generated, or for a body that cannot be).
  std::vector<bool> blocked;
  std::vector<GeneratedStep> generated;
  if (options.generateKernels) {
    const MemoryPlan plan = planMemory(g);
    blocked = blockedValues(g, plan, [&g](ValueId v) { return !KernelCompiler::unsupported(*g.node(v).body); });
    generated = generatedSteps(g, plan, blocked);
  }
  for (const GeneratedStep& step : generated)
    if (!KernelCompiler::unsupported(*step.body)) {
      generatedValues.push_back(step.value);
      bodies.push_back(step.body.get());
    }
  std::vector<const GeneratedKernel*> compiled;
  if (!bodies.empty()) {
    if (options.dumpMlirDir.empty() && options.dumpAsmDir.empty()) {
      impl->compiler = sharedKernelCompiler();
      compiled = compileShared(bodies);
    } else {
      impl->compiler = std::make_shared<KernelCompiler>(KernelCompiler::Options{options.dumpMlirDir, options.dumpAsmDir});
      compiled = impl->compiler->compile(bodies);
    }
  }
  impl->kernels.reserve(compiled.size());
  std::vector<const KernelEntry*> kernelOf(static_cast<size_t>(g.size()), nullptr);
  for (size_t i = 0; i < compiled.size(); ++i) {
    const GeneratedKernel& k = *compiled[i];
    impl->kernels.push_back(entryOf(k));
    impl->stats.partialSumKernels += k.partialSums;
    kernelOf[static_cast<size_t>(generatedValues[i])] = &impl->kernels.back();
  }
  impl->stats.stageSeconds.emplace_back("codegen", secondsSince(start));

  ProgramOptions programOptions;
  programOptions.threads = impl->options.threads;
  programOptions.flushDenormals = options.flushDenormals.value_or(defaultFlushDenormals());
  programOptions.kernelFor = [&](ValueId v) { return kernelOf[static_cast<size_t>(v)]; };
  programOptions.blocked = std::move(blocked);
  programOptions.holdConstantCopies = true;  // setState and feeds are the only ways parameters change
  programOptions.hostStepFor = [&stats = impl->stats](const ir::Graph& graph, ValueId v) {
    HostStep step = referenceStep(graph, v);
    if (step) stats.referenceSteps.push_back(fallbackReason(graph, v));
    return step;
  };
  impl->program = std::make_unique<Program>(std::move(g), std::move(programOptions));
  for (const auto& stage : impl->program->buildSeconds()) impl->stats.stageSeconds.push_back(stage);

  const Program& program = *impl->program;
  const StepCounts& counts = program.counts();
  impl->stats.onednnPrimitives = counts.onednn;
  impl->stats.generatedKernels = counts.generated;
  impl->stats.nativeSteps = counts.native;
  impl->stats.laidOutValues = counts.laidOutValues;
  impl->stats.winogradSteps = counts.winograd;
  impl->stats.nativeWinogradSteps = counts.nativeWinograd;
  impl->stats.heldResults = counts.heldResults;
  impl->stats.convertedBytes = counts.convertedBytes;
  impl->stats.mergedUpdates = counts.mergedUpdates;
  impl->stats.mergedSiblings = counts.mergedSiblings;
  impl->stats.sideSums = counts.sideSums;
  impl->stats.triangularMatmuls = counts.triangularMatmuls;
  impl->stats.diagonalRows = counts.diagonalRows;
  impl->stats.attention = counts.attention;
  impl->stats.attentionGrads = counts.attentionGrads;
  impl->stats.blockedValues = counts.blockedValues;
  impl->stats.referenceKernels = counts.host;
  impl->stats.onednnReferenceSteps = counts.onednnReferenceSteps;
  impl->stats.kernels = counts.total();
  impl->stats.arenaBytes = program.plan().arenaBytes;
  impl->stats.persistentBytes = program.plan().persistentBytes;
  impl->stats.scratchBytes = program.scratchBytes();
  impl->stats.heldBytes = program.heldBytes();
  int64_t io = 0;
  for (ValueId v : program.graph().inputs()) io += static_cast<int64_t>(program.graph().type(v).byteSize());
  for (const auto& out : program.graph().outputs()) io += static_cast<int64_t>(program.graph().type(out.value).byteSize());
  impl->stats.peakBytes = impl->stats.arenaBytes + impl->stats.persistentBytes + impl->stats.scratchBytes +
                          impl->stats.heldBytes + io;

  Executable exe(impl);
  exe.setState(reference::initialState(program.graph()));
  return exe;
}

reference::TensorMap Executable::run(const reference::TensorMap& feeds, const reference::RunOptions& options) {
  std::vector<const void*> bound;
  impl_->bindFeeds(feeds, /*allowParams=*/true, bound);
  impl_->program->execute(bound, options.step, /*keepState=*/true);
  return impl_->collectOutputs(bound);
}

reference::TensorMap Executable::step(const reference::TensorMap& inputs, const reference::RunOptions& options) {
  std::vector<const void*> bound;
  impl_->bindFeeds(inputs, /*allowParams=*/false, bound);
  impl_->program->execute(bound, options.step, /*keepState=*/false);
  reference::TensorMap outputs = impl_->collectOutputs(bound);
  impl_->program->applyUpdates(bound);
  return outputs;
}

reference::TensorMap Executable::state() const {
  reference::TensorMap out;
  const Program& program = *impl_->program;
  const ir::Graph& g = program.graph();
  for (ValueId p : g.params()) {
    TensorData t(g.type(p));
    copyBytes(t.bytes.data(), program.paramData(p), t.bytes.size());
    out[g.node(p).name] = std::move(t);
  }
  return out;
}

void Executable::setState(const reference::TensorMap& state) {
  Program& program = *impl_->program;
  const ir::Graph& g = program.graph();
  for (const auto& [name, t] : state) {
    auto v = g.find(name);
    if (!v || g.node(*v).op != OpKind::Param)
      throw Error("setState: '" + name + "' is not a parameter of graph @" + g.name());
    if (t.type != g.type(*v) || t.bytes.size() != t.type.byteSize())
      throw Error("setState: '" + name + "' has type " + t.type.str() + ", the parameter is " + g.type(*v).str());
  }
  for (const auto& [name, t] : state) copyBytes(program.paramData(*g.find(name)), t.bytes.data(), t.bytes.size());
  program.forgetHeldCopies();
}

const CompileStats& Executable::stats() const { return impl_->stats; }

int Executable::oneDnnNodeCount() const { return impl_->stats.onednnPrimitives; }

const ir::Graph& Executable::graph() const { return impl_->program->graph(); }

reference::TensorMap runStep(Executable& exe, const reference::TensorMap& inputs, reference::TensorMap& state,
                             const reference::RunOptions& options) {
  exe.setState(state);
  reference::TensorMap out = exe.step(inputs, options);
  state = exe.state();
  return out;
}

}  // namespace weft::cpu
