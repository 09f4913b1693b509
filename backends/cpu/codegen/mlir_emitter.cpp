// Emission of a kernel's MLIR (scf loops, memref loads/stores, arith and math ops).
//
// Algorithm: the loops of the plan are built first (a loop kernel that interleaves a value
// with padding along its rows unrolls its innermost loop by that factor: interleaveFactor);
// then the root value is evaluated at the loop indices by a recursive walk from the root to
// the sources. Each value is evaluated "at an index": an affine map from index values (the
// loop variables, at first) to the value's own coordinates. Movement ops only compose their
// map into the index (broadcast: 0 for broadcast dimensions; transpose: a permutation; slice:
// start + i * stride; reshape: per group of dimensions whose extents multiply to the same
// product, linearize on one side and delinearize on the other); pad and concat materialize
// the index, clamp it into their operand and select the pad value / the operand that owns the
// position. Sources load from their buffer at the composed index (inputs, dense constants as
// memref.globals) or compute it (scalar constants, iota). Elementwise ops evaluate their
// operands at the broadcast index and apply the scalar op (mlir_scalar_ops.h); results are
// memoized per (value, map, index values), so a value read twice at the same index is
// computed once. f32 math stays in the math dialect, to be
// replaced by polynomial approximations before lowering, so that the loops vectorize.
#include "backends/cpu/codegen/mlir_emitter.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "backends/cpu/codegen/mlir_scalar_ops.h"
#include "ir/error.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace weft::cpu::codegen {
namespace {

using ir::DType;
using ir::OpKind;
using ir::Shape;
using ir::ValueId;
using mlir::AffineExpr;
using mlir::AffineMap;
using mlir::Value;
namespace arith = mlir::arith;
namespace memref = mlir::memref;
namespace scf = mlir::scf;

/// A position in a value: `map` takes `dims` to the value's coordinates.
struct Index {
  AffineMap map;
  llvm::SmallVector<Value, 6> dims;
};

/// Builds one kernel function.
class KernelEmitter {
 public:
  KernelEmitter(mlir::ModuleOp module, const ir::Graph& g, const KernelPlan& plan, std::string name)
      : ctx_(module.getContext()), b_(ctx_), loc_(b_.getUnknownLoc()), ops_(b_, loc_), module_(module), g_(g),
        plan_(plan), name_(std::move(name)) {}

  void emit() {
    const ir::TensorType& outType = g_.type(g_.outputs()[0].value);
    llvm::SmallVector<mlir::Type> args = {memrefType(outType.dtype, shapeOf(outType))};
    std::vector<ValueId> inputs = g_.inputs();
    for (ValueId v : inputs) args.push_back(memrefType(g_.type(v).dtype, shapeOf(v)));
    for (size_t k = 1; k < g_.outputs().size(); ++k) {
      ValueId extra = g_.outputs()[k].value;
      args.push_back(memrefType(g_.type(extra).dtype, shapeOf(extra)));
    }
    args.push_back(b_.getIndexType());
    args.push_back(b_.getIndexType());
    b_.setInsertionPointToEnd(module_.getBody());
    function_ = b_.create<mlir::func::FuncOp>(loc_, name_, b_.getFunctionType(args, {}));
    // No buffer is written through one argument and read through another at a different
    // element: the result may share an input's buffer (planMemory's in-place values), but
    // such a kernel reads that input only at the element it writes. Without this, LLVM's
    // vectorizer guards each loop with overlap checks and runs shared buffers scalar.
    const auto pointers = static_cast<unsigned>(inputs.size() + g_.outputs().size());
    for (unsigned i = 0; i < pointers; ++i) function_.setArgAttr(i, "llvm.noalias", b_.getUnitAttr());
    mlir::Block* entry = function_.addEntryBlock();
    out_ = entry->getArgument(0);
    for (size_t i = 0; i < inputs.size(); ++i) inputArgs_[inputs[i]] = entry->getArgument(static_cast<unsigned>(i + 1));
    for (size_t k = 1; k < g_.outputs().size(); ++k)
      extraOuts_.push_back(entry->getArgument(static_cast<unsigned>(inputs.size() + k)));
    begin_ = entry->getArgument(pointers);
    end_ = entry->getArgument(pointers + 1);
    b_.setInsertionPointToStart(entry);
    if (plan_.kind == KernelPlan::Kind::Loop) emitLoopKernel(outType);
    else if (plan_.kind == KernelPlan::Kind::Rows) emitRowsKernel(outType);
    else emitReduceKernel(outType);
    b_.setInsertionPointToEnd(entry);
    b_.create<mlir::func::ReturnOp>(loc_);
  }

 private:
  // ---- types and small builders -------------------------------------------------------------

  /// The memref of a buffer. Extents of 0 become 1: the bare-pointer convention rejects empty
  /// memrefs, and an empty buffer is never read or written (every loop over it runs 0 times).
  mlir::MemRefType memrefType(DType t, Shape shape) {
    for (int64_t& extent : shape) extent = std::max<int64_t>(extent, 1);
    return mlir::MemRefType::get(shape, ops_.storageType(t));
  }
  /// The shape a value's buffer is seen with: flat plans see every buffer as a vector.
  Shape shapeOf(const ir::TensorType& t) const { return plan_.flat ? Shape{t.numel()} : t.shape; }
  Shape shapeOf(ValueId v) const { return shapeOf(g_.type(v)); }

