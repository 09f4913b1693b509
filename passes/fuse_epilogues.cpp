// fuse-epilogues: folds the elementwise epilogue of a matmul or conv into a `fused` node of
// kind "matmul" or "conv", which the CPU backend runs as one oneDNN primitive with post-ops
// (bias and residual adds, scalings, activations). Runs on primitives (after
// decompose-composites) and before fuse-elementwise, so the epilogue goes to the library.
//
// Algorithm:
//  1. Count the users of every value: the nodes reading it (a node reading it twice counts
//     once), plus one for each graph output or update naming it.
//  2. For every f32 matmul and conv c, in graph order, grow a chain: while the chain's last
//     value `cur` has exactly one user u, u is not already in another chain, and u is an
//     epilogue op (below) whose result has c's type, append u. A value with several users
//     ends the chain, so a contraction or intermediate is never recomputed and nothing
//     materialized is lost, except after a matmul where the two readers begin a GELU (its
//     erf form as decompose-composites writes it, ir/gelu_pattern.h): its five nodes join
//     the chain (oneDNN's eltwise_gelu_erf post-op) and it goes on from their result. A
//     chain of c alone is left as it is.
//     Epilogue ops (what oneDNN post-ops express): unary neg, abs, exp, log, sqrt, rsqrt,
//     tanh, sigmoid; mul(cur, cur) (square); add, sub, mul, maximum, minimum with cur on
//     either side; div with cur on the left; pow(cur, one-element constant). Since u has c's
//     type, the other operand broadcasts to the result. After a matmul, an operand that
//     broadcasts along the last dimension (a per-row operand such as [..., M, 1]) ends the
//     chain: oneDNN has only its slow reference matmul for such a binary post-op; so does a
//     full-size mul by an elementwise op read by the mul alone (GELU's derivative in gpt's
//     backward pass), which fuse-elementwise computes in one kernel with the mul instead of
//     a slow full-size post-op (absorbsElsewhere). After a
//     channels-last conv the other operand must be one element, one value per channel, or
//     (once per chain) a full-size residual add: with a binary post-op input in a strided
//     layout oneDNN 2.6 computed wrong numbers (OneDnnFusion.ConstantBiasesAndBroadcastZeroRelu).
//  3. Each chain becomes a `fused` node at its last node's place (every value the chain reads
//     is defined before that node). Its operands: c's two operands, then the other operands
//     of the epilogue in order of first use (each once), except small constants (at most 16
//     elements, seen through broadcast and reshape) which are copied into the body. The body
//     holds inputs in0, in1, ..., those copies, c and the chain, and returns the last node as
//     `out`. The fused node takes the last node's name and location; the chain's other nodes
//     disappear (dce later removes constants nothing reads any more).
#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "ir/channels_last.h"
#include "ir/gelu_pattern.h"
#include "passes/builtin_passes.h"
#include "passes/constants.h"
#include "passes/rewriter.h"
#include "passes/sole_users.h"

namespace weft::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

/// Constants with at most this many elements are copied into bodies.
constexpr int64_t kMaxInlinedConstant = 16;

/// True when `v` is a small constant, or a broadcast or reshape of one.
bool isSmallConstant(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  if (n.op == OpKind::Constant) return n.type.numel() <= kMaxInlinedConstant;
  if (n.op == OpKind::Broadcast || n.op == OpKind::Reshape) return isSmallConstant(g, n.operands.at(0));
  return false;
}

bool isUnaryEpilogue(OpKind op) {
  switch (op) {
    case OpKind::Neg:
    case OpKind::Abs:
    case OpKind::Exp:
    case OpKind::Log:
    case OpKind::Sqrt:
    case OpKind::Rsqrt:
    case OpKind::Tanh:
    case OpKind::Sigmoid: return true;
    default: return false;
  }
}

/// True when `other`, read by a binary post-op of a matmul of type `type`, broadcasts along
/// the result's last dimension without being a single element.
bool broadcastsAlongRows(const Graph& g, ValueId other, const ir::TensorType& type) {
  const ir::TensorType& t = g.type(other);
  if (t.numel() == 1 || t.shape.empty() || type.shape.empty()) return false;
  return t.shape.back() == 1 && type.shape.back() != 1;
}

/// True when `other`, read by a binary post-op of a channels-last conv of type `type`, is
/// laid out as oneDNN reads it: one element, one value per channel (the last dim), or a
/// residual added at full size (the sum post-op; at most one per chain, `fullAddSeen`).
bool channelsLastOperandFits(const Graph& g, ValueId other, OpKind op, const ir::TensorType& type, bool& fullAddSeen) {
  const ir::TensorType& t = g.type(other);
  if (t.numel() == 1 || (t.numel() == type.shape.back() && !t.shape.empty() && t.shape.back() == t.numel()))
    return true;
  if (op != OpKind::Add || t.shape != type.shape || fullAddSeen) return false;
  fullAddSeen = true;
  return true;
}

