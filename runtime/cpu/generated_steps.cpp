// The generated steps of a program, with each optimizer step over one parameter merged into
// one kernel (see generated_steps.h).
#include "runtime/cpu/generated_steps.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "ir/attrs.h"
#include "ir/error.h"
#include "ir/verifier.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/program.h"
#include "runtime/cpu/side_sum_sources.h"

namespace weft::cpu {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

bool isLoopKernel(const Node& n) {
  return runsGeneratedKernel(n) && ir::AttrReader(n.attrs, n.op).s("kind") == "loop" && n.body->outputs().size() == 1;
}

/// What the merge rules need to know of every value.
struct Facts {
  std::vector<int> readers;      ///< nodes reading it, plus one per output naming it
  std::vector<ValueId> paramOf;  ///< the parameter an update value is for, or -1
  std::vector<bool> isUpdate;    ///< an update value (of one parameter or more)

  explicit Facts(const Graph& g)
      : readers(static_cast<size_t>(g.size()), 0), paramOf(static_cast<size_t>(g.size()), -1),
        isUpdate(static_cast<size_t>(g.size()), false) {
    for (ValueId v = 0; v < g.size(); ++v) {
      std::vector<ValueId> ops = g.node(v).operands;
      std::sort(ops.begin(), ops.end());
      ops.erase(std::unique(ops.begin(), ops.end()), ops.end());
      for (ValueId o : ops) ++readers[static_cast<size_t>(o)];
    }
    for (const auto& out : g.outputs()) ++readers[static_cast<size_t>(out.value)];
    std::vector<int> updates(static_cast<size_t>(g.size()), 0);
    for (const auto& u : g.updates()) {
      ++updates[static_cast<size_t>(u.value)];
      isUpdate[static_cast<size_t>(u.value)] = true;
      paramOf[static_cast<size_t>(u.value)] = u.param;
    }
    for (ValueId v = 0; v < g.size(); ++v)
      if (updates[static_cast<size_t>(v)] != 1) paramOf[static_cast<size_t>(v)] = -1;
  }
};

/// The operands of `p` that merge into its kernel (the rules of generatedSteps), in operand order.
std::vector<ValueId> mergeableOperands(const Graph& g, const MemoryPlan& plan, const Facts& facts, ValueId p) {
  const Node& node = g.node(p);
  std::vector<ValueId> extras;
  if (!isLoopKernel(node) || facts.paramOf[static_cast<size_t>(p)] < 0 ||
      plan.values[static_cast<size_t>(p)].storage != Storage::Persistent)
    return extras;
  auto mergeable = [&](ValueId a) {
    const auto i = static_cast<size_t>(a);
    return std::find(node.operands.begin(), node.operands.end(), a) != node.operands.end() &&
           isLoopKernel(g.node(a)) && g.type(a).shape == node.type.shape && facts.readers[i] == 1 &&
           facts.paramOf[i] >= 0 && plan.values[i].inPlaceOf == facts.paramOf[i];
  };
  // Only merged values may run between a merged value and p: those before the last other
  // node keep their own steps.
  ValueId gap = p - 1;
  while (gap >= 0 && mergeable(gap)) --gap;
  for (ValueId a : node.operands)
    if (a > gap && std::find(extras.begin(), extras.end(), a) == extras.end()) extras.push_back(a);
  return extras;
}

/// True when `shape` broadcasts to `to` along its unit dims (the same rank).
bool broadcastsTo(const ir::Shape& shape, const ir::Shape& to) {
  if (shape.size() != to.size()) return false;
  for (size_t d = 0; d < shape.size(); ++d)
    if (shape[d] != 1 && shape[d] != to[d]) return false;
  return true;
}

/// True when the body of loop kernel `n` is elementwise: every computed value of its shape is
/// an elementwise op's, and any other computed value broadcasts to it (a group norm's
/// per-channel scales reshaped from its weight), so each output element reads its inputs at
/// its own index or a broadcast one.
bool isElementwiseKernel(const Node& n) {
  for (const Node& b : n.body->nodes()) {
    if (b.op == OpKind::Constant && b.type.numel() == 1) continue;  // a scalar, read the same everywhere
    if (b.type.shape != n.type.shape) {  // an input, read through what broadcasts it, or such a value
      if (b.op != OpKind::Input && !broadcastsTo(b.type.shape, n.type.shape)) return false;
      continue;
    }
    if (b.op != OpKind::Input && !ir::opInfo(b.op).has(ir::kElementwise)) return false;
  }
  return true;
}

/// True when `v` is `a` or a reshape (a view) of it.
bool viewsOf(const Graph& g, ValueId v, ValueId a) {
  while (v != a && g.node(v).op == OpKind::Reshape) v = g.node(v).operands[0];
  return v == a;
}

/// Bytes of the arena or of the persistent state; Storage::None: none a kernel writes.
struct Bytes {
  Storage storage = Storage::None;
  int64_t begin = 0, end = 0;
  bool overlaps(const Bytes& o) const {
    return storage != Storage::None && storage == o.storage && begin < o.end && o.begin < end;
  }
};
/// The bytes value `v` occupies under `plan` (a view: all of the value it shares).
Bytes bytesOf(const Graph& g, const MemoryPlan& plan, ValueId v) {
  if (const Placement& p = plan.values[static_cast<size_t>(v)]; p.storage == Storage::View && p.viewOf >= 0)
    v = p.viewOf;
  const Placement& p = plan.values[static_cast<size_t>(v)];
  if (p.storage != Storage::Arena && p.storage != Storage::Persistent) return {};
  return {p.storage, p.offset, p.offset + static_cast<int64_t>(g.type(v).byteSize())};
}

/// The loop kernel just before `p` (reshapes aside) when `p`'s kernel computes it too (a
/// sibling: the rules of generatedSteps), or -1.
ValueId mergeableSibling(const Graph& g, const MemoryPlan& plan, const Facts& facts, ValueId p,
                         const std::function<bool(ValueId, const std::vector<ValueId>&)>& touchesBlocked) {
  ValueId a = p - 1;
  while (a >= 0 && g.node(a).op == OpKind::Reshape) --a;  // views, which run no step
  if (a < 0 || !isLoopKernel(g.node(p)) || !isLoopKernel(g.node(a))) return -1;
  const Node &node = g.node(p), &sibling = g.node(a);
  auto reads = [&](const Node& n, ValueId v) { return std::find(n.operands.begin(), n.operands.end(), v) != n.operands.end(); };
  // p may read a itself (the merged body binds it to a's computed value), not a view of it.
  const bool readsView =
      std::any_of(node.operands.begin(), node.operands.end(), [&](ValueId o) { return o != a && viewsOf(g, o, a); });
  const bool inArena = plan.values[static_cast<size_t>(a)].storage == Storage::Arena;
  const bool apart = !bytesOf(g, plan, p).overlaps(bytesOf(g, plan, a));
  if (sibling.type.shape != node.type.shape || !isElementwiseKernel(sibling) || !isElementwiseKernel(node) ||
      readsView || (reads(node, a) && !apart) || !inArena || facts.isUpdate[static_cast<size_t>(a)] ||
      facts.isUpdate[static_cast<size_t>(p)] ||
      touchesBlocked(a, sibling.operands) || touchesBlocked(p, node.operands))
    return -1;
  for (ValueId o : sibling.operands)
    if (!reads(node, o)) return -1;
  return a;
}

/// A kernel body assembled from fused bodies: each outer value they read becomes one input,
/// recorded in `operands` in order of first use.
class BodyMerger {
 public:
  BodyMerger(const Graph& g, std::string name, std::vector<ValueId>& operands)
      : g_(g), body_(std::move(name)), operands_(operands) {}