  Value index(int64_t v) { return b_.create<arith::ConstantIndexOp>(loc_, v); }
  mlir::scf::ForOp loop(Value lo, Value hi) { return b_.create<scf::ForOp>(loc_, lo, hi, index(1)); }
  /// A loop whose variable stays below `extent` (recorded for withinRanges).
  mlir::scf::ForOp loop(Value lo, Value hi, int64_t extent) {
    scf::ForOp l = loop(lo, hi);
    extentOf_[l.getInductionVar().getAsOpaquePointer()] = extent;
    return l;
  }

  // ---- indices --------------------------------------------------------------------------------

  AffineExpr dim(unsigned i) { return mlir::getAffineDimExpr(i, ctx_); }
  AffineExpr cst(int64_t v) { return mlir::getAffineConstantExpr(v, ctx_); }
  AffineMap map(unsigned dims, llvm::ArrayRef<AffineExpr> results) { return AffineMap::get(dims, 0, results, ctx_); }
  AffineMap identity(unsigned dims) { return AffineMap::getMultiDimIdentityMap(dims, ctx_); }
  Index compose(const Index& ix, AffineMap f) {
    AffineMap composed = mlir::simplifyAffineMap(f.compose(ix.map));
    llvm::SmallVector<AffineExpr> results;
    for (AffineExpr e : composed.getResults()) results.push_back(withinRanges(e, ix.dims));
    return {AffineMap::get(composed.getNumDims(), composed.getNumSymbols(), results, ctx_), ix.dims};
  }

  /// A sum of dims times coefficients plus a constant.
  struct Linear {
    std::map<unsigned, int64_t> coefficients;
    int64_t constant = 0;
  };
  /// `e` as a Linear, or nullopt when it is not one (floordiv, mod, symbols).
  std::optional<Linear> linear(AffineExpr e) {
    Linear l;
    if (auto d = mlir::dyn_cast<mlir::AffineDimExpr>(e)) {
      l.coefficients[d.getPosition()] = 1;
      return l;
    }
    if (auto c = mlir::dyn_cast<mlir::AffineConstantExpr>(e)) {
      l.constant = c.getValue();
      return l;
    }
    auto bin = mlir::dyn_cast<mlir::AffineBinaryOpExpr>(e);
    if (!bin) return std::nullopt;
    auto lhs = linear(bin.getLHS()), rhs = linear(bin.getRHS());
    if (!lhs || !rhs) return std::nullopt;
    if (e.getKind() == mlir::AffineExprKind::Add) {
      for (auto [d, c] : rhs->coefficients) lhs->coefficients[d] += c;
      lhs->constant += rhs->constant;
      return lhs;
    }
    if (e.getKind() == mlir::AffineExprKind::Mul && rhs->coefficients.empty()) {
      for (auto& [d, c] : lhs->coefficients) c *= rhs->constant;
      lhs->constant *= rhs->constant;
      return lhs;
    }
    return std::nullopt;
  }
  AffineExpr expr(const Linear& l) {
    AffineExpr e = cst(l.constant);
    for (auto [d, c] : l.coefficients)
      if (c != 0) e = e + dim(d) * c;
    return e;
  }
  /// `e` with each floordiv and mod by a constant K of a sum K * high + low resolved where the
  /// loops' extents keep low in [0, K): high and low (a row split into blocks of 16 and
  /// joined again, as blocked data's views do, is its two loop variables again).
  AffineExpr withinRanges(AffineExpr e, llvm::ArrayRef<Value> dims) {
    auto bin = mlir::dyn_cast<mlir::AffineBinaryOpExpr>(e);
    if (!bin) return e;
    AffineExpr lhs = withinRanges(bin.getLHS(), dims), rhs = withinRanges(bin.getRHS(), dims);
    const auto kind = e.getKind();
    auto k = mlir::dyn_cast<mlir::AffineConstantExpr>(rhs);
    if ((kind == mlir::AffineExprKind::FloorDiv || kind == mlir::AffineExprKind::Mod) && k && k.getValue() > 0)
      if (auto sum = linear(lhs); sum && sum->constant >= 0) {
        const int64_t K = k.getValue();
        Linear high, low;
        high.constant = sum->constant / K;
        low.constant = sum->constant % K;
        int64_t lowMax = low.constant;
        bool bounded = true;
        for (auto [d, c] : sum->coefficients) {
          if (c % K == 0) {
            high.coefficients[d] = c / K;
            continue;
          }
          auto extent = d < dims.size() ? extentOf_.find(dims[d].getAsOpaquePointer()) : extentOf_.end();
          bounded = bounded && c > 0 && extent != extentOf_.end();
          if (bounded) lowMax += c * (extent->second - 1);
          low.coefficients[d] = c;
        }
        if (bounded && lowMax < K) return expr(kind == mlir::AffineExprKind::FloorDiv ? high : low);
      }
    return mlir::getAffineBinaryOpExpr(kind, lhs, rhs);
  }

  /// The index values of every coordinate of `ix`.
  llvm::SmallVector<Value, 6> materialize(const Index& ix) {
    llvm::SmallVector<Value, 6> values;
    for (AffineExpr e : ix.map.getResults()) {
      if (auto d = mlir::dyn_cast<mlir::AffineDimExpr>(e)) values.push_back(ix.dims[d.getPosition()]);
      else if (auto c = mlir::dyn_cast<mlir::AffineConstantExpr>(e)) values.push_back(index(c.getValue()));
      else values.push_back(b_.create<mlir::affine::AffineApplyOp>(loc_, map(ix.map.getNumDims(), e), ix.dims));
    }
    return values;
  }

