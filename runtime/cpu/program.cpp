// Builds the steps of a compiled graph over its memory plan, and runs them.
#include "runtime/cpu/program.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>

#include "ir/attrs.h"
#include "ir/error.h"
#include "ir/ops.h"
#include "ir/triangle_facts.h"
#include "ir/verifier.h"
#include "runtime/cpu/denormals.h"
#include "runtime/cpu/environment.h"
#include "runtime/cpu/generated_steps.h"
#include "runtime/cpu/native_conv_pool.h"
#include "runtime/cpu/native_pool_weight_grad.h"
#include "runtime/cpu/native_steps.h"
#include "runtime/cpu/native_attention.h"
#include "runtime/cpu/native_triangular_matmul.h"
#include "runtime/cpu/native_transpose.h"
#include "runtime/cpu/native_winograd.h"
#include "runtime/cpu/onednn_ops.h"

namespace weft::cpu {

using ir::OpKind;
using ir::ValueId;

namespace {

/// memcpy that accepts empty tensors (whose buffers may be null).
void copyBytes(void* to, const void* from, size_t bytes) {
  if (bytes) std::memcpy(to, from, bytes);
}

/// True when oneDNN step `step` runs a Winograd convolution.
bool runsWinograd(const OneDnnStep& step) { return step.describe().find("[jit_wino") != std::string::npos; }

/// Row-major layouts for the step of `v` whose conversionFits says whether run-time buffers
/// fit in `plan`'s arena: in the region reserved for the step or in a gap at its step.
StepLayouts roomyLayouts(const MemoryPlan& plan, ValueId v) {
  StepLayouts layouts;
  layouts.conversionFits = [&plan, v](size_t bytes) {
    auto need = static_cast<int64_t>(bytes);
    return need <= plan.values[static_cast<size_t>(v)].scratchBytes || freeArenaOffset(plan, v, need) >= 0;
  };
  return layouts;
}

/// The oneDNN layout of channels-last data [N, H, W, C] stored channel-blocked (nChw16c).
dnnl::memory::desc blockedDesc(const ir::Shape& shape) {
  return dnnl::memory::desc({shape[0], shape[3], shape[1], shape[2]}, dnnl::memory::data_type::f32,
                            dnnl::memory::format_tag::nChw16c);
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The largest value of `g` that `plan` stores in `storage`, as "%ref : type", for messages.
std::string largestValue(const ir::Graph& g, const MemoryPlan& plan, Storage storage) {
  ValueId largest = -1;
  for (ValueId v = 0; v < g.size(); ++v)
    if (plan.values[static_cast<size_t>(v)].storage == storage &&
        (largest < 0 || g.type(v).byteSize() > g.type(largest).byteSize()))
      largest = v;
  return largest < 0 ? std::string("none") : ir::valueRef(g, largest) + " : " + g.type(largest).str();
}

/// `own` allocated for `bytes`, or the caller's `memory` after checking it. `largest` names
/// the largest value in the block, for the message when the allocation fails.
uint8_t* chooseMemory(uint8_t* memory, int64_t capacity, int64_t bytes, AlignedBuffer& own, const char* what,
                      const std::function<std::string()>& largest) {
  if (!memory) {
    try {
      own = AlignedBuffer(bytes, /*zeroed=*/false);  // every byte is written before it is read
    } catch (const std::bad_alloc&) {
      throw Error("cannot allocate the " + std::string(what) + " memory of " + ir::gibibytes(static_cast<size_t>(bytes)) +
                  " (" + std::to_string(bytes) +
                  " bytes; its largest value " + largest() + ")");
    }
    return own.data();
  }
  if (capacity < bytes)
    throw Error(std::string(what) + " memory of " + std::to_string(capacity) + " bytes is too small: the plan needs " +
                std::to_string(bytes));
  if (reinterpret_cast<uintptr_t>(memory) % kArenaAlignment != 0)
    throw Error(std::string(what) + " memory is not " + std::to_string(kArenaAlignment) + "-byte aligned");
  return memory;
}

}  // namespace

int checkedThreads(long long threads, const std::string& what) {
  if (threads < 1 || threads > kMaxThreads)
    throw Error(what + ": " + std::to_string(threads) + " threads: expected 1 to " + std::to_string(kMaxThreads));
  return static_cast<int>(threads);
}

int defaultThreads() { return static_cast<int>(environmentInteger("WEFT_THREADS", 2, 1, kMaxThreads)); }

size_t profileSteps() {
  const long long n = environmentInteger("WEFT_PROFILE", 0, 0, 1000000);
  return n == 1 ? 12 : static_cast<size_t>(n);
}

bool runsGeneratedKernel(const ir::Node& node) {
  if (node.op != OpKind::Fused || !node.body) return false;
  std::string kind = ir::AttrReader(node.attrs, node.op).s("kind");
  return (kind == "loop" && !runsNativeTranspose(node)) || kind == "reduce" || kind == "rows";
}

/// How one node computes: exactly one of the executors is set.
struct Program::Step {
  ValueId value = 0;
  /// For a generated kernel: the values whose addresses follow the result pointer (its body's
  /// inputs, then the further outputs it writes; see generatedSteps). For a native step that
  /// reads other values than its node's operands (a max pool run with its convolution): those.
  std::vector<ValueId> kernelArgs;
  std::vector<SideSum> sideSums;  ///< for a generated kernel: the kernelArgs it writes as side sums
  std::unique_ptr<OneDnnStep> onednn;
  const KernelEntry* kernel = nullptr;
  NativeStep native = nullptr;
  bool heldResult = false;  ///< a generated kernel of constants only, run when heldResultsReady_ is false
  void* nativeScratch = nullptr;  ///< for a native step that needs scratch (nativeScratchBytes): where
  int64_t nativeScratchBytes = 0;  ///< and how much
  AlignedBuffer nativeHeld;        ///< for a native step with constant operands: nativeHeldBytes of its own
  HostStep host;
};

namespace {

/// Where value v is an operand: (reader, operand index) pairs.
std::vector<std::vector<std::pair<ValueId, size_t>>> readersOf(const ir::Graph& g) {
  std::vector<std::vector<std::pair<ValueId, size_t>>> readers(static_cast<size_t>(g.size()));
  for (ValueId v = 0; v < g.size(); ++v)
    for (size_t i = 0; i < g.node(v).operands.size(); ++i)
      readers[static_cast<size_t>(g.node(v).operands[i])].emplace_back(v, i);
  return readers;
}

}  // namespace

/// Layout propagation between oneDNN steps. A oneDNN step that computes its result in
/// another layout than row-major (a blocked one) and reorders it into the row-major buffer
/// passes it on in its own layout instead when: the value lives in the arena, is no output
/// or parameter update, has the same size in both layouts, and every reader is a oneDNN step
/// that reorders it into exactly that layout or reads any layout (pooling). The producer and
/// the readers are rebuilt with StepLayouts (both reorders vanish); when one of them cannot
/// be, the value stays row-major. Rounds repeat, since a rebuilt pooling step computes in its
/// source's layout and may pass that on in turn.
void Program::passComputedLayouts(const dnnl::engine& engine) {
  const ir::Graph& g = graph_;
  std::vector<int> stepOf(static_cast<size_t>(g.size()), -1);
  for (size_t s = 0; s < steps_.size(); ++s) stepOf[static_cast<size_t>(steps_[s].value)] = static_cast<int>(s);
  std::vector<bool> pinned(static_cast<size_t>(g.size()), false);  // read row-major by the caller
  for (const auto& out : g.outputs()) pinned[static_cast<size_t>(out.value)] = true;
  for (const auto& u : g.updates()) pinned[static_cast<size_t>(u.value)] = true;
  auto readers = readersOf(g);
  std::vector<std::optional<dnnl::memory::desc>> layout(static_cast<size_t>(g.size()));
  for (ValueId v = 0; v < g.size(); ++v)
    if (isBlocked(v)) layout[static_cast<size_t>(v)] = blockedDesc(g.type(v).shape);
  auto layoutsOf = [&](ValueId v) {
    StepLayouts layouts = roomyLayouts(plan_, v);
    layouts.constantOperands = constantOperands(v);
    layouts.result = layout[static_cast<size_t>(v)];
    for (ValueId o : g.node(v).operands) layouts.operands.push_back(layout[static_cast<size_t>(o)]);
    return layouts;
  };
  auto oneDnnStepOf = [&](ValueId v) -> OneDnnStep* {
    int s = stepOf[static_cast<size_t>(v)];
    return s < 0 ? nullptr : steps_[static_cast<size_t>(s)].onednn.get();
  };
  for (int round = 0; round < 4; ++round) {
    bool passedAny = false;
    for (const Step& step : steps_) {
      ValueId v = step.value;
      auto i = static_cast<size_t>(v);
      if (!step.onednn || layout[i] || pinned[i] || plan_.values[i].storage != Storage::Arena || readers[i].empty())
        continue;
      auto computed = step.onednn->resultLayout();
      if (!computed || computed->get_size() != g.type(v).byteSize()) continue;
      bool accepted = true;
      for (const auto& [reader, index] : readers[i]) {
        const OneDnnStep* r = oneDnnStepOf(reader);
        auto wanted = r ? r->operandLayout(index) : std::nullopt;
        accepted = accepted && r && ((wanted && *wanted == *computed) || r->readsAnyLayout(index));
      }
      if (!accepted) continue;
      layout[i] = computed;
      std::vector<ValueId> touched = {v};
      for (const auto& reader : readers[i]) touched.push_back(reader.first);
      std::vector<std::unique_ptr<OneDnnStep>> rebuilt;
      for (ValueId t : touched) {
        StepLayouts layouts = layoutsOf(t);
        auto built = compileOneDnnNode(g, t, engine, layouts);
        if (!built || !built->follows(layouts)) break;
        rebuilt.push_back(std::move(built));
      }
      if (rebuilt.size() != touched.size()) {
        layout[i].reset();
        continue;
      }
      for (size_t k = 0; k < touched.size(); ++k)
        steps_[static_cast<size_t>(stepOf[static_cast<size_t>(touched[k])])].onednn = std::move(rebuilt[k]);
      ++counts_.laidOutValues;
      passedAny = true;
    }
    if (!passedAny) break;
  }
}

std::vector<bool> Program::constantOperands(ValueId v) const {
  return holdConstants_ ? constantOperandsOf(graph_, v) : std::vector<bool>{};
}

StepLayouts Program::blockedLayouts(ValueId v) const {
  StepLayouts layouts = roomyLayouts(plan_, v);
  layouts.constantOperands = constantOperands(v);
  if (isBlocked(v)) layouts.result = blockedDesc(graph_.type(v).shape);
  for (ValueId o : graph_.node(v).operands)
    layouts.operands.push_back(isBlocked(o) ? std::optional(blockedDesc(graph_.type(o).shape)) : std::nullopt);
  return layouts;
}

bool Program::nativeTakesItsBlocked(ValueId v) const {
  const std::vector<ValueId>& ops = graph_.node(v).operands;
  for (size_t i = 0; i < ops.size(); ++i)
    if (isBlocked(ops[i]) && !nativeTakesBlocked(graph_, v, static_cast<int>(i))) return false;
  return !isBlocked(v) || nativeTakesBlocked(graph_, v, -1);
}

bool Program::touchesBlocked(ValueId v) const {
  const auto& ops = graph_.node(v).operands;
  return isBlocked(v) || std::any_of(ops.begin(), ops.end(), [&](ValueId o) { return isBlocked(o); });
}

Program::Program(ir::Graph graph, ProgramOptions options)
    : graph_(std::move(graph)),
      blocked_(std::move(options.blocked)),
      holdConstants_(options.holdConstantCopies),
      flushDenormals_(options.flushDenormals) {
  setThreads(options.threads);
  const ir::Graph& g = graph_;
  if (holdConstants_) params_ = g.params();
  auto start = std::chrono::steady_clock::now();
  plan_ = planMemory(g);
  arena_ = chooseMemory(options.arena, options.arenaCapacity, plan_.arenaBytes, ownArena_, "arena",
                        [&] { return largestValue(g, plan_, Storage::Arena); });
  state_ = chooseMemory(options.state, options.stateCapacity, plan_.persistentBytes, ownState_, "state",
                        [&] { return largestValue(g, plan_, Storage::Persistent); });
  constants_.assign(static_cast<size_t>(g.size()), nullptr);
  for (ValueId v = 0; v < g.size(); ++v)
    if (g.node(v).op == OpKind::Constant)
      constants_[static_cast<size_t>(v)] = ir::AttrReader(g.node(v).attrs, OpKind::Constant).tensor("value")->bytes.data();
  buildSeconds_.emplace_back("plan", secondsSince(start));

  start = std::chrono::steady_clock::now();
  auto engine = std::make_shared<dnnl::engine>(dnnl::engine::kind::cpu, 0);
  engine_ = engine;
  // Generated kernels, some computing several update values at once: those values' own
  // nodes run no step, when the kernel that writes them exists.
  std::vector<const GeneratedStep*> generatedOf(static_cast<size_t>(g.size()), nullptr);
  std::vector<bool> writtenByAnother(static_cast<size_t>(g.size()), false), isUpdateValue(writtenByAnother);
  for (const ir::StateUpdate& u : g.updates()) isUpdateValue[static_cast<size_t>(u.value)] = true;
  const std::vector<GeneratedStep> generated = generatedSteps(g, plan_, blocked_);
  for (const GeneratedStep& s : generated) {
    generatedOf[static_cast<size_t>(s.value)] = &s;
    if ((!s.extraOutputs.empty() || !s.sideSums.empty()) && options.kernelFor && options.kernelFor(s.value)) {
      for (ValueId a : s.extraOutputs) writtenByAnother[static_cast<size_t>(a)] = true;
      for (ValueId a : s.sideSums) writtenByAnother[static_cast<size_t>(a)] = true;
    }
  }
  // A convolution that a max pool's native step computes along (convPoolSource) runs no step
  // (the pool's step writes its value where others read it).
  // Nor does a pool gradient that a weight gradient's native step computes along (poolWeightGradSource).
  for (ValueId v = 0; v < g.size(); ++v) {
    if (ValueId conv = convPoolSource(g, v); conv >= 0) writtenByAnother[static_cast<size_t>(conv)] = true;
    if (ValueId poolGrad = poolWeightGradSource(g, v); poolGrad >= 0) writtenByAnother[static_cast<size_t>(poolGrad)] = true;
  }
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& node = g.node(v);
    if (node.op == OpKind::Input || node.op == OpKind::Param || node.op == OpKind::Constant ||
        node.op == OpKind::Reshape || writtenByAnother[static_cast<size_t>(v)])
      continue;  // bound, persistent, constant data, a view, or computed by another step: nothing runs
    Step step;
    step.value = v;
    const bool blockedData = touchesBlocked(v);
    if ((!blockedData || nativeTakesItsBlocked(v)) &&
        (step.native = nativeStepFor(g, v))) {  // before oneDNN: 2-D max_pool_grad runs faster natively
      ++counts_.native;
      if (step.native == &runTriangularMatmul) ++counts_.triangularMatmuls;
      if (step.native == &runCausalAttention) ++counts_.attention;
      if (step.native == &runCausalAttentionGrad) ++counts_.attentionGrads;
      if (step.native == &runWinogradConv || step.native == &runWinogradWeightGrad) ++counts_.nativeWinograd;
      if (ValueId conv = convPoolSource(g, v); conv >= 0) {
        step.kernelArgs = g.node(conv).operands;
        if (convPoolWritesConv(g, v) || convPoolWritesWinners(g, v))
          step.kernelArgs.push_back(conv);  // the step writes it (or its windows' winners) too
      }
      if (ValueId poolGrad = poolWeightGradSource(g, v); poolGrad >= 0) {
        step.kernelArgs = {node.operands[0]};  // x, then the pool gradient's operands
        for (ValueId o : g.node(poolGrad).operands) step.kernelArgs.push_back(o);
      }
    } else if (const StepLayouts layouts = blockedLayouts(v);
               (step.onednn = compileOneDnnNode(g, v, *engine, layouts))) {
      ++counts_.onednn;
      if (blockedData && !step.onednn->follows(layouts))
        throw Error("the oneDNN step of " + ir::valueRef(g, v) + " (" + step.onednn->describe() +
                    ") does not take its channel-blocked data as stored");
      if (std::string what = step.onednn->describe(); what.find("[ref:") != std::string::npos)
        counts_.onednnReferenceSteps.push_back(std::string(ir::opName(node.op)) + " " + ir::valueRef(g, v) + " " + what);
    } else if (runsGeneratedKernel(node) && options.kernelFor && (step.kernel = options.kernelFor(v))) {
      const GeneratedStep& source = *generatedOf[static_cast<size_t>(v)];
      step.kernelArgs = source.operands;
      step.kernelArgs.insert(step.kernelArgs.end(), source.extraOutputs.begin(), source.extraOutputs.end());
      for (ValueId a : source.sideSums) {
        step.sideSums.push_back({step.kernelArgs.size(), g.type(a).numel()});
        step.kernelArgs.push_back(a);
      }
      if (node.op == OpKind::Fused && node.body && ir::AttrReader(node.attrs, node.op).s("kind") == "rows" &&
          ir::rowsStopAtDiagonal(*node.body))
        ++counts_.diagonalRows;
      if (step.kernel->numInputs != static_cast<int>(step.kernelArgs.size()))
        throw Error("kernel " + step.kernel->name + " of " + ir::valueRef(g, v) + " takes " +
                    std::to_string(step.kernel->numInputs) + " inputs; its step has " +
                    std::to_string(source.operands.size()) + " operands and " +
                    std::to_string(source.extraOutputs.size() + source.sideSums.size()) + " further outputs");
      ++counts_.generated;
      for (ValueId a : source.extraOutputs) ++(isUpdateValue[static_cast<size_t>(a)] ? counts_.mergedUpdates : counts_.mergedSiblings);
      counts_.sideSums += static_cast<int>(source.sideSums.size());
    } else if (blockedData) {
      throw Error("no oneDNN step or generated kernel runs " + std::string(ir::opName(node.op)) + " " +
                  ir::valueRef(g, v) + ", which touches channel-blocked data");
    } else if (options.hostStepFor && (step.host = options.hostStepFor(g, v))) {
      ++counts_.host;
    } else {
      throw Error("the CPU runtime cannot run " + std::string(ir::opName(node.op)) + " " + ir::valueRef(g, v) + " : " +
                  node.type.str());
    }
    steps_.push_back(std::move(step));
  }
  counts_.blockedValues = static_cast<int>(std::count(blocked_.begin(), blocked_.end(), true));
  passComputedLayouts(*engine);
  if (holdConstants_) holdConstantResults();
  for (Step& step : steps_)
    if (step.native)
      if (const int64_t bytes = nativeHeldBytes(graph_, step.value, constantOperands(step.value)); bytes > 0)
        step.nativeHeld = AlignedBuffer(bytes, /*zeroed=*/false);
  for (const Step& step : steps_) {
    if (!step.onednn) continue;
    if (runsWinograd(*step.onednn)) ++counts_.winograd;
    counts_.convertedBytes += static_cast<int64_t>(step.onednn->convertedBytes());
  }
  shareScratch();
  buildSeconds_.emplace_back("steps", secondsSince(start));
  profileSteps_ = profileSteps();
  if (profileSteps_ > 0) stepSeconds_.assign(steps_.size(), 0.0);
}

Program::~Program() { printProfile(); }

void Program::shareScratch() {
  // A step's scratch goes into the arena region the plan reserved for it when it fits (see
  // conversionBound), else into a gap of the arena at its own step when one is large enough,
  // else into one buffer shared by the steps that found neither. A native step that runs in
  // less than it wants (nativeLeastScratchBytes, what the plan reserves) tries that next.
  auto use = [](Step& step, void* at) {  // as a oneDNN or a native step's run-time buffer
    if (step.onednn)
      step.onednn->useScratch(at);
    else
      step.nativeScratch = at;
  };
  auto placed = [&](Step& step, int64_t need) {  // in the reserved region or a gap at the step
    const Placement& reserved = plan_.values[static_cast<size_t>(step.value)];
    if (need <= reserved.scratchBytes) {
      use(step, arena_ + reserved.scratchOffset);
      return true;
    }
    const int64_t gap = freeArenaOffset(plan_, step.value, need);
    if (gap >= 0) use(step, arena_ + gap);
    return gap >= 0;
  };
  std::vector<Step*> unplaced;
  int64_t bytes = 0;
  for (Step& step : steps_) {
    if (step.native) step.nativeScratchBytes = nativeScratchBytes(graph_, step.value, threads_);
    const int64_t need = step.onednn ? static_cast<int64_t>(step.onednn->scratchBytes()) : step.nativeScratchBytes;
    if (need == 0 || placed(step, need)) continue;
    if (step.native) {
      const int64_t least = nativeLeastScratchBytes(graph_, step.value, threads_);
      if (least < need && placed(step, least)) {
        step.nativeScratchBytes = least;
        continue;
      }
    }
    unplaced.push_back(&step);
    bytes = std::max(bytes, need);
  }
  scratch_ = AlignedBuffer(bytes, /*zeroed=*/false);
  for (Step* step : unplaced) use(*step, scratch_.data());
}

void* Program::address(ValueId v, const std::vector<const void*>& bound) const {
  const Placement& p = plan_.values[static_cast<size_t>(v)];
  ValueId owner = p.storage == Storage::View ? p.viewOf : v;
  if (const void* b = bound[static_cast<size_t>(owner)]) return const_cast<void*>(b);
  if (!heldResults_.empty() && heldResults_[static_cast<size_t>(owner)].size() > 0)
    return heldResults_[static_cast<size_t>(owner)].data();
  const Placement& o = plan_.values[static_cast<size_t>(owner)];
  switch (o.storage) {
    case Storage::Arena: return arena_ + o.offset;
    case Storage::Persistent: return state_ + stateOffset(owner);
    case Storage::Constant: return const_cast<void*>(constants_[static_cast<size_t>(owner)]);
    default: throw Error("value " + ir::valueRef(graph_, owner) + " has no storage (an input that was not bound)");
  }
}

bool Program::computedInPlace(const ir::StateUpdate& u) const {
  return plan_.values[static_cast<size_t>(u.value)].inPlaceOf == u.param;
}

int64_t Program::stateOffset(ValueId v) const {
  const Placement& p = plan_.values[static_cast<size_t>(v)];
  return swapped_ && p.twin >= 0 ? plan_.values[static_cast<size_t>(p.twin)].offset : p.offset;
}

uint8_t* Program::paramData(ValueId p) const { return state_ + stateOffset(p); }

int64_t Program::heldBytes() const {
  size_t bytes = 0;
  for (const Step& step : steps_)
    if (step.onednn) bytes += step.onednn->heldBytes();
  for (const AlignedBuffer& held : heldResults_) bytes += static_cast<size_t>(held.size());
  for (const Step& step : steps_) bytes += static_cast<size_t>(step.nativeHeld.size());
  return static_cast<int64_t>(bytes);
}

void Program::forgetHeldCopies() {
  for (Step& step : steps_)
    if (step.onednn) step.onednn->forgetHeldCopies();
  heldResultsReady_ = false;
}

void Program::holdConstantResults() {
  const ir::Graph& g = graph_;
  std::vector<Step*> stepOf(static_cast<size_t>(g.size()), nullptr);
  for (Step& step : steps_) stepOf[static_cast<size_t>(step.value)] = &step;
  auto draws = [](const ir::Graph& body) {
    return std::any_of(body.nodes().begin(), body.nodes().end(),
                       [](const ir::Node& n) { return ir::opInfo(n.op).has(ir::kRandom); });
  };
  std::vector<bool> constant(static_cast<size_t>(g.size()), false);
  for (ValueId v = 0; v < g.size(); ++v) {  // in node order: operands are decided first
    const ir::Node& node = g.node(v);
    if (node.op == OpKind::Param || node.op == OpKind::Constant) {
      constant[static_cast<size_t>(v)] = sameBytesEveryRun(g, v);
      continue;
    }
    if (node.op == OpKind::Reshape) {
      constant[static_cast<size_t>(v)] = constant[static_cast<size_t>(node.operands[0])];
      continue;
    }
    Step* step = stepOf[static_cast<size_t>(v)];
    if (!step || !step->kernel || !step->sideSums.empty() || !node.body || draws(*node.body) ||
        step->kernelArgs.empty() || step->kernelArgs.size() != node.body->inputs().size() ||
        !std::all_of(step->kernelArgs.begin(), step->kernelArgs.end(),
                     [&](ValueId o) { return constant[static_cast<size_t>(o)]; }))
      continue;
    constant[static_cast<size_t>(v)] = step->heldResult = true;
    if (heldResults_.empty()) heldResults_.resize(static_cast<size_t>(g.size()));
    heldResults_[static_cast<size_t>(v)] = AlignedBuffer(g.type(v).byteSize(), /*zeroed=*/false);
    ++counts_.heldResults;
  }
}

void Program::execute(const std::vector<const void*>& bound, uint64_t counter, bool keepState) {
  // Parameters updated in place, saved first and put back however the run ends. The copies
  // live in keptState_ from one such run to the next: fresh buffers of a few MiB each run
  // cost more in page faults than the copies themselves (stop 49: 3 ms a run for three
  // 1.5 MiB parameters). A run that updates the state frees them, so that a training loop
  // evaluating now and then holds no second copy of its state between evaluations.
  struct Restore {
    std::vector<std::pair<uint8_t*, const std::vector<uint8_t>*>> saved;
    ~Restore() {
      for (auto& [at, bytes] : saved) copyBytes(at, bytes->data(), bytes->size());
    }
  } restore;
  if (keepState) {
    auto inPlace = [this](const ir::StateUpdate& u) { return computedInPlace(u); };
    keptState_.resize(static_cast<size_t>(std::count_if(graph_.updates().begin(), graph_.updates().end(), inPlace)));
    size_t kept = 0;  // (restore points into keptState_: sized first, never grown below)
    for (const auto& u : graph_.updates())
      if (inPlace(u)) {
        std::vector<uint8_t>& copy = keptState_[kept++];
        uint8_t* at = paramData(u.param);
        copy.assign(at, at + graph_.type(u.param).byteSize());
        restore.saved.emplace_back(at, &copy);
      }
  } else {
    std::vector<std::vector<uint8_t>>().swap(keptState_);
  }
  // Fed parameters are converted anew each run: a feed may reuse an address with other bytes.
  // (The held state is converted again by the next run without feeds, from its own address.)
  // Held results computed from fed parameters are computed again by the next run too.
  bool fed = false;
  for (ValueId p : params_)
    if (bound[static_cast<size_t>(p)]) {
      forgetHeldCopies();
      fed = true;
      break;
    }
  omp_set_num_threads(threads_);  // oneDNN's primitives read OpenMP's thread count
  DenormalsFlushed flushed(flushDenormals_, threads_);
  dnnl::stream stream(*std::static_pointer_cast<dnnl::engine>(engine_));
  auto runsNow = [this](const Step& step) { return !step.heldResult || !heldResultsReady_; };
  // A profile leaves out the first run (first-touched memory, oneDNN's lazy kernel setup).
  if (stepSeconds_.empty() || !profileWarm_) {
    for (const Step& step : steps_)
      if (runsNow(step)) runStep(step, bound, counter, &stream);
    heldResultsReady_ = !fed;
    profileWarm_ = true;
    return;
  }
  ++profiledRuns_;
  for (size_t index = 0; index < steps_.size(); ++index) {
    if (!runsNow(steps_[index])) continue;
    auto start = std::chrono::steady_clock::now();
    runStep(steps_[index], bound, counter, &stream);
    stepSeconds_[index] += secondsSince(start);
  }
  heldResultsReady_ = !fed;
}

void Program::runStep(const Step& step, const std::vector<const void*>& bound, uint64_t counter, void* stream) {
  const ir::Node& node = graph_.node(step.value);
  operandPtrs_.clear();
  for (ValueId o : step.kernel || !step.kernelArgs.empty() ? step.kernelArgs : node.operands)
    operandPtrs_.push_back(address(o, bound));
  void* result = address(step.value, bound);
  if (step.onednn) return step.onednn->run(operandPtrs_, result, *static_cast<dnnl::stream*>(stream));
  if (step.kernel) return runKernel(*step.kernel, result, operandPtrs_, threads_, node.type.numel(), step.sideSums);
  if (step.native)
    return step.native(NativeCall{graph_, step.value, operandPtrs_, result, counter, &blocked_, step.nativeScratch,
                                  step.nativeScratchBytes, step.nativeHeld.data(), heldResultsReady_});
  step.host(operandPtrs_, result, counter);
}

void Program::applyUpdates(const std::vector<const void*>& bound) {
  auto start = std::chrono::steady_clock::now();
  // Update values live to the end of the run, so parameters can be overwritten now. A value
  // in the arena is copied straight in; one that is itself a parameter (or a view or fed
  // value) goes through a copy first, since an earlier write-back may overwrite it.
  // A value planned as its parameter's twin is not copied: the two trade places at the end.
  // One computed in its parameter's slot (in place) is there already.
  const ir::Graph& g = graph_;
  auto twinned = [&](const ir::StateUpdate& u) { return plan_.values[static_cast<size_t>(u.value)].twin == u.param; };
  std::vector<std::pair<size_t, std::vector<uint8_t>>> staged;
  bool anyTwin = false;
  for (size_t i = 0; i < g.updates().size(); ++i) {
    const auto& u = g.updates()[i];
    anyTwin = anyTwin || twinned(u);
    if (twinned(u) || computedInPlace(u) || plan_.values[static_cast<size_t>(u.value)].storage == Storage::Arena) continue;
    std::vector<uint8_t> copy(g.type(u.value).byteSize());
    copyBytes(copy.data(), address(u.value, bound), copy.size());
    staged.emplace_back(i, std::move(copy));
  }
  for (const auto& u : g.updates())
    if (plan_.values[static_cast<size_t>(u.value)].storage == Storage::Arena)
      copyBytes(address(u.param, bound), address(u.value, bound), g.type(u.value).byteSize());
  for (const auto& [i, bytes] : staged) copyBytes(address(g.updates()[i].param, bound), bytes.data(), bytes.size());
  if (anyTwin) swapped_ = !swapped_;
  if (!stepSeconds_.empty()) {
    updateSeconds_ += secondsSince(start);
    ++profiledUpdates_;
  }
}

void Program::printProfile() const {
  if (stepSeconds_.empty() || profiledRuns_ == 0) return;
  std::vector<size_t> order(steps_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return stepSeconds_[a] > stepSeconds_[b]; });
  double total = 0;
  for (double t : stepSeconds_) total += t;
  double byKind[3] = {0, 0, 0};  // oneDNN, generated and native, host
  for (size_t i = 0; i < steps_.size(); ++i)
    byKind[steps_[i].onednn ? 0 : steps_[i].kernel || steps_[i].native ? 1 : 2] += stepSeconds_[i];
  std::fprintf(stderr,
               "WEFT_PROFILE @%s: %d runs, %.3f ms per run in %zu steps (oneDNN %.3f, generated and native %.3f, "
               "host %.3f); slowest:\n",
               graph_.name().c_str(), profiledRuns_, total * 1e3 / profiledRuns_, steps_.size(),
               byKind[0] * 1e3 / profiledRuns_, byKind[1] * 1e3 / profiledRuns_, byKind[2] * 1e3 / profiledRuns_);
  if (profiledUpdates_ > 0)
    std::fprintf(stderr, "  updates: %zu, applied in %.3f ms per step (values the plan twins with their parameter are not copied)\n",
                 graph_.updates().size(), updateSeconds_ * 1e3 / profiledUpdates_);
  for (size_t k = 0; k < std::min(order.size(), profileSteps_); ++k) {
    const Step& st = steps_[order[k]];
    const ir::Node& n = graph_.node(st.value);
    std::string how = st.onednn   ? "onednn " + st.onednn->describe()
                      : st.kernel ? "generated " + st.kernel->name
                      : st.native ? "native"
                                  : "host";
    // A generated kernel's memory traffic: its result and each operand once, over its time.
    std::string traffic;
    if (st.kernel && stepSeconds_[order[k]] > 0) {
      std::set<ir::ValueId> operands(n.operands.begin(), n.operands.end());
      double bytes = static_cast<double>(n.type.byteSize());
      for (ir::ValueId o : operands) bytes += static_cast<double>(graph_.type(o).byteSize());
      char text[32];
      std::snprintf(text, sizeof text, "  (%.1f GB/s)", bytes * profiledRuns_ / stepSeconds_[order[k]] * 1e-9);
      traffic = text;
    }
    std::fprintf(stderr, "  %8.3f ms  %5.1f%%  %s %s %s : %s%s\n", stepSeconds_[order[k]] * 1e3 / profiledRuns_,
                 100.0 * stepSeconds_[order[k]] / total, std::string(ir::opName(n.op)).c_str(),
                 ir::valueRef(graph_, st.value).c_str(), how.c_str(), n.type.str().c_str(), traffic.c_str());
  }
}

}  // namespace weft::cpu
