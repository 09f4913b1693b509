// triangular-matmuls: finds the matmuls of causal attention whose work is half wasted and
// says so on them (the matmul hints lhs_zeros and needed, ir/ops.def), for the CPU backend
// to skip those blocks:
//  - the scores q k^T and the probabilities' gradient dy v^T: their entries above the
//    diagonal are masked away by what reads them (needed="lower");
//  - probabilities @ v, their gradients' products with k and q, and the transposed ones:
//    the lhs is zero above (or, transposed, below) its diagonal (lhs_zeros).
//
// An abstract interpretation over the graph (before fusion: plain nodes) tracks, for every
// value whose last two dims are square, what its entries above the diagonal are, and what
// the others are: zero, -inf, a mask (column > row), or anything. Iotas along the last two
// dims compared column > row make the mask; select by it, exp(-inf - x), 0 * x and 0 / x
// carry the zeros. Values are assumed finite (x * 0 = 0), as the masks of attention assume.
// A matmul result with square last dims is a candidate for needed="lower": its entries
// above the diagonal become "tainted", taint flows through every op (except where a mask
// selects or a zero multiplies it), and the candidate is kept when no output or state
// update is tainted. Candidates are taken in node order, each tried with those kept before
// it, so that the kept ones hold together; lhs_zeros is then read off the final facts.
#include "passes/builtin_passes.h"

#include <cmath>
#include <vector>

#include "ir/attrs.h"
#include "ir/ops.h"

namespace weft::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

/// What a part of a value (its entries above the diagonal, or the others) is known to hold.
enum class Known : uint8_t {
  Anything,          ///< finite values, not known further
  Unbounded,         ///< any values, infinities and NaN among them
  Tainted,           ///< finite values that depend on a candidate's entries above its diagonal
  TaintedUnbounded,  ///< depends on them and may be infinite (1 / x, where the CPU step writes x = 0)
  Zero,
  MinusInf,
  True,              ///< booleans
  False,
  Column,            ///< an integer iota along the last dim
  Row,               ///< an integer iota along the second last dim
};

bool isTaint(Known k) { return k == Known::Tainted || k == Known::TaintedUnbounded; }
bool isFinite(Known k) { return k != Known::Unbounded && k != Known::TaintedUnbounded && k != Known::MinusInf; }

/// Facts about one value: its entries strictly above the diagonal of its last two dims, and
/// the others. Values whose last two dims are not square hold the same fact in both.
struct Fact {
  Known above = Known::Anything, rest = Known::Anything;
};

/// What a value computed from values of facts `in` (by an op with no rule of its own) holds.
Known combine(std::initializer_list<Known> in) {
  bool taint = false, finite = true;
  for (Known k : in) {
    taint = taint || isTaint(k);
    finite = finite && isFinite(k);
  }
  return taint ? (finite ? Known::Tainted : Known::TaintedUnbounded) : finite ? Known::Anything : Known::Unbounded;
}

/// The one fact covering both parts.
Known join(Known a, Known b) { return a == b ? a : combine({a, b}); }

Fact uniform(Known k) { return {k, k}; }

/// True when `shape` has a diagonal: rank >= 2, the last two dims equal.
bool hasDiagonal(const ir::Shape& shape) {
  return shape.size() >= 2 && shape[shape.size() - 1] == shape[shape.size() - 2] && shape.back() > 1;
}

/// True when values of shape `a` and `b` index their entries' diagonal sides alike: both
/// have a diagonal of one size.
bool sameDiagonal(const ir::Shape& a, const ir::Shape& b) {
  return hasDiagonal(a) && hasDiagonal(b) && a.back() == b.back();
}

/// The fact of a constant: Zero or MinusInf for one such element, Unbounded for another
/// infinity or NaN, else Anything.
Known constantFact(const Node& n) {
  const ir::TensorDataPtr& value = ir::AttrReader(n.attrs, n.op).tensor("value");
  if (!value || !ir::isFloat(n.type.dtype)) return Known::Anything;
  bool finite = true;
  for (int64_t i = 0; i < value->numel(); ++i) finite = finite && std::isfinite(value->get(i));
  if (value->numel() != 1) return finite ? Known::Anything : Known::Unbounded;
  const double x = value->get(0);
  return x == 0 ? Known::Zero : x == -INFINITY ? Known::MinusInf : finite ? Known::Anything : Known::Unbounded;
}