  /// numpy broadcasting: coordinates of an operand of shape `from` read by a value of shape `to`.
  AffineMap broadcastMap(const Shape& from, const Shape& to) {
    size_t lead = to.size() - from.size();
    llvm::SmallVector<AffineExpr> results;
    for (size_t j = 0; j < from.size(); ++j)
      results.push_back(from[j] == 1 ? cst(0) : dim(static_cast<unsigned>(lead + j)));
    return map(static_cast<unsigned>(to.size()), results);
  }

  /// reshape: coordinates of the operand (shape `from`) of a value of shape `to`. Extent-1
  /// dimensions are dropped; the others form groups with equal extent products, linearized
  /// in `to` and delinearized in `from` (identity when a group is one dimension each side).
  AffineMap reshapeMap(const Shape& from, const Shape& to) {
    auto dims = static_cast<unsigned>(to.size());
    llvm::SmallVector<AffineExpr> results(from.size(), cst(0));
    if (ir::numElements(to) == 0) return map(dims, results);
    std::vector<size_t> td, fd;
    for (size_t i = 0; i < to.size(); ++i)
      if (to[i] != 1) td.push_back(i);
    for (size_t j = 0; j < from.size(); ++j)
      if (from[j] != 1) fd.push_back(j);
    size_t i = 0, j = 0;
    while (i < td.size() && j < fd.size()) {
      size_t i0 = i, j0 = j;
      int64_t pt = to[td[i++]], pf = from[fd[j++]];
      while (pt != pf) {
        if (pt < pf && i < td.size()) pt *= to[td[i++]];
        else if (pf < pt && j < fd.size()) pf *= from[fd[j++]];
        else throw Error("reshape " + ir::shapeStr(from) + " -> " + ir::shapeStr(to) + " has no dimension grouping");
      }
      AffineExpr linear = cst(0);
      int64_t stride = 1;
      for (size_t k = i; k-- > i0;) {
        linear = linear + dim(static_cast<unsigned>(td[k])) * stride;
        stride *= to[td[k]];
      }
      stride = 1;
      for (size_t k = j; k-- > j0;) {
        AffineExpr e = stride == 1 ? linear : linear.floorDiv(stride);
        results[fd[k]] = k == j0 ? e : e % from[fd[k]];
        stride *= from[fd[k]];
      }
    }
    return map(dims, results);
  }

  AffineMap movementMap(const ir::Node& n, ValueId v) {
    const Shape &from = shapeOf(n.operands[0]), &to = shapeOf(v);
    ir::AttrReader attr(n.attrs, n.op);
    auto dims = static_cast<unsigned>(to.size());
    llvm::SmallVector<AffineExpr> results(from.size(), cst(0));
    switch (n.op) {
      case OpKind::Reshape: return reshapeMap(from, to);
      case OpKind::Broadcast: return broadcastMap(from, to);
      case OpKind::Transpose: {
        const auto& perm = attr.ints("perm");
        for (unsigned d = 0; d < dims; ++d) results[static_cast<size_t>(perm[d])] = dim(d);
        return map(dims, results);
      }
      default: {  // slice
        const auto &start = attr.ints("start"), &stride = attr.ints("stride");
        for (unsigned d = 0; d < dims; ++d) results[d] = dim(d) * stride[d] + start[d];
        return map(dims, results);
      }
    }
  }

  // ---- values ----------------------------------------------------------------------------------

  Value load(Value buffer, const Index& ix, DType t) {
    Value v = b_.create<memref::LoadOp>(loc_, buffer, materialize(ix));
    if (t == DType::boolean) v = ops_.cmpi(arith::CmpIPredicate::ne, v, b_.create<arith::ConstantIntOp>(loc_, 0, 8));
    return v;
  }
  void store(Value v, Value buffer, const Index& ix, DType t) {
    if (t == DType::boolean) v = b_.create<arith::ExtUIOp>(loc_, b_.getI8Type(), v);
    b_.create<memref::StoreOp>(loc_, v, buffer, materialize(ix));
  }

  /// Value `v` at `ix`, memoized.
  Value at(ValueId v, const Index& ix) {
    std::vector<const void*> key = {reinterpret_cast<const void*>(static_cast<intptr_t>(v)),
                                    ix.map.getAsOpaquePointer()};
    for (Value d : ix.dims) key.push_back(d.getAsOpaquePointer());
    auto it = memo_.find(key);
    if (it != memo_.end()) return it->second;
    Value result = compute(v, ix);
    memo_.emplace(std::move(key), result);
    return result;
  }

  Value compute(ValueId v, const Index& ix) {
    const ir::Node& n = g_.node(v);
    if (auto it = rowValues_.find(v); it != rowValues_.end()) return it->second;  // a row kernel's reduction
    switch (n.op) {
      case OpKind::Input: return load(inputArgs_.at(v), ix, n.type.dtype);
      case OpKind::Constant: return constant(v, ix);
      case OpKind::Iota: return iota(n, ix);
      case OpKind::Reshape:
      case OpKind::Broadcast:
      case OpKind::Transpose:
      case OpKind::Slice: return at(n.operands[0], compose(ix, movementMap(n, v)));
      case OpKind::Pad: return pad(n, ix);
      case OpKind::Concat: return concat(n, ix);
      default: break;
    }
    llvm::SmallVector<Value, 3> operands;
    for (ValueId o : n.operands) operands.push_back(at(o, compose(ix, broadcastMap(shapeOf(o), shapeOf(v)))));
    DType operandType = g_.type(n.operands[n.op == OpKind::Select ? 1 : 0]).dtype;
    return ops_.elementwise(n.op, operands, operandType, n.type.dtype);
  }

