// masked-contractions: a matmul whose work is partly multiplied away computes only the rest.
// A constant mask that zeroes every s-th column (RealNVP's coupling layers keep one parity
// class of the features: x * m, and (1 - m) * ... on the other side) leaves structure in
// the products around it:
//  - contraction indices where an operand is known zero (x m @ W): contract only the others,
//    slicing both operands (x m [:, r::s] @ W[r::s, :]);
//  - result columns nothing reads, or known zero (t @ W then * (1 - m); a weight gradient
//    h^T dy where dy is masked): compute only the others and pad the zeros back in;
//  - result rows known zero (x m)^T dy: likewise, over the rows.
// Each reduced axis must keep one residue class r mod s (s >= 2) of its extent, so that a
// strided slice takes it and a reshape and pad put the result back; each halves (or more)
// the matmul's work. The facts, per value and over its last axis only:
//  - column constants: values constant along all other axes (the masks, 1 - m), followed
//    through reshapes, broadcasts and elementwise arithmetic;
//  - zero columns: from a column constant's zeros, through mul (either operand's), add and
//    sub (both operands'), neg and a matmul's right operand;
//  - needed columns, backwards from the outputs and state updates: an elementwise op needs
//    of its operand the columns its result needs (mul not those the other operand zeroes);
//    a matmul's right operand the columns of its result that are needed; anything else all.
// x * 0 counts as 0 here, as in the masks' intent (an inf or NaN in a masked column would
// otherwise make NaNs the model never meant).
#include <optional>
#include <vector>

#include "ir/attrs.h"
#include "ir/tensor_data.h"
#include "passes/builtin_passes.h"
#include "passes/rewriter.h"

namespace weft::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::Shape;
using ir::ValueId;
using Columns = std::vector<bool>;

/// The largest constant whose columns are read.
constexpr int64_t kMaxConstantElements = int64_t{1} << 20;
/// The longest last axis whose columns are tracked (facts of longer ones are unknown).
constexpr int64_t kMaxColumns = int64_t{1} << 16;

int64_t lastDim(const Graph& g, ValueId v) {
  const Shape& s = g.type(v).shape;
  return s.empty() ? 1 : s.back();
}

/// What is known of one value's last axis.
struct ColumnFacts {
  std::vector<double> constants;  ///< per column, when constant along the other axes; size 1: all columns alike
  Columns zero;                   ///< per column: known zero (empty: none known)
};

/// The per-column values of constant node `n`, when it is constant along all but its last axis.
std::vector<double> constantColumns(const Node& n) {
  auto it = n.attrs.find("value");
  const auto* data = it == n.attrs.end() ? nullptr : std::get_if<ir::TensorDataPtr>(&it->second);
  if (!data || !*data || (*data)->bytes.size() != (*data)->type.byteSize()) return {};
  const ir::TensorData& t = **data;
  if (t.numel() == 0 || t.numel() > kMaxConstantElements) return {};
  const int64_t width = t.type.shape.empty() ? 1 : t.type.shape.back();
  std::vector<double> row;
  for (int64_t j = 0; j < width; ++j) row.push_back(t.get(j));
  for (int64_t i = width; i < t.numel(); ++i)
    if (t.get(i) != row[static_cast<size_t>(i % width)]) return {};
  return row;
}

class Analysis {
 public:
  explicit Analysis(const Graph& g) : g_(g), facts_(static_cast<size_t>(g.size())), needed_(static_cast<size_t>(g.size())) {
    for (ValueId v = 0; v < g.size(); ++v) facts_[static_cast<size_t>(v)] = forward(v);
    for (ValueId v = 0; v < g.size(); ++v)
      if (tracked(v)) needed_[static_cast<size_t>(v)] = Columns(static_cast<size_t>(lastDim(g, v)), false);
    for (const ir::Output& o : g.outputs()) needAll(o.value);
    for (const ir::StateUpdate& u : g.updates()) needAll(u.value);
    for (ValueId v = g.size() - 1; v >= 0; --v) backward(v);
  }

  /// The last-axis columns of `v` known zero (all false when none are).
  Columns zero(ValueId v) const {
    const ColumnFacts& f = facts_[static_cast<size_t>(v)];
    const auto width = static_cast<size_t>(lastDim(g_, v));
    Columns z = f.zero.empty() ? Columns(width, false) : f.zero;
    if (!f.constants.empty())
      for (size_t j = 0; j < width; ++j) z[j] = z[j] || f.constants[f.constants.size() == 1 ? 0 : j] == 0.0;
    return z;
  }
  /// The last-axis columns of `v` some output or update depends on.
  const Columns& needed(ValueId v) const { return needed_[static_cast<size_t>(v)]; }

 private:
  /// True when operand `o` of a node with result `v` has v's last axis (not broadcast along it).
  bool sameColumns(ValueId o, ValueId v) const {
    return !g_.type(o).shape.empty() && !g_.type(v).shape.empty() && lastDim(g_, o) == lastDim(g_, v);
  }