  /// The body value that reads outer value `outer` (an input made on first use, or the
  /// value bound to it).
  ValueId input(ValueId outer) {
    auto it = inputOf_.find(outer);
    if (it != inputOf_.end()) return it->second;
    operands_.push_back(outer);
    return inputOf_[outer] = body_.addInput("in" + std::to_string(operands_.size() - 1), g_.type(outer));
  }
  /// Makes later reads of outer value `outer` read body value `v` (computed in the body).
  void bind(ValueId outer, ValueId v) { inputOf_[outer] = v; }
  /// Copies `from` (a fused body whose inputs read `outer`) in; returns its output.
  ValueId copy(const Graph& from, const std::vector<ValueId>& outer, bool keepNames) {
    std::vector<ValueId> local(static_cast<size_t>(from.size()), -1);
    std::vector<ValueId> ins = from.inputs();
    for (size_t k = 0; k < ins.size(); ++k) local[static_cast<size_t>(ins[k])] = input(outer[k]);
    for (ValueId v = 0; v < from.size(); ++v) {
      if (local[static_cast<size_t>(v)] >= 0) continue;
      Node n = from.node(v);
      for (ValueId& o : n.operands) o = local[static_cast<size_t>(o)];
      if (!keepNames) n.name.clear();
      local[static_cast<size_t>(v)] = body_.addNode(std::move(n));
    }
    return local[static_cast<size_t>(from.outputs()[0].value)];
  }
  /// The body, returning `outputs` as out, out1, ...
  std::shared_ptr<const Graph> finish(const std::vector<ValueId>& outputs) {
    for (size_t k = 0; k < outputs.size(); ++k) body_.addOutput(k == 0 ? "out" : "out" + std::to_string(k), outputs[k]);
    return std::make_shared<const Graph>(std::move(body_));
  }