/// The fact of one part of an elementwise result (the entries above the diagonal when
/// `above`, else the others) from its operands' facts of that part. 0 * x and -inf + x need
/// x finite; 0 / x takes x != 0 (a softmax's sum); ops with a pole at 0 make a tainted value
/// unbounded, since the CPU step writes the skipped entries as 0.
Known elementwise(OpKind op, const std::vector<Known>& in, bool above) {
  auto is = [&](size_t i, Known k) { return in.size() > i && in[i] == k; };
  auto finite = [&](size_t i) { return in.size() > i && isFinite(in[i]); };
  Known other = in.empty() ? Known::Anything : in[0];
  for (Known k : in) other = join(other, k);
  switch (op) {
    case OpKind::Gt:  // column > row
      if (is(0, Known::Column) && is(1, Known::Row)) return above ? Known::True : Known::False;
      break;
    case OpKind::Lt:  // row < column
      if (is(0, Known::Row) && is(1, Known::Column)) return above ? Known::True : Known::False;
      break;
    case OpKind::Select:
      if (is(0, Known::True)) return in[1];
      if (is(0, Known::False)) return in[2];
      if (in[1] == in[2] && !isTaint(in[0])) return in[1];
      break;
    case OpKind::Mul:
      if ((is(0, Known::Zero) && finite(1)) || (is(1, Known::Zero) && finite(0))) return Known::Zero;
      break;
    case OpKind::Div:
      if (is(0, Known::Zero) && is(1, Known::Anything)) return Known::Zero;
      if (isTaint(in[1])) return Known::TaintedUnbounded;
      break;
    case OpKind::Add:
      if (is(0, Known::Zero) && is(1, Known::Zero)) return Known::Zero;
      if ((is(0, Known::MinusInf) && (finite(1) || is(1, Known::MinusInf))) || (is(1, Known::MinusInf) && finite(0)))
        return Known::MinusInf;
      break;
    case OpKind::Sub:
      if (is(0, Known::Zero) && is(1, Known::Zero)) return Known::Zero;
      if (is(0, Known::MinusInf) && finite(1)) return Known::MinusInf;
      break;
    case OpKind::Neg:
    case OpKind::Cast:
    case OpKind::StopGradient:
      if (is(0, Known::Zero)) return Known::Zero;
      break;
    case OpKind::Exp:
      if (is(0, Known::MinusInf)) return Known::Zero;
      break;
    case OpKind::Log:
    case OpKind::Rsqrt:
    case OpKind::Pow:
      if (isTaint(other)) return Known::TaintedUnbounded;
      break;
    default: break;
  }
  // Operands of one known kind say nothing more of the result (-x for x = -inf is +inf).
  if (other == Known::MinusInf) return Known::Unbounded;
  return other == Known::Zero || other == Known::True || other == Known::False || other == Known::Column ||
                 other == Known::Row
             ? Known::Anything
             : other;
}

/// True when node `n`, a reduce_max of `o` (facts `of`), is finite: it reduces rows or
/// columns of the last two dims, each of which holds a finite entry (its diagonal one).
bool finiteMaximum(const Graph& g, const Node& n, ValueId o, const Fact& of) {
  if (n.op != OpKind::ReduceMax || !hasDiagonal(g.type(o).shape) || !isFinite(of.rest) || isTaint(of.above))
    return false;
  const int64_t rank = static_cast<int64_t>(g.type(o).rank());
  for (int64_t axis : ir::AttrReader(n.attrs, n.op).ints("axes"))
    if (axis == rank - 1 || axis == rank - 2) return true;
  return false;
}