  /// True when the columns of `v` are tracked.
  bool tracked(ValueId v) const { return lastDim(g_, v) <= kMaxColumns; }

  ColumnFacts forward(ValueId v) {
    const Node& n = g_.node(v);
    ColumnFacts f;
    if ((n.type.dtype != ir::DType::f32 && n.type.dtype != ir::DType::f64) || !tracked(v)) return f;
    const auto width = static_cast<size_t>(lastDim(g_, v));
    auto of = [&](ValueId o) -> const ColumnFacts& { return facts_[static_cast<size_t>(o)]; };
    switch (n.op) {
      case OpKind::Constant: f.constants = constantColumns(n); return f;
      case OpKind::Reshape:
      case OpKind::Broadcast: {
        const ValueId x = n.operands[0];
        if (sameColumns(x, v)) return of(x);
        if (g_.type(x).numel() == 1 && of(x).constants.size() == 1) f.constants = of(x).constants;
        return f;
      }
      case OpKind::Neg:
        if (!of(n.operands[0]).constants.empty())
          for (double c : of(n.operands[0]).constants) f.constants.push_back(-c);
        f.zero = zero(n.operands[0]);
        return f;
      case OpKind::Add:
      case OpKind::Sub:
      case OpKind::Mul: {
        const ValueId a = n.operands[0], b = n.operands[1];
        const std::vector<double>&ca = of(a).constants, &cb = of(b).constants;
        if (!ca.empty() && !cb.empty() && (ca.size() == 1 || ca.size() == width) && (cb.size() == 1 || cb.size() == width)) {
          const size_t count = std::max(ca.size(), cb.size());
          for (size_t j = 0; j < count; ++j) {
            const double x = ca[ca.size() == 1 ? 0 : j], y = cb[cb.size() == 1 ? 0 : j];
            f.constants.push_back(n.op == OpKind::Add ? x + y : n.op == OpKind::Sub ? x - y : x * y);
          }
        }
        const Columns za = zeroOf(a, v), zb = zeroOf(b, v);
        f.zero = Columns(width, false);
        for (size_t j = 0; j < width; ++j) f.zero[j] = n.op == OpKind::Mul ? za[j] || zb[j] : za[j] && zb[j];
        return f;
      }
      case OpKind::Matmul: {
        const ValueId rhs = n.operands[1];
        if (ir::AttrReader(n.attrs, n.op).i("transpose_rhs", 0) == 0 && sameColumns(rhs, v)) f.zero = zero(rhs);
        return f;
      }
      default: return f;
    }
  }

  void needAll(ValueId v) { needed_[static_cast<size_t>(v)].assign(needed_[static_cast<size_t>(v)].size(), true); }

  void backward(ValueId v) {
    const Node& n = g_.node(v);
    const Columns& result = needed_[static_cast<size_t>(v)];
    bool any = !tracked(v);  // an untracked value counts as needed
    for (bool b : result) any = any || b;
    if (!any) return;  // nothing depends on v
    const bool elementwise = ir::opInfo(n.op).has(ir::kElementwise) || n.op == OpKind::Reshape || n.op == OpKind::Broadcast;
    const bool plainRhs = n.op == OpKind::Matmul && ir::AttrReader(n.attrs, n.op).i("transpose_rhs", 0) == 0;
    for (size_t i = 0; i < n.operands.size(); ++i) {
      const ValueId o = n.operands[i];
      Columns& mine = needed_[static_cast<size_t>(o)];
      const bool columnwise = (elementwise || (plainRhs && i == 1)) && sameColumns(o, v) && tracked(v);
      if (!columnwise) {
        mine.assign(mine.size(), true);
        continue;
      }
      Columns masked(result.size(), false);
      if (n.op == OpKind::Mul && n.operands.size() == 2) masked = zeroOf(n.operands[1 - i], v);
      for (size_t j = 0; j < mine.size(); ++j) mine[j] = mine[j] || (result[j] && !masked[j]);
    }
  }

  /// Operand `o`'s zero columns as the columns of node `v`'s result (a single broadcast
  /// column: all or none).
  Columns zeroOf(ValueId o, ValueId v) const {
    if (sameColumns(o, v)) return zero(o);
    const ColumnFacts& f = facts_[static_cast<size_t>(o)];
    return Columns(static_cast<size_t>(lastDim(g_, v)), f.constants.size() == 1 && f.constants[0] == 0.0);
  }

  const Graph& g_;
  std::vector<ColumnFacts> facts_;
  std::vector<Columns> needed_;
};

/// The indices an axis keeps: one residue class r mod s.
struct Residues {
  int64_t r = 0, s = 1;
};

