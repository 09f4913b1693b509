// The facts of ir/triangle_facts.h: one forward sweep over the nodes, each computing its
// facts from its operands'. Elementwise ops combine their operands' facts part by part (an
// operand whose last two dims are not the result's gives one fact for both parts); a
// reshape or broadcast that keeps the last two dims keeps the parts; anything else (a
// reduction, a matmul, a movement) gives one fact for the whole result.
#include "ir/triangle_facts.h"

#include <cmath>
#include <initializer_list>

#include "ir/attrs.h"
#include "ir/ops.h"

namespace weft::ir {
namespace {

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

/// True when values of shape `a` and `b` index their entries' diagonal sides alike: both
/// have a diagonal of one size.
bool sameDiagonal(const Shape& a, const Shape& b) {
  return hasDiagonal(a) && hasDiagonal(b) && a.back() == b.back();
}

/// The fact of a constant: Zero or MinusInf for one such element, Unbounded for another
/// infinity or NaN, else Anything.
Known constantFact(const Node& n) {
  const TensorDataPtr& value = AttrReader(n.attrs, n.op).tensor("value");
  if (!value || !isFloat(n.type.dtype)) return Known::Anything;
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
  for (int64_t axis : AttrReader(n.attrs, n.op).ints("axes"))
    if (axis == rank - 1 || axis == rank - 2) return true;
  return false;
}

}  // namespace

bool isTaint(Known k) { return k == Known::Tainted || k == Known::TaintedUnbounded; }
bool isFinite(Known k) { return k != Known::Unbounded && k != Known::TaintedUnbounded && k != Known::MinusInf; }

/// True when `shape` has a diagonal: rank >= 2, the last two dims equal.
bool hasDiagonal(const ir::Shape& shape) {
  return shape.size() >= 2 && shape[shape.size() - 1] == shape[shape.size() - 2] && shape.back() > 1;
}

std::vector<Fact> triangleFacts(const Graph& g, const std::vector<bool>& tainted) {
  std::vector<Fact> facts(g.size());
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    const Shape& shape = n.type.shape;
    Fact& f = facts[static_cast<size_t>(v)];
    // An operand's fact as this node sees it: by part where the diagonals match, else one fact.
    auto seen = [&](ValueId o) {
      const Fact& of = facts[static_cast<size_t>(o)];
      return sameDiagonal(g.type(o).shape, shape) ? of : uniform(join(of.above, of.rest));
    };
    if (n.op == OpKind::Constant) {
      f = uniform(constantFact(n));
    } else if (n.op == OpKind::Iota) {
      const int64_t axis = AttrReader(n.attrs, n.op).i("axis"), rank = static_cast<int64_t>(shape.size());
      const bool integer = n.type.dtype == DType::i32 || n.type.dtype == DType::i64;
      Known k = !hasDiagonal(shape) || !integer ? Known::Anything
                : axis == rank - 1  ? Known::Column
                : axis == rank - 2  ? Known::Row
                                    : Known::Anything;
      f = uniform(k);
    } else if (opInfo(n.op).has(kElementwise)) {
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

bool rowsStopAtDiagonal(const Graph& rows) {
  if (rows.outputs().empty()) return false;
  const Shape& shape = rows.type(rows.outputs()[0].value).shape;
  if (!hasDiagonal(shape)) return false;
  const std::vector<Fact> facts = triangleFacts(rows, std::vector<bool>(static_cast<size_t>(rows.size()), false));
  for (const Output& out : rows.outputs())
    if (rows.type(out.value).shape != shape || facts[static_cast<size_t>(out.value)].above != Known::Zero) return false;
  for (ValueId v = 0; v < rows.size(); ++v) {
    const Node& n = rows.node(v);
    if (n.op != OpKind::ReduceSum && n.op != OpKind::ReduceMax && n.op != OpKind::ReduceMin) continue;
    const Known identity = n.op == OpKind::ReduceSum ? Known::Zero : n.op == OpKind::ReduceMax ? Known::MinusInf
                                                                                             : Known::Anything;
    const ValueId o = n.operands[0];
    if (identity == Known::Anything || rows.type(o).shape != shape || facts[static_cast<size_t>(o)].above != identity)
      return false;
  }
  return true;
}

}  // namespace weft::ir