  Value constant(ValueId v, const Index& ix) {
    const ir::TensorDataPtr& data = ir::AttrReader(g_.node(v).attrs, OpKind::Constant).tensor("value");
    size_t width = ir::dtypeSize(data->type.dtype);
    bool splat = true;
    for (size_t i = width; i < data->bytes.size() && splat; ++i) splat = data->bytes[i] == data->bytes[i % width];
    if (splat) {
      if (data->numel() == 0) return ops_.scalar(0, data->type.dtype);
      if (ir::isFloat(data->type.dtype)) return ops_.scalar(data->get(0), data->type.dtype);
      int64_t i = data->type.dtype == DType::i32 ? data->as<int32_t>()[0]
                  : data->type.dtype == DType::i64 ? data->as<int64_t>()[0]
                                                   : data->as<uint8_t>()[0] != 0;
      return ops_.intScalar(i, data->type.dtype);
    }
    mlir::MemRefType type = memrefType(data->type.dtype, shapeOf(v));
    std::string symbol = name_ + "_cst" + std::to_string(v);
    if (!globals_.count(v)) {
      mlir::OpBuilder::InsertionGuard guard(b_);
      b_.setInsertionPoint(function_);
      auto tensorType = mlir::RankedTensorType::get(type.getShape(), type.getElementType());
      auto bytes = llvm::ArrayRef<char>(reinterpret_cast<const char*>(data->bytes.data()), data->bytes.size());
      b_.create<memref::GlobalOp>(loc_, symbol, b_.getStringAttr("private"), type,
                                  mlir::DenseElementsAttr::getFromRawBuffer(tensorType, bytes), true,
                                  b_.getI64IntegerAttr(64));
      globals_.insert(v);
    }
    return load(b_.create<memref::GetGlobalOp>(loc_, type, symbol), ix, data->type.dtype);
  }

  Value iota(const ir::Node& n, const Index& ix) {
    Value i = materialize(ix)[static_cast<size_t>(ir::AttrReader(n.attrs, n.op).i("axis"))];
    DType t = n.type.dtype;
    if (t == DType::boolean) return ops_.cmpi(arith::CmpIPredicate::ne, i, index(0));
    if (!ir::isFloat(t)) return b_.create<arith::IndexCastOp>(loc_, ops_.valueType(t), i);
    Value wide = b_.create<arith::IndexCastOp>(loc_, b_.getI64Type(), i);
    return b_.create<arith::SIToFPOp>(loc_, ops_.valueType(t), wide);
  }

  /// Clamps index `i` into [0, extent).
  Value clampIndex(Value i, int64_t extent) {
    Value upper = b_.create<arith::MinSIOp>(loc_, i, index(extent - 1));
    return b_.create<arith::MaxSIOp>(loc_, upper, index(0));
  }

  Value pad(const ir::Node& n, const Index& ix) {
    ir::AttrReader attr(n.attrs, n.op);
    const auto &low = attr.ints("low"), &high = attr.ints("high");
    ValueId x = n.operands[0];
    const Shape& xs = shapeOf(x);
    Value padValue = ops_.scalar(attr.f("value"), n.type.dtype);
    if (ir::numElements(xs) == 0) return padValue;
    auto rank = static_cast<unsigned>(xs.size());
    llvm::SmallVector<AffineExpr> shifted;
    for (unsigned d = 0; d < rank; ++d) shifted.push_back(dim(d) - low[d]);
    llvm::SmallVector<Value, 6> coords = materialize(compose(ix, map(rank, shifted)));
    Value inside;
    for (unsigned d = 0; d < rank; ++d) {
      if (low[d] == 0 && high[d] == 0) continue;
      Value ok = b_.create<arith::AndIOp>(loc_, ops_.cmpi(arith::CmpIPredicate::sge, coords[d], index(0)),
                                          ops_.cmpi(arith::CmpIPredicate::slt, coords[d], index(xs[d])));
      inside = inside ? b_.create<arith::AndIOp>(loc_, inside, ok) : ok;
      coords[d] = clampIndex(coords[d], xs[d]);
    }
    Value value = at(x, Index{identity(rank), coords});
    return inside ? ops_.select(inside, value, padValue) : value;
  }

  Value concat(const ir::Node& n, const Index& ix) {
    auto axis = static_cast<size_t>(ir::AttrReader(n.attrs, n.op).i("axis"));
    llvm::SmallVector<Value, 6> coords = materialize(ix);
    Value position = coords[axis], result;
    std::vector<int64_t> offsets = {0};
    for (ValueId o : n.operands) offsets.push_back(offsets.back() + shapeOf(o)[axis]);
    for (size_t k = n.operands.size(); k-- > 0;) {
      const Shape& shape = shapeOf(n.operands[k]);
      if (shape[axis] == 0) continue;
      llvm::SmallVector<Value, 6> local = coords;
      local[axis] = clampIndex(b_.create<arith::SubIOp>(loc_, position, index(offsets[k])), shape[axis]);
      Value value = at(n.operands[k], Index{identity(static_cast<unsigned>(shape.size())), local});
      if (!result) {  // the last operand with elements owns every later position
        result = value;
        continue;
      }
      result = ops_.select(ops_.cmpi(arith::CmpIPredicate::slt, position, index(offsets[k + 1])), value, result);
    }
    return result ? result : ops_.scalar(0, n.type.dtype);
  }

  // ---- kernels ---------------------------------------------------------------------------------