 private:
  const Graph& g_;
  Graph body_;
  std::vector<ValueId>& operands_;
  std::map<ValueId, ValueId> inputOf_;  // outer value -> body value
};

/// The body of `p`'s kernel with the bodies of `extras` (operands of `p`, or its sibling)
/// inlined; sets
/// `operands` to the values its inputs read: p's other operands, then the extras' operands
/// not read yet, each once.
std::shared_ptr<const Graph> mergedBody(const Graph& g, ValueId p, const std::vector<ValueId>& extras,
                                        std::vector<ValueId>& operands) {
  const Node& node = g.node(p);
  BodyMerger merger(g, node.body->name() + "_multi", operands);
  for (ValueId o : node.operands)
    if (std::find(extras.begin(), extras.end(), o) == extras.end()) merger.input(o);
  std::vector<ValueId> outputs = {-1};
  for (ValueId a : extras) outputs.push_back(merger.copy(*g.node(a).body, g.node(a).operands, false));
  for (size_t k = 0; k < extras.size(); ++k) merger.bind(extras[k], outputs[k + 1]);
  outputs[0] = merger.copy(*node.body, node.operands, true);
  return merger.finish(outputs);
}

/// True when nothing the plan keeps in the arena during steps [from, to) overlaps value
/// `v`'s arena bytes: `v`, planned from step `to` (its source `from`'s, see planMemory),
/// may then be written from step `from` on.
bool arenaFreeBefore(const Graph& g, const MemoryPlan& plan, ValueId v, ValueId from, ValueId to) {
  const Placement& p = plan.values[static_cast<size_t>(v)];
  if (p.storage != Storage::Arena) return false;
  const int64_t begin = p.offset, end = p.offset + static_cast<int64_t>(g.type(v).byteSize());
  for (const auto& [life, offset] : plan.arenaBuffers) {
    const bool own = offset == begin && life.first == from;  // v's buffer, planned from `from`
    const bool meanwhile = life.first < to && life.last >= from && !own;
    if (meanwhile && offset < end && begin < offset + life.bytes) return false;
  }
  return true;
}

/// The reduce kernels among `candidates` (those whose side-sum source is `l`) that loop
/// kernel `l` computes as its side sums (see generatedSteps).
std::vector<ValueId> sideSumsOf(const Graph& g, const MemoryPlan& plan, const std::vector<bool>& blocked,
                                const std::vector<ValueId>& candidates, ValueId l) {
  auto isBlocked = [&](ValueId v) { return static_cast<size_t>(v) < blocked.size() && blocked[static_cast<size_t>(v)]; };
  const Node& node = g.node(l);
  std::vector<ValueId> sums;
  if (!isLoopKernel(node) || plan.values[static_cast<size_t>(l)].storage != Storage::Arena) return sums;
  bool layoutBlocked = isBlocked(l);
  for (ValueId o : node.operands) layoutBlocked = layoutBlocked || isBlocked(o);
  for (ValueId r : candidates) {
    const Node& reader = g.node(r);
    if (isBlocked(r) || !arenaFreeBefore(g, plan, r, l, r)) continue;
    // A blocked kernel runs its body over blocked views of every rank-4 value it reads (the
    // same bytes as stored for a per-channel [1, 1, 1, C]).
    const bool sameLayouts = std::all_of(reader.operands.begin(), reader.operands.end(), [&](ValueId o) {
      const ir::Shape& shape = g.type(o).shape;
      return shape.size() != 4 || !blockingMovesData(shape) || isBlocked(o) == layoutBlocked;
    });
    if (sameLayouts) sums.push_back(r);
  }
  return sums;
}

/// The body of loop kernel `l` also returning the side sums `sums` (reduce kernels reading
/// it), with `operands` set to the values its inputs read: l's operands, then the sums'
/// other operands not read yet, each once.
std::shared_ptr<const Graph> sideSumBody(const Graph& g, ValueId l, const std::vector<ValueId>& sums,
                                         std::vector<ValueId>& operands) {
  const Node& node = g.node(l);
  BodyMerger merger(g, node.body->name() + "_sums", operands);
  std::vector<ValueId> outputs = {merger.copy(*node.body, node.operands, false)};
  merger.bind(l, outputs[0]);  // the sums read l's value as the kernel computes it
  for (ValueId r : sums) outputs.push_back(merger.copy(*g.node(r).body, g.node(r).operands, false));
  return merger.finish(outputs);
}

/// Body values numbered so that equal expressions share a number (the same op, type,
/// attributes and numbered operands; constants by their bytes, as CSE compares them): LLVM
/// merges them, so that a compare of two such values folds as a compare of one value with itself.
std::vector<ValueId> expressionNumbers(const Graph& body) {
  std::vector<ValueId> number(static_cast<size_t>(body.size()));
  auto same = [&](const Node& a, const Node& b) {
    if (a.op != b.op || a.type != b.type || a.op == OpKind::Input || a.operands.size() != b.operands.size())
      return false;
    for (size_t i = 0; i < a.operands.size(); ++i)
      if (number[static_cast<size_t>(a.operands[i])] != number[static_cast<size_t>(b.operands[i])]) return false;
    return ir::sameAttrs(a.attrs, b.attrs);
  };
  for (ValueId v = 0; v < body.size(); ++v) {
    number[static_cast<size_t>(v)] = v;
    for (ValueId u = 0; u < v; ++u)
      if (number[static_cast<size_t>(u)] == u && same(body.node(u), body.node(v))) {
        number[static_cast<size_t>(v)] = u;
        break;
      }
  }
  return number;
}

/// For each value of a loop or reduce body, the body inputs it reads (`any`), and those whose
/// loads its value keeps depending on whatever LLVM folds (`kept`): float arithmetic keeps its
/// operands (a NaN operand gives NaN), a select its condition's and both arms' (only both
/// arms' common ones when the condition keeps nothing, so may fold to a constant, and only
/// the arm's when the two are equal), a compare its operands' unless they are equal or one is
/// an infinity or a NaN (x < x and x < -inf fold to false); integer arithmetic, and what else
/// folds (maximum with a NaN), keep none.
struct InputReads {
  std::vector<std::vector<bool>> any, kept;

