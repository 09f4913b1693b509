#pragma once
/// `weft::Tensor`: a handle to one value of the graph being built, with arithmetic and
/// comparison operators. Scalars mix in freely (`2 * x + 1`); they become rank-0 constants
/// of the tensor's dtype and the IR's elementwise ops broadcast them (numpy rules).
#include <source_location>
#include <string>

#include "frontend/builder.h"

namespace weft {

/// A value of the graph being built: the builder that owns it and its ValueId. Cheap to copy.
class Tensor {
 public:
  /// An empty handle (valid() is false); assign a real tensor before use.
  Tensor() = default;
  /// The handle of value `id` of `builder`'s graph.
  Tensor(GraphBuilder* builder, ir::ValueId id) : builder_(builder), id_(id) {}

  /// True for a handle that refers to a value.
  bool valid() const { return builder_ != nullptr; }
  /// The builder that owns the value.
  GraphBuilder& builder() const { return *builder_; }
  /// The value's id in the graph.
  ir::ValueId id() const { return id_; }
  /// The value's static type.
  const ir::TensorType& type() const { return builder_->graph().type(id_); }
  /// The value's shape.
  const Shape& shape() const { return type().shape; }
  /// The value's dtype.
  DType dtype() const { return type().dtype; }
  /// The number of dimensions.
  int64_t rank() const { return type().rank(); }
  /// The extent of dimension `d`; negative `d` counts from the end. Throws when out of range.
  int64_t dim(int64_t d, std::source_location loc = std::source_location::current()) const;
  /// The number of elements.
  int64_t numel() const { return type().numel(); }
  /// The IR spelling of the type, e.g. `f32[4,8]`.
  std::string typeStr() const { return type().str(); }

 private:
  GraphBuilder* builder_ = nullptr;
  ir::ValueId id_ = -1;
};

/// An operand of an elementwise op: a Tensor or a scalar, plus where in the model it was
/// written (captured when the conversion happens, i.e. at the operator expression).
class Operand {
 public:
  /// A tensor operand.
  Operand(const Tensor& t, std::source_location loc = std::source_location::current())
      : tensor_(t), loc_(loc) {}
  /// A scalar operand; it takes the dtype of the tensor it meets.
  Operand(double s, std::source_location loc = std::source_location::current()) : scalar_(s), loc_(loc) {}

  /// True when this operand is a tensor.
  bool isTensor() const { return tensor_.valid(); }
  /// The tensor (invalid handle for a scalar).
  const Tensor& tensor() const { return tensor_; }
  /// The scalar value (meaningful when !isTensor()).
  double scalar() const { return scalar_; }
  /// Where the operand was written.
  const std::source_location& loc() const { return loc_; }

 private:
  Tensor tensor_;
  double scalar_ = 0;
  std::source_location loc_;
};

/// Elementwise `a + b` with numpy broadcasting.
Tensor operator+(const Tensor& a, const Operand& b);
/// Elementwise `a + b` for a scalar `a`.
Tensor operator+(double a, const Operand& b);
/// Elementwise `a - b` with numpy broadcasting.
Tensor operator-(const Tensor& a, const Operand& b);
/// Elementwise `a - b` for a scalar `a`.
Tensor operator-(double a, const Operand& b);
/// Elementwise `a * b` with numpy broadcasting.
Tensor operator*(const Tensor& a, const Operand& b);
/// Elementwise `a * b` for a scalar `a`.
Tensor operator*(double a, const Operand& b);
/// Elementwise `a / b` with numpy broadcasting.
Tensor operator/(const Tensor& a, const Operand& b);
/// Elementwise `a / b` for a scalar `a`.
Tensor operator/(double a, const Operand& b);
/// Elementwise negation.
Tensor operator-(const Operand& x);

/// Elementwise `a < b` as a bool tensor.
Tensor operator<(const Tensor& a, const Operand& b);
/// Elementwise `a < b` for a scalar `a`.
Tensor operator<(double a, const Operand& b);
/// Elementwise `a <= b` as a bool tensor.
Tensor operator<=(const Tensor& a, const Operand& b);
/// Elementwise `a <= b` for a scalar `a`.
Tensor operator<=(double a, const Operand& b);
/// Elementwise `a > b` as a bool tensor.
Tensor operator>(const Tensor& a, const Operand& b);
/// Elementwise `a > b` for a scalar `a`.
Tensor operator>(double a, const Operand& b);
/// Elementwise `a >= b` as a bool tensor.
Tensor operator>=(const Tensor& a, const Operand& b);
/// Elementwise `a >= b` for a scalar `a`.
Tensor operator>=(double a, const Operand& b);
// `==` and `!=` stay ordinary C++ comparisons; use eq() / ne() for elementwise equality.

/// Elementwise logical and of bool tensors.
Tensor operator&(const Tensor& a, const Operand& b);
/// Elementwise logical or of bool tensors.
Tensor operator|(const Tensor& a, const Operand& b);
/// Elementwise logical not of a bool tensor.
Tensor operator!(const Operand& x);

/// `a = a + b`.
Tensor& operator+=(Tensor& a, const Operand& b);
/// `a = a - b`.
Tensor& operator-=(Tensor& a, const Operand& b);
/// `a = a * b`.
Tensor& operator*=(Tensor& a, const Operand& b);
/// `a = a / b`.
Tensor& operator/=(Tensor& a, const Operand& b);

}  // namespace weft
