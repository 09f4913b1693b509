#pragma once
/// The core DSL functions: graph inputs/outputs, sources, elementwise math, reductions and
/// data movement. Each takes a trailing source location so that a shape error names the
/// model line: `models/mlp.cpp:31: matmul(f32[4,8], f32[9,3]): contracted dimensions differ`.
/// Axes may be negative (counted from the end), as in PyTorch.
#include <initializer_list>
#include <source_location>
#include <string>
#include <vector>

#include "frontend/tensor.h"

namespace weft {

using SrcLoc = std::source_location;  ///< shorthand used in the DSL signatures

/// A set of axes: one axis (`1`), a list (`{0, 2}`), or, default-constructed, all axes.
class Axes {
 public:
  /// All axes.
  Axes() = default;
  /// One axis.
  Axes(int64_t axis) : all_(false), list_{axis} {}
  /// A list of axes.
  Axes(std::initializer_list<int64_t> axes) : all_(false), list_(axes) {}
  /// A list of axes.
  Axes(std::vector<int64_t> axes) : all_(false), list_(std::move(axes)) {}
  /// True for "all axes".
  bool all() const { return all_; }
  /// The listed axes (possibly negative).
  const std::vector<int64_t>& list() const { return list_; }

 private:
  bool all_ = true;
  std::vector<int64_t> list_;
};

// ---- graph interface ------------------------------------------------------------------
/// A graph input of the current builder; dtype defaults to the builder's float type.
Tensor input(const std::string& name, const Shape& shape, SrcLoc loc = SrcLoc::current());
/// A graph input of the current builder with an explicit dtype.
Tensor input(const std::string& name, const Shape& shape, DType dtype, SrcLoc loc = SrcLoc::current());
/// Marks `t` as the graph output `name`.
void output(const std::string& name, const Tensor& t, SrcLoc loc = SrcLoc::current());

// ---- sources --------------------------------------------------------------------------
/// A rank-0 constant (dtype defaults to the builder's float type).
Tensor scalar(double value, SrcLoc loc = SrcLoc::current());
/// A rank-0 constant of `dtype`.
Tensor scalar(double value, DType dtype, SrcLoc loc = SrcLoc::current());
/// A constant of `shape` holding `values` (row-major) as `dtype`.
Tensor constant(const std::vector<double>& values, const Shape& shape, DType dtype,
                SrcLoc loc = SrcLoc::current());
/// A tensor of `shape` filled with `value` (a broadcast scalar).
Tensor full(const Shape& shape, double value, DType dtype, SrcLoc loc = SrcLoc::current());
/// Zeros of `shape` in the builder's float type.
Tensor zeros(const Shape& shape, SrcLoc loc = SrcLoc::current());
/// Ones of `shape` in the builder's float type.
Tensor ones(const Shape& shape, SrcLoc loc = SrcLoc::current());
/// `iota`: value = index along `axis`.
Tensor iota(const Shape& shape, int64_t axis, DType dtype, SrcLoc loc = SrcLoc::current());
/// Uniform draws in [low, high); each call gets its own derived seed.
Tensor random_uniform(const Shape& shape, double low = 0, double high = 1, SrcLoc loc = SrcLoc::current());
/// Normal draws N(mean, std^2); each call gets its own derived seed.
Tensor random_normal(const Shape& shape, double mean = 0, double std = 1, SrcLoc loc = SrcLoc::current());

// ---- elementwise unary ----------------------------------------------------------------
/// -x.
Tensor neg(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// |x|.
Tensor abs(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// e^x.
Tensor exp(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Natural logarithm.
Tensor log(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Square root.
Tensor sqrt(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// 1 / sqrt(x).
Tensor rsqrt(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Hyperbolic tangent.
Tensor tanh(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Logistic sigmoid.
Tensor sigmoid(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Sine.
Tensor sin(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Cosine.
Tensor cos(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Error function.
Tensor erf(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// -1, 0 or 1.
Tensor sign(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Round toward -inf.
Tensor floor(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Logical not of a bool tensor.
Tensor logical_not(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Identity whose gradient is zero.
Tensor stop_gradient(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// Converts to `dtype` (float->int truncates; to bool is != 0).
Tensor cast(const Tensor& x, DType dtype, SrcLoc loc = SrcLoc::current());
/// x * x.
Tensor square(const Tensor& x, SrcLoc loc = SrcLoc::current());

// ---- elementwise binary (at least one operand must be a tensor) -----------------------
/// a + b.
Tensor add(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// a - b.
Tensor sub(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// a * b.
Tensor mul(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// a / b.
Tensor div(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// a ^ b (float).
Tensor pow(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// Elementwise maximum.
Tensor maximum(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// Elementwise minimum.
Tensor minimum(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// Logical and (bool).
Tensor logical_and(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// Logical or (bool).
Tensor logical_or(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// a == b as bool.
Tensor eq(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// a != b as bool.
Tensor ne(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// a < b as bool.
Tensor lt(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// a <= b as bool.
Tensor le(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// a > b as bool.
Tensor gt(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// a >= b as bool.
Tensor ge(const Operand& a, const Operand& b, SrcLoc loc = SrcLoc::current());
/// `cond ? onTrue : onFalse` elementwise (the IR's `select`); branches may be scalars.
Tensor where(const Tensor& cond, const Operand& onTrue, const Operand& onFalse, SrcLoc loc = SrcLoc::current());
/// Clamps x into [lo, hi].
Tensor clamp(const Tensor& x, double lo, double hi, SrcLoc loc = SrcLoc::current());

// ---- reductions -----------------------------------------------------------------------
/// Sum over `axes` (default: all).
Tensor sum(const Tensor& x, Axes axes = {}, bool keepdims = false, SrcLoc loc = SrcLoc::current());
/// Mean over `axes` (default: all).
Tensor mean(const Tensor& x, Axes axes = {}, bool keepdims = false, SrcLoc loc = SrcLoc::current());
/// Maximum over `axes` (default: all).
Tensor max(const Tensor& x, Axes axes = {}, bool keepdims = false, SrcLoc loc = SrcLoc::current());
/// Minimum over `axes` (default: all).
Tensor min(const Tensor& x, Axes axes = {}, bool keepdims = false, SrcLoc loc = SrcLoc::current());
/// log(sum(exp(x))) over `axes` (default: all), computed stably.
Tensor logsumexp(const Tensor& x, Axes axes = {}, bool keepdims = false, SrcLoc loc = SrcLoc::current());
/// Index (i64) of the first maximum along `axis`.
Tensor argmax(const Tensor& x, int64_t axis = -1, bool keepdims = false, SrcLoc loc = SrcLoc::current());
/// Index (i64) of the first minimum along `axis`.
Tensor argmin(const Tensor& x, int64_t axis = -1, bool keepdims = false, SrcLoc loc = SrcLoc::current());

// ---- data movement --------------------------------------------------------------------
/// Reshapes to `shape`; one extent may be -1 (inferred).
Tensor reshape(const Tensor& x, const Shape& shape, SrcLoc loc = SrcLoc::current());
/// Merges dims [start, end] into one (PyTorch flatten; default keeps the batch dim).
Tensor flatten(const Tensor& x, int64_t start = 1, int64_t end = -1, SrcLoc loc = SrcLoc::current());
/// Inserts a dim of extent 1 at `dim` (dim may be -1 for the end).
Tensor unsqueeze(const Tensor& x, int64_t dim, SrcLoc loc = SrcLoc::current());
/// Removes dim `dim`, which must have extent 1.
Tensor squeeze(const Tensor& x, int64_t dim, SrcLoc loc = SrcLoc::current());
/// Swaps dims `d0` and `d1`.
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1, SrcLoc loc = SrcLoc::current());
/// Reorders dims: result dim i is x's dim perm[i].
Tensor permute(const Tensor& x, const std::vector<int64_t>& perm, SrcLoc loc = SrcLoc::current());
/// numpy broadcast_to.
Tensor broadcast_to(const Tensor& x, const Shape& shape, SrcLoc loc = SrcLoc::current());
/// x[start:end:step] along `dim` (Python rules: negative indices count from the end,
/// bounds are clamped).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1,
             SrcLoc loc = SrcLoc::current());
/// The IR's slice: one start/limit/stride per dim (stride defaults to all ones).
Tensor strided_slice(const Tensor& x, const std::vector<int64_t>& start, const std::vector<int64_t>& limit,
                     const std::vector<int64_t>& stride = {}, SrcLoc loc = SrcLoc::current());
/// Splits `dim` into pieces of `size` (the last may be smaller), like torch.split.
std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim, SrcLoc loc = SrcLoc::current());
/// Splits `dim` into pieces of the given sizes, which must add up to its extent.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim,
                          SrcLoc loc = SrcLoc::current());
/// Splits `dim` into `n` equal pieces (the extent must be divisible by n).
std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t dim, SrcLoc loc = SrcLoc::current());
/// Concatenates along `dim`.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim, SrcLoc loc = SrcLoc::current());
/// Pads each dim with low[i] / high[i] copies of `value`.
Tensor pad(const Tensor& x, const std::vector<int64_t>& low, const std::vector<int64_t>& high,
           double value = 0, SrcLoc loc = SrcLoc::current());
/// numpy take: x.shape[:axis] + indices.shape + x.shape[axis+1:].
Tensor gather(const Tensor& x, const Tensor& indices, int64_t axis = 0, SrcLoc loc = SrcLoc::current());
/// base, then out[..., indices[j], ...] += updates[..., j, ...] along `axis`.
Tensor scatter_add(const Tensor& base, const Tensor& indices, const Tensor& updates, int64_t axis = 0,
                   SrcLoc loc = SrcLoc::current());
/// (Batched) matrix product [..., M, K] x [..., K, N]; optionally transposes an operand's last two dims.
Tensor matmul(const Tensor& a, const Tensor& b, bool transposeA = false, bool transposeB = false,
              SrcLoc loc = SrcLoc::current());

}  // namespace weft