  explicit InputReads(const Graph& body) {
    const std::vector<ValueId> inputs = body.inputs(), number = expressionNumbers(body);
    const size_t n = inputs.size();
    any.assign(static_cast<size_t>(body.size()), std::vector<bool>(n, false));
    kept = any;
    for (size_t k = 0; k < n; ++k) {
      const auto i = static_cast<size_t>(inputs[k]);
      any[i][k] = kept[i][k] = true;
    }
    auto join = [&](std::vector<bool>& into, ValueId o) {
      for (size_t k = 0; k < n; ++k) into[k] = into[k] || kept[static_cast<size_t>(o)][k];
    };
    for (ValueId v = 0; v < body.size(); ++v) {
      const Node& node = body.node(v);
      if (node.op == OpKind::Input) continue;
      auto &kv = kept[static_cast<size_t>(v)], &av = any[static_cast<size_t>(v)];
      for (ValueId o : node.operands)
        for (size_t k = 0; k < n; ++k) av[k] = av[k] || any[static_cast<size_t>(o)][k];
      const auto equal = [&](size_t i, size_t j) {
        return number[static_cast<size_t>(node.operands[i])] == number[static_cast<size_t>(node.operands[j])];
      };
      switch (keeps(body, node)) {
        case Keeps::nothing: break;
        case Keeps::operands:
          for (ValueId o : node.operands) join(kv, o);
          break;
        case Keeps::unlessEqual:
          if (!equal(0, 1)) for (ValueId o : node.operands) join(kv, o);
          else if (node.op == OpKind::LogicalAnd || node.op == OpKind::LogicalOr) join(kv, node.operands[0]);
          break;
        case Keeps::select: {
          const auto& condition = kept[static_cast<size_t>(node.operands[0])];
          if (equal(1, 2)) {
            join(kv, node.operands[1]);
          } else if (std::find(condition.begin(), condition.end(), true) != condition.end()) {
            for (ValueId o : node.operands) join(kv, o);
          } else {
            const auto& t = kept[static_cast<size_t>(node.operands[1])];
            const auto& f = kept[static_cast<size_t>(node.operands[2])];
            for (size_t k = 0; k < n; ++k) kv[k] = t[k] && f[k];
          }
          break;
        }
      }
    }
  }