/// The residue class `kept` (per index) is, when it is one with s >= 2 (nullopt otherwise).
std::optional<Residues> residueClass(const Columns& kept) {
  std::vector<int64_t> at;
  for (size_t j = 0; j < kept.size(); ++j)
    if (kept[j]) at.push_back(static_cast<int64_t>(j));
  const auto extent = static_cast<int64_t>(kept.size());
  if (at.size() < 2) return std::nullopt;  // all dropped (or one left): leave such matmuls alone
  const Residues c{at[0], at[1] - at[0]};
  if (c.s < 2 || c.r >= c.s || extent % c.s != 0 || static_cast<int64_t>(at.size()) != extent / c.s) return std::nullopt;
  for (size_t k = 0; k < at.size(); ++k)
    if (at[k] != c.r + static_cast<int64_t>(k) * c.s) return std::nullopt;
  return c;
}

Columns complement(const Columns& c) {
  Columns out(c.size());
  for (size_t j = 0; j < c.size(); ++j) out[j] = !c[j];
  return out;
}

/// Every `s`-th index of axis `axis` of `x`, from `r` on.
ValueId sliceAxis(Emitter& e, ValueId x, size_t axis, const Residues& c) {
  const Shape s = e.shape(x);
  std::vector<int64_t> start(s.size(), 0), limit = s, stride(s.size(), 1);
  start[axis] = c.r;
  stride[axis] = c.s;
  return e.op(OpKind::Slice, {x}, {{"start", start}, {"limit", limit}, {"stride", stride}});
}

/// `x` [..., m, ...] with axis `axis` spread back to m * s: index k goes to r + k s, zeros between.
ValueId spreadAxis(Emitter& e, ValueId x, size_t axis, const Residues& c) {
  Shape s = e.shape(x), split = s, full = s;
  split.insert(split.begin() + static_cast<std::ptrdiff_t>(axis) + 1, 1);
  full[axis] *= c.s;
  std::vector<int64_t> low(split.size(), 0), high(split.size(), 0);
  low[axis + 1] = c.r;
  high[axis + 1] = c.s - 1 - c.r;
  ValueId padded = e.op(OpKind::Pad, {e.reshape(x, split)}, {{"low", low}, {"high", high}, {"value", 0.0}});
  return e.reshape(padded, full);
}

}  // namespace

bool maskContractions(Graph& g) {
  const Analysis facts(g);
  return rewriteNodes(g, [&](Rewriter& rw, ValueId v) -> std::optional<ValueId> {
    const Node& n = rw.source().node(v);
    if (n.op != OpKind::Matmul || n.type.dtype != ir::DType::f32 || n.type.rank() != 2) return std::nullopt;
    const ValueId a = n.operands[0], b = n.operands[1];
    if (g.type(a).rank() != 2 || g.type(b).rank() != 2) return std::nullopt;
    for (ValueId x : {a, b})
      for (int64_t d : g.type(x).shape)
        if (d > kMaxColumns) return std::nullopt;
    ir::AttrReader attr(n.attrs, n.op);
    const bool tl = attr.i("transpose_lhs", 0) != 0, tr = attr.i("transpose_rhs", 0) != 0;
    const Shape& out = n.type.shape;
    const int64_t k = g.type(a).shape[tl ? 0 : 1];
    // Contraction indices: zero in the lhs (its last axis when not transposed) or the rhs
    // (its last axis when transposed).
    Columns zeroK(static_cast<size_t>(k), false);
    if (!tl) zeroK = facts.zero(a);
    if (tr) {
      const Columns zb = facts.zero(b);
      for (size_t j = 0; j < zeroK.size(); ++j) zeroK[j] = zeroK[j] || zb[j];
    }
    const Columns zeroM = tl ? facts.zero(a) : Columns(static_cast<size_t>(out[0]), false);
    Columns dropN = complement(facts.needed(v));
    if (!tr) {
      const Columns zb = facts.zero(b);
      for (size_t j = 0; j < dropN.size(); ++j) dropN[j] = dropN[j] || zb[j];
    }
    const auto onK = residueClass(complement(zeroK)), onM = residueClass(complement(zeroM)),
               onN = residueClass(complement(dropN));
    if (!onK && !onM && !onN) return std::nullopt;
    Emitter e = rw.emitterFor(v);
    ValueId lhs = rw.map(a), rhs = rw.map(b);
    if (onK) {
      lhs = sliceAxis(e, lhs, tl ? 0 : 1, *onK);
      rhs = sliceAxis(e, rhs, tr ? 1 : 0, *onK);
    }
    if (onM) lhs = sliceAxis(e, lhs, tl ? 1 : 0, *onM);
    if (onN) rhs = sliceAxis(e, rhs, tr ? 0 : 1, *onN);
    ValueId product = e.op(OpKind::Matmul, {lhs, rhs}, n.attrs);
    if (onN) product = spreadAxis(e, product, 1, *onN);
    if (onM) product = spreadAxis(e, product, 0, *onM);
    return product;
  });
}

}  // namespace weft::passes
