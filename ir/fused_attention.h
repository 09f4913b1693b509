#pragma once
/// Attention kernels: the body of a `fused` node of kind "attention" holds causal attention's
/// three kernels, scores, probabilities and their product with v, as three fused nodes:
///
///   %s = fused(q, k) {kind="matmul"}   the scores q k^T (and a scale)
///   %p = fused(%s) {kind="rows"}       the masked softmax of each row of %s
///   %o = fused(%p, v) {kind="matmul"}  %p v (and a transpose of the result)
///
/// so that a backend can compute each row's scores and probabilities where they stay in the
/// cache, without writing either. The reference interpreter runs the body as it is.
#include <optional>
#include <string>

#include "ir/graph.h"

namespace weft::ir {

/// The three fused nodes of an attention body.
struct AttentionParts {
  ValueId scores = -1;         ///< fused, kind "matmul": reads body inputs only
  ValueId probabilities = -1;  ///< fused, kind "rows": causalSoftmax of the scores
  ValueId result = -1;         ///< fused, kind "matmul": the probabilities (lhs) by a body input
};

/// True when `rows` (a body of kind "rows") is the softmax of its one input's last axis with
/// the entries above the diagonal masked away: select(column > row, -inf, x), the row's max,
/// exp(x - max), its sum, and exp divided by the sum.
bool isCausalSoftmax(const Graph& rows);

/// Why `body` is not an attention body, or nullopt when it is: exactly three fused nodes
/// besides its inputs, as AttentionParts describes, each read only by the next, the result
/// being the body's output.
std::optional<std::string> attentionBodyProblem(const Graph& body);

/// The parts of `body`, which attentionBodyProblem accepts.
AttentionParts attentionParts(const Graph& body);

}  // namespace weft::ir