/// True when `u` (reading the chain value `cur`) is an epilogue op of the contraction
/// `contraction` (whose result has type `type`).
bool isEpilogue(const Graph& g, const Node& u, ValueId cur, OpKind contraction, const ir::TensorType& type) {
  if (u.type != type || u.body) return false;
  if (u.operands.size() == 1) return isUnaryEpilogue(u.op);
  if (u.operands.size() != 2) return false;
  ValueId lhs = u.operands[0], rhs = u.operands[1];
  if (lhs == cur && rhs == cur) return u.op == OpKind::Mul;
  if (contraction == OpKind::Matmul && broadcastsAlongRows(g, lhs == cur ? rhs : lhs, type)) return false;
  switch (u.op) {
    case OpKind::Add:
    case OpKind::Sub:
    case OpKind::Mul:
    case OpKind::Maximum:
    case OpKind::Minimum: return true;
    case OpKind::Div: return lhs == cur;
    case OpKind::Pow: return lhs == cur && isScalarConstant(g, rhs);
    default: return false;
  }
}

/// True when matmul epilogue node `uId` (reading chain value `cur`) is a full-size mul whose
/// other operand is an elementwise op read by `u` alone: fuse-elementwise then computes both
/// in one kernel that reads the product, while as a post-op oneDNN 2.6's matmul applies a
/// full-size binary mul slowly (1024x256x1024: 1.48 ms plain, 1.94 with the mul).
bool absorbsElsewhere(const Graph& g, const std::vector<ValueId>& sole, ValueId uId, ValueId cur) {
  const Node& u = g.node(uId);
  if (u.op != OpKind::Mul || u.operands.size() != 2 || u.operands[0] == u.operands[1]) return false;
  const ValueId other = u.operands[0] == cur ? u.operands[1] : u.operands[0];
  const Node& o = g.node(other);
  return g.type(other).shape == u.type.shape && ir::opInfo(o.op).has(ir::kElementwise) &&
         sole[static_cast<size_t>(other)] == uId;
}

/// The chains of step 2: each a contraction followed by at least one epilogue node.
std::vector<std::vector<ValueId>> findChains(const Graph& g, bool gelu) {
  std::vector<ValueId> sole = soleUsers(g);
  std::vector<bool> taken(static_cast<size_t>(g.size()), false);
  std::vector<std::vector<ValueId>> chains;
  for (ValueId c = 0; c < g.size(); ++c) {
    const Node& n = g.node(c);
    if ((n.op != OpKind::Matmul && n.op != OpKind::Conv) || n.type.dtype != ir::DType::f32) continue;
    std::vector<ValueId> chain = {c};
    const bool channelsLast = ir::isChannelsLast(n.op, n.attrs);
    bool fullAddSeen = false;
    for (ValueId cur = c;;) {
      const ValueId u = sole[static_cast<size_t>(cur)];
      if (u < 0 && n.op == OpKind::Matmul && gelu) {  // read twice: maybe by a GELU, one post-op
        std::optional<std::array<ValueId, 5>> gelu = ir::matchErfGelu(g, cur);
        if (!gelu || std::any_of(gelu->begin(), gelu->end(), [&](ValueId m) { return taken[static_cast<size_t>(m)]; }))
          break;
        chain.insert(chain.end(), gelu->begin(), gelu->end());
        cur = gelu->back();
        continue;
      }
      if (u < 0 || taken[static_cast<size_t>(u)] || !isEpilogue(g, g.node(u), cur, n.op, n.type)) break;
      const Node& un = g.node(u);
      if (n.op == OpKind::Matmul && absorbsElsewhere(g, sole, u, cur)) break;
      if (channelsLast && un.operands.size() == 2 && un.operands[0] != un.operands[1] &&
          !channelsLastOperandFits(g, un.operands[0] == cur ? un.operands[1] : un.operands[0], un.op, n.type,
                                   fullAddSeen))
        break;
      chain.push_back(u);
      cur = u;
    }
    if (chain.size() < 2) continue;
    for (ValueId m : chain) taken[static_cast<size_t>(m)] = true;
    chains.push_back(std::move(chain));
  }
  return chains;
}

/// `fused_` and the distinct ops of the chain in order, e.g. fused_conv_add_maximum.
std::string bodyName(const Graph& g, const std::vector<ValueId>& chain) {
  std::vector<std::string> ops;
  for (ValueId m : chain) {
    std::string op(ir::opName(g.node(m).op));
    if (std::find(ops.begin(), ops.end(), op) == ops.end()) ops.push_back(op);
  }
  std::string name = "fused";
  for (const auto& op : ops) name += "_" + op;
  return name;
}