 private:
  enum class Keeps { nothing, operands, unlessEqual, select };

  static bool nonFiniteConstant(const Graph& body, ValueId v) {
    const Node& n = body.node(v);
    if (n.op != OpKind::Constant) return false;
    const auto& data = *std::get<ir::TensorDataPtr>(n.attrs.at("value"));
    for (int64_t i = 0; i < n.type.numel(); ++i)
      if (!std::isfinite(data.get(i))) return true;
    return false;
  }

  static Keeps keeps(const Graph& body, const Node& n) {
    switch (n.op) {
      case OpKind::Select: return Keeps::select;
      case OpKind::Eq: case OpKind::Ne: case OpKind::Lt: case OpKind::Le: case OpKind::Gt: case OpKind::Ge:
        if (nonFiniteConstant(body, n.operands[0]) || nonFiniteConstant(body, n.operands[1])) return Keeps::nothing;
        return Keeps::unlessEqual;  // x < -inf folds to false, as x < x
      case OpKind::LogicalAnd: case OpKind::LogicalOr:
        return Keeps::unlessEqual;
      case OpKind::LogicalNot: case OpKind::Cast: case OpKind::Reshape: case OpKind::Broadcast:
      case OpKind::StopGradient:
        return Keeps::operands;
      case OpKind::Maximum: case OpKind::Minimum:
        if (nonFiniteConstant(body, n.operands[0]) || nonFiniteConstant(body, n.operands[1])) return Keeps::nothing;
        [[fallthrough]];
      case OpKind::Neg: case OpKind::Abs: case OpKind::Exp: case OpKind::Log: case OpKind::Sqrt:
      case OpKind::Rsqrt: case OpKind::Tanh: case OpKind::Sigmoid: case OpKind::Sin: case OpKind::Cos:
      case OpKind::Erf: case OpKind::Floor: case OpKind::Sign: case OpKind::Add: case OpKind::Sub:
      case OpKind::Mul: case OpKind::Div:
        return ir::isFloat(n.type.dtype) ? Keeps::operands : Keeps::nothing;
      default:
        return Keeps::nothing;  // pow(x, 0) is 1; reductions are written after the loop
    }
  }
};

/// True when a kernel with body `body` (its inputs reading `operands`, its outputs written to
/// `outputs`, in order) computes right with each output written over the operands whose bytes
/// it shares. The kernel's pointers are noalias (mlir_emitter.cpp), so LLVM may move the store
/// of an output's element before the load of that element of an input its value does not
/// depend on (a store of a value that folds to a constant becomes a memset before the loop):
/// harmless when the output keeps the input (InputReads::kept) or no other output reads it.
bool writesInPlaceSafely(const Graph& g, const MemoryPlan& plan, const Graph& body,
                         const std::vector<ValueId>& operands, const std::vector<ValueId>& outputs) {
  const InputReads reads(body);
  const auto& results = body.outputs();
  for (size_t j = 0; j < outputs.size(); ++j) {
    const Bytes written = bytesOf(g, plan, outputs[j]);
    const auto out = static_cast<size_t>(results[j].value);
    for (size_t k = 0; k < operands.size(); ++k) {
      if (!written.overlaps(bytesOf(g, plan, operands[k])) || reads.kept[out][k]) continue;
      for (size_t other = 0; other < outputs.size(); ++other)
        if (other != j && reads.any[static_cast<size_t>(results[other].value)][k]) return false;
    }
  }
  return true;
}

}  // namespace