  /// The output coordinates of the loop variables (d0, the row loop, then `dims - 1` inner
  /// ones): 0 for extent-1 dimensions, the inner loop variables for the last other ones (one,
  /// or two with a middle loop), and the rest delinearized from the row loop variable.
  AffineMap outputMap(const Shape& shape, unsigned dims) {
    llvm::SmallVector<AffineExpr> results(shape.size(), cst(0));
    std::vector<size_t> moving;
    for (size_t d = 0; d < shape.size() && ir::numElements(shape) > 0; ++d)
      if (shape[d] != 1) moving.push_back(d);
    const size_t inner = moving.empty() ? 0 : dims - 1;  // dimensions the inner loops cover
    for (size_t k = 0; k < inner; ++k)
      results[moving[moving.size() - 1 - k]] = dim(static_cast<unsigned>(dims - 1 - k));
    int64_t stride = 1;
    for (size_t k = moving.size() - inner; k-- > 0;) {
      AffineExpr row = stride == 1 ? dim(0) : dim(0).floorDiv(stride);
      results[moving[k]] = k == 0 ? row : row % shape[moving[k]];
      stride *= shape[moving[k]];
    }
    return map(dims, results);
  }

  /// The operand of a row body's last reduction when the outputs read it again (softmax's
  /// exp(x - max), which its division reads after the sum) at the output's index (through
  /// elementwise values of the row's shape only) and it has the first output's dtype: the
  /// reduction's loop stores it into the output row, and the last loop reads it back instead
  /// of computing it again. -1 otherwise.
  ValueId keptInOutput(DType outType) const {
    const ValueId last = g_.node(plan_.rowReductions.back()).operands[0];
    // A source (an input, a constant, an iota) costs a load at most: nothing to keep.
    if (g_.type(last).dtype != outType || g_.node(last).operands.empty()) return -1;
    // Which values read `last` other than through a reduction (its value for the row).
    std::vector<bool> reads(static_cast<size_t>(g_.size()), false);
    for (ValueId v = last + 1; v < g_.size(); ++v)
      if (!isReduction(g_.node(v).op))
        for (ValueId o : g_.node(v).operands)
          if (o == last || reads[static_cast<size_t>(o)]) reads[static_cast<size_t>(v)] = true;
    bool readByOutputs = false;
    for (const auto& out : g_.outputs()) readByOutputs = readByOutputs || reads[static_cast<size_t>(out.value)];
    if (!readByOutputs) return -1;
    // Read at the output's index: only through elementwise values of the row's shape.
    const Shape& shape = g_.type(g_.outputs()[0].value).shape;
    for (ValueId v = last + 1; v < g_.size(); ++v)
      if (reads[static_cast<size_t>(v)] &&
          (!ir::opInfo(g_.node(v).op).has(ir::kElementwise) || g_.type(v).shape != shape))
        return -1;
    return last;
  }

  /// A row body: per row of the parallel range, one loop over the row per reduction (in
  /// order, each folding its operand into an accumulator that later loops read as a value of
  /// the row), then one that computes and stores the outputs. Values computed inside a loop
  /// are forgotten after it (they do not dominate the next one): what a later loop reads
  /// again it recomputes, from the row that the earlier loops left in the cache, except the
  /// value the output row keeps (keptInOutput).
  void emitRowsKernel(const ir::TensorType& outType) {
    const int64_t length = plan_.loopShape[1];
    scf::ForOp rows = loop(begin_, end_, plan_.loopShape[0]);
    b_.setInsertionPointToStart(rows.getBody());
    const AffineMap rowMap = outputMap(outType.shape, 2);
    const ValueId kept = keptInOutput(outType.dtype);
    // Row i of a matrix stops at its diagonal (KernelPlan::diagonal), rounded up to a whole
    // vector of 16 (the loops run one vector an iteration: kNoInterleaveAttribute); the rest
    // is written 0.
    Value end = index(length);
    if (plan_.diagonal > 0) {
      function_->setAttr("passthrough", b_.getArrayAttr({b_.getStringAttr(kNoInterleaveAttribute)}));
      Value within = b_.create<arith::RemUIOp>(loc_, rows.getInductionVar(), index(plan_.diagonal));
      Value vectors = b_.create<arith::AddIOp>(loc_, b_.create<arith::OrIOp>(loc_, within, index(15)), index(1));
      end = b_.create<arith::MinUIOp>(loc_, vectors, index(length));
      scf::ForOp rest = loop(end, index(length), length);
      mlir::OpBuilder::InsertionGuard guard(b_);
      b_.setInsertionPointToStart(rest.getBody());
      Index ix{rowMap, {rows.getInductionVar(), rest.getInductionVar()}};
      for (size_t k = 0; k < g_.outputs().size(); ++k) {
        const DType t = g_.type(g_.outputs()[k].value).dtype;
        store(ops_.initial(OpKind::ReduceSum, t), k == 0 ? out_ : extraOuts_[k - 1], ix, t);
      }
    }
    for (ValueId r : plan_.rowReductions) {
      const ir::Node& reduction = g_.node(r);
      const DType t = reduction.type.dtype;
      auto fold = b_.create<scf::ForOp>(loc_, index(0), end, index(1),
                                        mlir::ValueRange{ops_.initial(reduction.op, t)});
      extentOf_[fold.getInductionVar().getAsOpaquePointer()] = length;
      {
        mlir::OpBuilder::InsertionGuard guard(b_);
        b_.setInsertionPointToStart(fold.getBody());
        Index here{rowMap, {rows.getInductionVar(), fold.getInductionVar()}};
        Value operand = at(reduction.operands[0], here);
        if (reduction.operands[0] == kept) store(operand, out_, here, outType.dtype);
        b_.create<scf::YieldOp>(loc_, ops_.combine(reduction.op, fold.getRegionIterArgs()[0], operand, t));
      }
      memo_.clear();
      rowValues_[r] = fold.getResult(0);
    }
    scf::ForOp columns = loop(index(0), end, length);
    b_.setInsertionPointToStart(columns.getBody());
    Index ix{rowMap, {rows.getInductionVar(), columns.getInductionVar()}};
    if (kept >= 0) rowValues_[kept] = load(out_, ix, outType.dtype);
    llvm::SmallVector<Value, 4> values;
    for (const auto& out : g_.outputs()) values.push_back(at(out.value, ix));
    store(values[0], out_, ix, outType.dtype);
    for (size_t k = 1; k < values.size(); ++k)
      store(values[k], extraOuts_[k - 1], ix, g_.type(g_.outputs()[k].value).dtype);
  }

