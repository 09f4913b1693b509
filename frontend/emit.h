#pragma once
/// Internal helpers shared by the DSL's .cpp files: emitting an op on tensors, checking
/// that operands belong to one builder, normalizing axes, frontend-side errors.
#include <string>
#include <string_view>
#include <vector>

#include "frontend/tensor.h"

namespace weft::detail {

/// The builder shared by `xs`; throws at `loc` when one is empty or they mix builders.
GraphBuilder& builderOf(std::string_view op, const std::vector<Tensor>& xs, const std::source_location& loc);

/// Emits `op` on `xs` with `attrs` and returns the result.
Tensor emit(ir::OpKind op, const std::vector<Tensor>& xs, ir::Attrs attrs, const std::source_location& loc);

/// Throws `FILE:LINE: op(types): why`, the format of the IR's type errors.
[[noreturn]] void fail(std::string_view op, const std::vector<Tensor>& xs, const std::string& why,
                       const std::source_location& loc);

/// `axis` made non-negative for `rank`; throws the usual op error when out of range.
int64_t normAxis(int64_t axis, int64_t rank, std::string_view op, const std::vector<Tensor>& xs,
                 const std::source_location& loc);

/// The IR attribute value of a bool flag.
inline int64_t flag(bool b) { return b ? 1 : 0; }

/// The list `0, 1, ..., n-1`.
std::vector<int64_t> range(int64_t n);

}  // namespace weft::detail
