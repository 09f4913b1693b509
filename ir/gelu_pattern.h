#pragma once
/// GELU (its erf form) as decompose-composites writes it, found again among primitives: the
/// fusion of a matmul's epilogue runs it as one oneDNN post-op (eltwise_gelu_erf) instead of
/// a kernel of its own.
#include <array>
#include <optional>

#include "ir/graph.h"

namespace weft::ir {

/// The five nodes computing 0.5 x (1 + erf(x / sqrt(2))) from `x` in `g`:
///   a = mul(x, 1/sqrt(2)), e = erf(a), p = add(1, e), h = mul(x, 0.5), y = mul(h, p)
/// (add and mul operands in either order; the constants one-element f32 constants, seen
/// through broadcasts and reshapes), in the order a, e, p, h, y. Found only when x is read by
/// a and h alone, every other node but y by the next one alone, none of them an output or
/// state update, and all have x's type; nullopt otherwise.
std::optional<std::array<ValueId, 5>> matchErfGelu(const Graph& g, ValueId x);

}  // namespace weft::ir