  /// Where reduction `n` of a value of shape `shape` keeps each of its positions: its kept
  /// coordinates (and 0 for each reduced one with keepdims).
  AffineMap keptMap(const ir::Node& n, const Shape& shape) {
    ir::AttrReader attrs(n.attrs, n.op);
    const auto& axes = attrs.ints("axes");
    const bool keepdims = attrs.i("keepdims") == 1;
    llvm::SmallVector<AffineExpr> results;
    for (unsigned d = 0; d < shape.size(); ++d)
      if (std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) == axes.end()) results.push_back(dim(d));
      else if (keepdims) results.push_back(cst(0));
    return map(static_cast<unsigned>(shape.size()), results);
  }

  /// Stores 0 into every element of `buffer` (of shape `shape`).
  void zeroFill(Value buffer, const Shape& shape, DType t) {
    mlir::OpBuilder::InsertionGuard guard(b_);
    llvm::SmallVector<Value, 6> coords;
    for (int64_t extent : shape) {
      scf::ForOp l = loop(index(0), index(std::max<int64_t>(extent, 1)));
      b_.setInsertionPointToStart(l.getBody());
      coords.push_back(l.getInductionVar());
    }
    store(ops_.initial(OpKind::ReduceSum, t), buffer, Index{identity(static_cast<unsigned>(shape.size())), coords}, t);
  }

  /// The factor s (2 to 4) by which a loop kernel's innermost loop is unrolled: where the body
  /// interleaves a value with padding along its last dimension (a pad of a last dimension of 1
  /// to s, realnvp's checkerboard halves put back in place), element j of an innermost row reads
  /// element j / s of the operand where j % s is its own. Evaluated at j = s k + r for each r,
  /// the divisions and the pad's test fold away and LLVM's vectorizer stores the s results
  /// interleaved; evaluated at j, each vector of results took about 15 instructions to gather
  /// its operand values and compared 64-bit indices. 1 where no such pad is read, or the
  /// innermost extent is no multiple of s.
  int64_t interleaveFactor() const {
    if (plan_.flat || plan_.loopShape.size() < 2) return 1;
    int64_t factor = 1;
    for (ValueId v = 0; v < g_.size(); ++v) {
      const ir::Node& n = g_.node(v);
      if (!plan_.live[static_cast<size_t>(v)] || n.op != OpKind::Pad || n.type.shape.empty()) continue;
      const int64_t extent = n.type.shape.back();
      if (g_.type(n.operands[0]).shape.back() != 1 || extent < 2 || extent > 4) continue;
      if (factor != 1 && factor != extent) return 1;
      factor = extent;
    }
    return plan_.loopShape.back() % factor == 0 ? factor : 1;
  }

  void emitLoopKernel(const ir::TensorType& outType) {
    // Side sums hold this call's partial sums: 0 until its iterations add theirs.
    auto isSide = [&](size_t k) { return std::find(plan_.sideSums.begin(), plan_.sideSums.end(), k) != plan_.sideSums.end(); };
    for (size_t k : plan_.sideSums) {
      const ir::TensorType& t = g_.type(g_.outputs()[k].value);
      zeroFill(extraOuts_[k - 1], t.shape, t.dtype);
    }
    const int64_t unroll = interleaveFactor();
    llvm::SmallVector<Value, 6> ivs;
    for (size_t k = 0; k < plan_.loopShape.size(); ++k) {
      const int64_t extent = plan_.loopShape[k] / (k + 1 == plan_.loopShape.size() ? unroll : 1);
      scf::ForOp l = k == 0 ? loop(begin_, end_, extent) : loop(index(0), index(extent), extent);
      b_.setInsertionPointToStart(l.getBody());
      ivs.push_back(l.getInductionVar());
    }
    auto dims = static_cast<unsigned>(ivs.size());
    const AffineMap toOutput = plan_.flat ? identity(dims) : outputMap(outType.shape, dims);
    // The innermost loop's k stands for elements unroll k + r of the row, r = 0, ..., unroll - 1.
    std::vector<Index> indices;
    for (int64_t r = 0; r < unroll; ++r) {
      llvm::SmallVector<AffineExpr> stretched;
      for (unsigned d = 0; d + 1 < dims; ++d) stretched.push_back(dim(d));
      stretched.push_back(dim(dims - 1) * unroll + r);
      indices.push_back(compose(Index{map(dims, stretched), ivs}, toOutput));
    }
    // Every output is computed before any is stored: an output may share the buffer of an
    // input that another output reads at the same element.
    std::vector<Value> roots;
    // Each further output's value at each index (a side sum's: the value it adds).
    std::vector<llvm::SmallVector<Value, 4>> extras(indices.size());
    for (size_t r = 0; r < indices.size(); ++r) {
      roots.push_back(at(plan_.root, indices[r]));
      for (size_t k = 1; k < g_.outputs().size(); ++k) {
        const ValueId v = g_.outputs()[k].value;
        extras[r].push_back(at(isSide(k) ? g_.node(v).operands[0] : v, indices[r]));
      }
    }
    for (size_t r = 0; r < indices.size(); ++r) {
      const Index& ix = indices[r];
      store(roots[r], out_, ix, outType.dtype);
      for (size_t k = 1; k < g_.outputs().size(); ++k) {
        const ir::TensorType& t = g_.type(g_.outputs()[k].value);
        if (!isSide(k)) {
          store(extras[r][k - 1], extraOuts_[k - 1], ix, t.dtype);
          continue;
        }
        Index sum = compose(ix, keptMap(g_.node(g_.outputs()[k].value), outType.shape));
        Value total =
            ops_.combine(OpKind::ReduceSum, load(extraOuts_[k - 1], sum, t.dtype), extras[r][k - 1], t.dtype);
        store(total, extraOuts_[k - 1], sum, t.dtype);
      }
    }
  }