/// The facts of every value of `g` when the values in `tainted` have tainted entries above
/// their diagonals.
std::vector<Fact> propagate(const Graph& g, const std::vector<bool>& tainted) {
  std::vector<Fact> facts(g.size());
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    const ir::Shape& shape = n.type.shape;
    Fact& f = facts[static_cast<size_t>(v)];
    // An operand's fact as this node sees it: by part where the diagonals match, else one fact.
    auto seen = [&](ValueId o) {
      const Fact& of = facts[static_cast<size_t>(o)];
      return sameDiagonal(g.type(o).shape, shape) ? of : uniform(join(of.above, of.rest));
    };
    if (n.op == OpKind::Constant) {
      f = uniform(constantFact(n));
    } else if (n.op == OpKind::Iota) {
      const int64_t axis = ir::AttrReader(n.attrs, n.op).i("axis"), rank = static_cast<int64_t>(shape.size());
      const bool integer = n.type.dtype == ir::DType::i32 || n.type.dtype == ir::DType::i64;
      Known k = !hasDiagonal(shape) || !integer ? Known::Anything
                : axis == rank - 1  ? Known::Column
                : axis == rank - 2  ? Known::Row
                                    : Known::Anything;
      f = uniform(k);
    } else if (ir::opInfo(n.op).has(ir::kElementwise)) {
      std::vector<Known> above, rest;
      for (ValueId o : n.operands) {
        Fact of = seen(o);
        above.push_back(of.above);
        rest.push_back(of.rest);
      }
      f = {elementwise(n.op, above, true), elementwise(n.op, rest, false)};
    } else if ((n.op == OpKind::Reshape || n.op == OpKind::Broadcast) && !n.operands.empty() &&
               sameDiagonal(g.type(n.operands[0]).shape, shape)) {
      f = facts[static_cast<size_t>(n.operands[0])];  // the last two dims stay: so do the entries' sides
    } else {  // one fact for the whole result: a reduction, a matmul, a movement
      Known k = Known::Anything;
      for (ValueId o : n.operands) {
        const Fact& of = facts[static_cast<size_t>(o)];
        k = combine({k, finiteMaximum(g, n, o, of) ? Known::Anything : join(of.above, of.rest)});
      }
      f = uniform(k);
    }
    if (tainted[static_cast<size_t>(v)]) f.above = Known::Tainted;
  }
  return facts;
}

/// True when no output or state update of `g` depends on a tainted entry.
bool outputsClean(const Graph& g, const std::vector<Fact>& facts) {
  auto clean = [&](ValueId v) {
    const Fact& f = facts[static_cast<size_t>(v)];
    return !isTaint(f.above) && !isTaint(f.rest);
  };
  for (const ir::Output& o : g.outputs())
    if (!clean(o.value)) return false;
  for (const ir::StateUpdate& u : g.updates())
    if (!clean(u.value)) return false;
  return true;
}

bool isPlainMatmul(const Node& n) {
  return n.op == OpKind::Matmul && n.type.dtype == ir::DType::f32 && !n.attrs.count("needed") &&
         !n.attrs.count("lhs_zeros");
}

}  // namespace

bool markTriangularMatmuls(Graph& g) {
  std::vector<bool> kept(static_cast<size_t>(g.size()), false);
  bool changed = false;
  for (ValueId v = 0; v < g.size(); ++v) {
    if (!isPlainMatmul(g.node(v)) || !hasDiagonal(g.type(v).shape)) continue;
    std::vector<bool> tried = kept;
    tried[static_cast<size_t>(v)] = true;
    if (outputsClean(g, propagate(g, tried))) kept = std::move(tried);
  }
  const std::vector<Fact> facts = propagate(g, kept);
  std::vector<bool> plain(static_cast<size_t>(g.size()), false);
  for (ValueId v = 0; v < g.size(); ++v) plain[static_cast<size_t>(v)] = isPlainMatmul(g.node(v));
  for (ValueId v = 0; v < g.size(); ++v) {
    Node& n = g.node(v);
    if (!plain[static_cast<size_t>(v)]) continue;
    if (kept[static_cast<size_t>(v)]) {
      n.attrs["needed"] = std::string("lower");
      changed = true;
    }
    const ValueId lhs = n.operands.at(0);
    if (hasDiagonal(g.type(lhs).shape) && facts[static_cast<size_t>(lhs)].above == Known::Zero) {
      const bool transposed = ir::AttrReader(n.attrs, n.op).i("transpose_lhs", 0) != 0;
      n.attrs["lhs_zeros"] = std::string(transposed ? "lower" : "upper");
      changed = true;
    }
  }
  return changed;
}

}  // namespace weft::passes
