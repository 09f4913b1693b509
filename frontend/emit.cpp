#include "frontend/emit.h"

#include "ir/error.h"

namespace weft::detail {

GraphBuilder& builderOf(std::string_view op, const std::vector<Tensor>& xs, const std::source_location& loc) {
  GraphBuilder* b = nullptr;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].valid())
      failAt(loc, std::string(op) + ": operand " + std::to_string(i) + " is an empty weft::Tensor");
    if (b && &xs[i].builder() != b)
      failAt(loc, std::string(op) + ": operands belong to different graph builders");
    b = &xs[i].builder();
  }
  if (!b) b = &currentBuilder(loc);
  return *b;
}

Tensor emit(ir::OpKind op, const std::vector<Tensor>& xs, ir::Attrs attrs, const std::source_location& loc) {
  GraphBuilder& b = builderOf(ir::opName(op), xs, loc);
  std::vector<ir::ValueId> ids;
  ids.reserve(xs.size());
  for (const Tensor& x : xs) ids.push_back(x.id());
  return Tensor(&b, b.emit(op, std::move(ids), std::move(attrs), loc));
}

void fail(std::string_view op, const std::vector<Tensor>& xs, const std::string& why,
          const std::source_location& loc) {
  std::string types;
  for (size_t i = 0; i < xs.size(); ++i) types += (i ? ", " : "") + (xs[i].valid() ? xs[i].typeStr() : "<empty>");
  failAt(loc, std::string(op) + "(" + types + "): " + why);
}

int64_t normAxis(int64_t axis, int64_t rank, std::string_view op, const std::vector<Tensor>& xs,
                 const std::source_location& loc) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    fail(op, xs, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank), loc);
  return a;
}

std::vector<int64_t> range(int64_t n) {
  std::vector<int64_t> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] = i;
  return r;
}

}  // namespace weft::detail