  /// Folds dimensions [d, rank) of the root into `acc` with loops carrying the accumulator.
  Value foldSuffix(size_t d, Value acc, llvm::SmallVector<Value, 6>& ivs, DType t) {
    const Shape& shape = shapeOf(plan_.root);
    auto l = b_.create<scf::ForOp>(loc_, index(0), index(shape[d]), index(1), mlir::ValueRange{acc});
    mlir::OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPointToStart(l.getBody());
    ivs.push_back(l.getInductionVar());
    Value inner = l.getRegionIterArgs()[0];
    Value next;
    if (d + 1 < shape.size()) {
      next = foldSuffix(d + 1, inner, ivs, t);
    } else {
      Index here{identity(static_cast<unsigned>(ivs.size())), ivs};
      next = ops_.combine(plan_.reduceOp, inner, at(plan_.root, here), t);
    }
    b_.create<scf::YieldOp>(loc_, next);
    ivs.pop_back();
    return l.getResult(0);
  }

  /// Where the kept dimensions of an accumulating reduction end a root of rank `rank`: the
  /// first dimension from which every one is kept, every one before it reduced, when the
  /// kept ones hold at most kMaxRegisterAccumulators elements or are one dimension of a
  /// multiple of it (taken in chunks, registerLanes); 0 otherwise.
  unsigned keptSuffixInRegisters(unsigned rank) const {
    if (!plan_.accumulate || static_cast<unsigned>(plan_.suffixStart) != rank) return 0;
    const Shape& shape = shapeOf(plan_.root);
    unsigned start = rank;
    int64_t kept = 1;
    while (start > 0 && !plan_.reduced[start - 1]) kept *= shape[--start];
    for (unsigned d = 0; d < start; ++d)
      if (!plan_.reduced[d]) return 0;
    // A call covering part of a kept dimension writes only that part: not this path.
    if (plan_.parallelDim >= static_cast<int>(start)) return 0;
    const bool chunked = sumsLastDimInChunks(shape, plan_.reduced);
    return start > 0 && start < rank && (kept <= kMaxRegisterAccumulators || chunked) ? start : 0;
  }

  /// The kept elements summed in registers at a time out of `kept`: all of them when they
  /// fit, else chunks of 64 (a bias gradient's 768 columns in 12 chunks, each a pass over the
  /// rows). Chunks of 16 measured slower than the sums in memory (vae's 784 columns over 128
  /// rows: 0.069 against 0.008 ms), so other widths keep that path.
  static int64_t registerLanes(int64_t kept) { return std::min(kept, kMaxRegisterAccumulators); }

  /// A reduction whose kept dimensions come last and are few (keptSuffixInRegisters: batch
  /// norm's per-channel sums over blocked or channels-last data): one accumulator per kept
  /// element, carried through the loops over the reduced dimensions and stored once, so the
  /// sums stay in registers (LLVM packs the consecutive ones into vectors) instead of a load
  /// and a store of the output per element read.
  void emitRegisterReduceKernel(const ir::TensorType& outType, unsigned keptStart, mlir::AffineMap outMap) {
    const Shape& shape = shapeOf(plan_.root);
    auto rank = static_cast<unsigned>(shape.size());
    DType t = outType.dtype;
    // The loops over the reduced dimensions stay scalar (kNoLoopVectorizeAttribute): the
    // SLP vectorizer packs the sums, where the loop vectorizer would interleave the
    // innermost reduced loop with shuffles.
    function_->setAttr("passthrough", b_.getArrayAttr({b_.getStringAttr(kNoLoopVectorizeAttribute)}));
    int64_t all = 1;
    for (unsigned d = keptStart; d < rank; ++d) all *= shape[d];
    const int64_t kept = registerLanes(all);  // accumulators per chunk
    if (plan_.parallelDim < 0) b_.setInsertionPointToStart(loop(begin_, end_).getBody());  // one iteration: [0, 1)
    Value chunkStart;  // with chunks (one kept dimension): the chunk's first index
    if (kept < all) {
      scf::ForOp chunks = loop(index(0), index(all / kept), all / kept);
      b_.setInsertionPointToStart(chunks.getBody());
      chunkStart = b_.create<arith::MulIOp>(loc_, chunks.getInductionVar(), index(kept));
    }
    // The coordinates of kept element k of the chunk (row-major over the kept dimensions).
    auto keptCoords = [&](int64_t k, llvm::SmallVector<Value, 6>& coords) {
      if (chunkStart) {
        coords[rank - 1] = b_.create<arith::AddIOp>(loc_, chunkStart, index(k));
        return;
      }
      for (unsigned d = rank; d-- > keptStart;) {
        coords[d] = index(k % shape[d]);
        k /= shape[d];
      }
    };
    llvm::SmallVector<Value> sums(static_cast<size_t>(kept), ops_.initial(plan_.reduceOp, t));
    llvm::SmallVector<Value, 6> coords(rank, index(0));
    std::function<llvm::SmallVector<Value>(unsigned, llvm::SmallVector<Value>)> over =
        [&](unsigned d, llvm::SmallVector<Value> acc) -> llvm::SmallVector<Value> {
      if (d == keptStart) {
        for (int64_t k = 0; k < kept; ++k) {
          keptCoords(k, coords);
          Index here{identity(rank), coords};
          acc[static_cast<size_t>(k)] = ops_.combine(plan_.reduceOp, acc[static_cast<size_t>(k)], at(plan_.root, here), t);
        }
        return acc;
      }
      Value lo = static_cast<int>(d) == plan_.parallelDim ? begin_ : index(0);
      Value hi = static_cast<int>(d) == plan_.parallelDim ? end_ : index(shape[d]);
      auto l = b_.create<scf::ForOp>(loc_, lo, hi, index(1), mlir::ValueRange(acc));
      extentOf_[l.getInductionVar().getAsOpaquePointer()] = shape[d];
      mlir::OpBuilder::InsertionGuard guard(b_);
      b_.setInsertionPointToStart(l.getBody());
      coords[d] = l.getInductionVar();
      llvm::SmallVector<Value> carried(l.getRegionIterArgs().begin(), l.getRegionIterArgs().end());
      b_.create<scf::YieldOp>(loc_, over(d + 1, carried));
      return llvm::SmallVector<Value>(l.getResults().begin(), l.getResults().end());
    };
    sums = over(0, sums);
    for (int64_t k = 0; k < kept; ++k) {
      llvm::SmallVector<Value, 6> outCoords(rank, index(0));
      keptCoords(k, outCoords);
      store(sums[static_cast<size_t>(k)], out_, Index{outMap, outCoords}, t);
    }
  }