std::vector<GeneratedStep> generatedSteps(const Graph& g, const MemoryPlan& plan, const std::vector<bool>& blocked) {
  auto isBlocked = [&](ValueId v) { return static_cast<size_t>(v) < blocked.size() && blocked[static_cast<size_t>(v)]; };
  Facts facts(g);
  std::vector<bool> merged(static_cast<size_t>(g.size()), false);
  auto touchesBlocked = [&](ValueId v, const std::vector<ValueId>& operands) {
    return isBlocked(v) || std::any_of(operands.begin(), operands.end(), isBlocked);
  };
  // Side sums first (loop kernels in the arena, never an optimizer step's): the steps of the
  // loop kernels that compute some, by loop kernel.
  const std::vector<ValueId> sources = sideSumSources(g);
  std::vector<std::vector<ValueId>> candidates(static_cast<size_t>(g.size()));
  for (ValueId r = 0; r < g.size(); ++r)
    if (ValueId l = sources[static_cast<size_t>(r)]; l >= 0) candidates[static_cast<size_t>(l)].push_back(r);
  std::map<ValueId, GeneratedStep> withSums;
  for (ValueId l = 0; l < g.size(); ++l) {
    if (candidates[static_cast<size_t>(l)].empty()) continue;
    GeneratedStep step;
    step.value = l;
    step.sideSums = sideSumsOf(g, plan, blocked, candidates[static_cast<size_t>(l)], l);
    if (step.sideSums.empty()) continue;
    step.body = sideSumBody(g, l, step.sideSums, step.operands);
    std::vector<ValueId> outputs = {l};
    outputs.insert(outputs.end(), step.sideSums.begin(), step.sideSums.end());
    if (!writesInPlaceSafely(g, plan, *step.body, step.operands, outputs)) continue;  // the sums keep their own steps
    if (touchesBlocked(l, step.operands)) {
      std::optional<Graph> blockedVersion = blockedBody(*step.body);
      if (!blockedVersion) continue;  // the sums keep their own steps
      step.body = std::make_shared<const Graph>(std::move(*blockedVersion));
    }
    for (ValueId r : step.sideSums) merged[static_cast<size_t>(r)] = true;
    withSums.emplace(l, std::move(step));
  }
  std::vector<GeneratedStep> steps;
  for (ValueId p = g.size(); p-- > 0;) {  // last first: a merged value never roots a step of its own
    const Node& node = g.node(p);
    if (!runsGeneratedKernel(node) || merged[static_cast<size_t>(p)]) continue;
    if (auto it = withSums.find(p); it != withSums.end()) {
      steps.push_back(std::move(it->second));
      continue;
    }
    GeneratedStep step;
    step.value = p;
    step.extraOutputs = mergeableOperands(g, plan, facts, p);
    if (step.extraOutputs.empty())
      if (ValueId a = mergeableSibling(g, plan, facts, p, touchesBlocked); a >= 0 && !withSums.count(a) && !merged[static_cast<size_t>(a)])
        step.extraOutputs.push_back(a);
    if (!step.extraOutputs.empty()) {
      step.body = mergedBody(g, p, step.extraOutputs, step.operands);
      std::vector<ValueId> outputs = {p};
      outputs.insert(outputs.end(), step.extraOutputs.begin(), step.extraOutputs.end());
      if (!writesInPlaceSafely(g, plan, *step.body, step.operands, outputs)) {  // each keeps its own step
        step.extraOutputs.clear();
        step.operands.clear();
      }
    }
    for (ValueId a : step.extraOutputs) merged[static_cast<size_t>(a)] = true;
    if (step.extraOutputs.empty()) {
      step.body = node.body;
      step.operands = node.operands;
      if (touchesBlocked(p, node.operands)) {
        auto body = blockedBody(*node.body);
        if (!body) throw Error("the body of " + ir::valueRef(g, p) + " does not run over channel-blocked data");
        step.body = std::make_shared<const Graph>(std::move(*body));
      }
    }
    steps.push_back(std::move(step));
  }
  std::reverse(steps.begin(), steps.end());
  return steps;
}

}  // namespace weft::cpu