/// A fused node's body under construction: outer values mapped to body values.
class BodyBuilder {
 public:
  BodyBuilder(const Graph& g, const std::vector<ValueId>& chain) : g_(g), body_(bodyName(g, chain)) {
    for (ValueId m : chain) {
      taken_.insert(g.node(m).name);
      for (ValueId o : g.node(m).operands) takeNames(o);
    }
  }

  /// The body value of outer value `v`: a copy of a small constant, or an input (added, with
  /// `v` appended to `operands`, on first use).
  ValueId valueOf(ValueId v, std::vector<ValueId>& operands) {
    if (auto it = local_.find(v); it != local_.end()) return it->second;
    if (isSmallConstant(g_, v)) {
      Node copy = g_.node(v);
      for (ValueId& o : copy.operands) o = valueOf(o, operands);
      return local_[v] = body_.addNode(std::move(copy));
    }
    return addInput(v, operands);
  }

  /// A new input for outer value `v` (even when `v` already has one), appended to `operands`.
  ValueId addInput(ValueId v, std::vector<ValueId>& operands) {
    std::string name = "in" + std::to_string(operands.size());
    while (taken_.count(name)) name += "_";
    operands.push_back(v);
    ValueId in = body_.addInput(name, g_.type(v));
    local_.emplace(v, in);
    return in;
  }

  /// Adds `node` (already in body terms) as the copy of outer value `m`.
  ValueId copyAs(ValueId m, Node node) { return local_[m] = body_.addNode(std::move(node)); }

  /// Copies chain node `m` with its operands mapped.
  ValueId copyNode(ValueId m, std::vector<ValueId>& operands) {
    Node copy = g_.node(m);
    for (ValueId& o : copy.operands) o = valueOf(o, operands);
    return local_[m] = body_.addNode(std::move(copy));
  }

  /// The finished body returning `out`.
  Graph finish(ValueId out) {
    body_.addOutput("out", out);
    return std::move(body_);
  }

 private:
  /// Reserves the name of `v` and of the constants a copy of it would bring along.
  void takeNames(ValueId v) {
    taken_.insert(g_.node(v).name);
    if (isSmallConstant(g_, v))
      for (ValueId o : g_.node(v).operands) takeNames(o);
  }

  const Graph& g_;
  Graph body_;
  std::set<std::string> taken_;
  std::map<ValueId, ValueId> local_;
};

/// The fused node of `chain` (step 3), its operands being outer values (mapped by the caller).
Node fusedNode(const Graph& g, const std::vector<ValueId>& chain) {
  const Node& contraction = g.node(chain.front());
  BodyBuilder builder(g, chain);
  Node fused;
  fused.op = OpKind::Fused;
  // The contraction reads dedicated inputs 0 and 1 (the lowering expects them there).
  Node copy = contraction;
  copy.operands = {builder.addInput(contraction.operands.at(0), fused.operands),
                   builder.addInput(contraction.operands.at(1), fused.operands)};
  ValueId last = builder.copyAs(chain.front(), std::move(copy));
  for (size_t i = 1; i < chain.size(); ++i) last = builder.copyNode(chain[i], fused.operands);
  fused.attrs["kind"] = std::string(contraction.op == OpKind::Matmul ? "matmul" : "conv");
  fused.type = g.node(chain.back()).type;
  fused.loc = g.node(chain.back()).loc;
  fused.body = std::make_shared<const Graph>(builder.finish(last));
  return fused;
}

/// fuse-epilogues, with GELUs after matmuls absorbed or not (`gelu`).
bool fuseChains(Graph& g, bool gelu) {
  std::vector<std::vector<ValueId>> chains = findChains(g, gelu);
  if (chains.empty()) return false;
  std::vector<int> chainEndingAt(static_cast<size_t>(g.size()), -1);
  std::vector<bool> absorbed(static_cast<size_t>(g.size()), false);
  for (size_t i = 0; i < chains.size(); ++i) {
    for (ValueId m : chains[i]) absorbed[static_cast<size_t>(m)] = true;
    chainEndingAt[static_cast<size_t>(chains[i].back())] = static_cast<int>(i);
  }
  Rewriter rw(g);
  for (ValueId v = 0; v < g.size(); ++v) {
    rw.begin(v);
    int chain = chainEndingAt[static_cast<size_t>(v)];
    if (chain >= 0) {
      Node fused = fusedNode(g, chains[static_cast<size_t>(chain)]);
      for (ValueId& o : fused.operands) o = rw.map(o);
      rw.replace(v, rw.target().addNode(std::move(fused)));
    } else if (!absorbed[static_cast<size_t>(v)]) {
      rw.copy(v);
    }
  }
  g = rw.finish();
  return true;
}

}  // namespace

bool fuseEpilogues(Graph& g) { return fuseChains(g, true); }

bool fuseEpiloguesLeavingGelu(Graph& g) { return fuseChains(g, false); }

}  // namespace weft::passes