  void emitReduceKernel(const ir::TensorType& outType) {
    const Shape& shape = shapeOf(plan_.root);
    auto rank = static_cast<unsigned>(shape.size());
    bool keepdims = outType.rank() == static_cast<int64_t>(rank);
    llvm::SmallVector<AffineExpr> outResults;  // output coordinates of a root position
    for (unsigned d = 0; d < rank; ++d)
      if (!plan_.reduced[d]) outResults.push_back(dim(d));
      else if (keepdims) outResults.push_back(cst(0));
    AffineMap outMap = map(rank, outResults);
    if (unsigned keptStart = keptSuffixInRegisters(rank)) return emitRegisterReduceKernel(outType, keptStart, outMap);
    DType t = outType.dtype;
    auto loopOver = [&](unsigned d) {
      scf::ForOp l = static_cast<int>(d) == plan_.parallelDim ? loop(begin_, end_, shape[d])
                                                              : loop(index(0), index(shape[d]), shape[d]);
      b_.setInsertionPointToStart(l.getBody());
      return l;
    };
    if (plan_.parallelDim < 0) b_.setInsertionPointToStart(loop(begin_, end_).getBody());  // one iteration: [0, 1)
    Value zero = index(0);
    if (plan_.accumulate) {  // initialize this call's slice of the output
      mlir::OpBuilder::InsertionGuard guard(b_);
      llvm::SmallVector<Value, 6> coords(rank, zero);
      for (unsigned d = 0; d < rank; ++d)
        if (!plan_.reduced[d]) coords[d] = loopOver(d).getInductionVar();
      store(ops_.initial(plan_.reduceOp, t), out_, Index{outMap, coords}, t);
    }
    llvm::SmallVector<Value, 6> ivs;
    auto suffixStart = static_cast<unsigned>(plan_.suffixStart);
    for (unsigned d = 0; d < suffixStart; ++d) ivs.push_back(loopOver(d).getInductionVar());
    Value value = static_cast<unsigned>(plan_.suffixStart) < rank
                      ? foldSuffix(static_cast<size_t>(plan_.suffixStart), ops_.initial(plan_.reduceOp, t), ivs, t)
                      : at(plan_.root, Index{identity(rank), ivs});
    llvm::SmallVector<Value, 6> coords = ivs;
    coords.resize(rank, zero);  // suffix dimensions are reduced: the output map ignores them
    Index outIndex{outMap, coords};
    if (plan_.accumulate) value = ops_.combine(plan_.reduceOp, load(out_, outIndex, t), value, t);
    store(value, out_, outIndex, t);
  }

  mlir::MLIRContext* ctx_;
  mlir::OpBuilder b_;
  mlir::Location loc_;
  ScalarOps ops_;
  mlir::ModuleOp module_;
  const ir::Graph& g_;
  const KernelPlan& plan_;
  std::string name_;
  mlir::func::FuncOp function_;
  std::map<const void*, int64_t> extentOf_;  ///< loop variable -> its loop's extent (see withinRanges)
  Value out_, begin_, end_;
  llvm::SmallVector<Value, 4> extraOuts_;  ///< the further outputs (after the inputs in the signature)
  std::map<ValueId, Value> inputArgs_;
  std::map<std::vector<const void*>, Value> memo_;
  std::map<ValueId, Value> rowValues_;  ///< a row kernel's reductions: their value for the current row
  std::set<ValueId> globals_;
};

}  // namespace

void emitKernel(mlir::ModuleOp module, const ir::Graph& body, const KernelPlan& plan, const std::string& name) {
  KernelEmitter(module, body, plan, name).emit();
}

}  // namespace weft::cpu::codegen
