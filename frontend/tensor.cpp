#include "frontend/tensor.h"

#include "frontend/emit.h"
#include "frontend/ops.h"
#include "ir/error.h"

namespace weft {

int64_t Tensor::dim(int64_t d, std::source_location loc) const {
  if (!valid()) failAt(loc, "dim() of an empty weft::Tensor");
  int64_t r = rank();
  int64_t a = d < 0 ? d + r : d;
  if (a < 0 || a >= r) failAt(loc, "dimension " + std::to_string(d) + " is out of range for " + typeStr());
  return shape()[static_cast<size_t>(a)];
}

Tensor operator+(const Tensor& a, const Operand& b) { return add(a, b, b.loc()); }
Tensor operator+(double a, const Operand& b) { return add(a, b, b.loc()); }
Tensor operator-(const Tensor& a, const Operand& b) { return sub(a, b, b.loc()); }
Tensor operator-(double a, const Operand& b) { return sub(a, b, b.loc()); }
Tensor operator*(const Tensor& a, const Operand& b) { return mul(a, b, b.loc()); }
Tensor operator*(double a, const Operand& b) { return mul(a, b, b.loc()); }
Tensor operator/(const Tensor& a, const Operand& b) { return div(a, b, b.loc()); }
Tensor operator/(double a, const Operand& b) { return div(a, b, b.loc()); }

Tensor operator-(const Operand& x) {
  if (!x.isTensor()) failAt(x.loc(), "neg: needs a tensor operand");
  return neg(x.tensor(), x.loc());
}

Tensor operator<(const Tensor& a, const Operand& b) { return lt(a, b, b.loc()); }
Tensor operator<(double a, const Operand& b) { return lt(a, b, b.loc()); }
Tensor operator<=(const Tensor& a, const Operand& b) { return le(a, b, b.loc()); }
Tensor operator<=(double a, const Operand& b) { return le(a, b, b.loc()); }
Tensor operator>(const Tensor& a, const Operand& b) { return gt(a, b, b.loc()); }
Tensor operator>(double a, const Operand& b) { return gt(a, b, b.loc()); }
Tensor operator>=(const Tensor& a, const Operand& b) { return ge(a, b, b.loc()); }
Tensor operator>=(double a, const Operand& b) { return ge(a, b, b.loc()); }

Tensor operator&(const Tensor& a, const Operand& b) { return logical_and(a, b, b.loc()); }
Tensor operator|(const Tensor& a, const Operand& b) { return logical_or(a, b, b.loc()); }
Tensor operator!(const Operand& x) {
  if (!x.isTensor()) failAt(x.loc(), "logical_not: needs a tensor operand");
  return logical_not(x.tensor(), x.loc());
}

Tensor& operator+=(Tensor& a, const Operand& b) { return a = add(a, b, b.loc()); }
Tensor& operator-=(Tensor& a, const Operand& b) { return a = sub(a, b, b.loc()); }
Tensor& operator*=(Tensor& a, const Operand& b) { return a = mul(a, b, b.loc()); }
Tensor& operator/=(Tensor& a, const Operand& b) { return a = div(a, b, b.loc()); }

}  // namespace weft
