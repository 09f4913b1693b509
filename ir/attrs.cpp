#include "ir/attrs.h"

#include <cstring>

#include "ir/error.h"

namespace weft::ir {

AttrKind attrKindOf(const AttrValue& v) {
  switch (v.index()) {
    case 0: return AttrKind::Int;
    case 1: return AttrKind::Float;
    case 2: return AttrKind::Str;
    case 3: return AttrKind::Ints;
    case 4: return AttrKind::DType;
    default: return AttrKind::Tensor;
  }
}

const AttrValue& AttrReader::get(const std::string& name) const {
  auto it = attrs_.find(name);
  if (it == attrs_.end())
    throw Error("op '" + std::string(opName(op_)) + "' is missing attribute '" + name + "'");
  return it->second;
}

template <class T>
static const T& typed(const AttrValue& v, OpKind op, const std::string& name, const char* want) {
  if (auto* p = std::get_if<T>(&v)) return *p;
  throw Error("op '" + std::string(opName(op)) + "' attribute '" + name + "' must be " + want +
              ", got " + std::string(attrKindName(attrKindOf(v))));
}

int64_t AttrReader::i(const std::string& n) const { return typed<int64_t>(get(n), op_, n, "int"); }
int64_t AttrReader::i(const std::string& n, int64_t d) const { return has(n) ? i(n) : d; }
double AttrReader::f(const std::string& n) const {
  const AttrValue& v = get(n);
  if (auto* p = std::get_if<int64_t>(&v)) return static_cast<double>(*p);
  return typed<double>(v, op_, n, "float");
}
double AttrReader::f(const std::string& n, double d) const { return has(n) ? f(n) : d; }
const std::string& AttrReader::s(const std::string& n) const {
  return typed<std::string>(get(n), op_, n, "str");
}
const std::vector<int64_t>& AttrReader::ints(const std::string& n) const {
  return typed<std::vector<int64_t>>(get(n), op_, n, "ints");
}
DType AttrReader::dtype(const std::string& n) const { return typed<DType>(get(n), op_, n, "dtype"); }
const TensorDataPtr& AttrReader::tensor(const std::string& n) const {
  return typed<TensorDataPtr>(get(n), op_, n, "tensor");
}

namespace {

bool sameAttr(const AttrValue& a, const AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (auto* x = std::get_if<double>(&a)) return std::memcmp(x, &std::get<double>(b), sizeof(double)) == 0;
  if (auto* x = std::get_if<TensorDataPtr>(&a)) {
    const auto& y = std::get<TensorDataPtr>(b);
    return x->get() == y.get() || (*x && y && **x == *y);
  }
  return a == b;
}

}  // namespace

bool sameAttrs(const Attrs& x, const Attrs& y) {
  if (x.size() != y.size()) return false;
  for (auto a = x.begin(), b = y.begin(); a != x.end(); ++a, ++b)
    if (a->first != b->first || !sameAttr(a->second, b->second)) return false;
  return true;
}

}  // namespace weft::ir
