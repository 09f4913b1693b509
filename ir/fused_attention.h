#pragma once
/// Attention kernels: the body of a `fused` node of kind "attention" holds causal attention's
/// three kernels, scores, probabilities and their product with v, as three fused nodes:
///
///   %s = fused(q, k) {kind="matmul"}   the scores q k^T (and a scale)
///   %p = fused(%s) {kind="rows"}       the masked softmax of each row of %s
///   %o = fused(%p, v) {kind="matmul"}  %p v (and a transpose of the result)
///
/// (or the first two alone, returning %p, where something else reads the probabilities)
/// so that a backend can compute each row's scores and probabilities where they stay in the
/// cache, without writing either. The body of kind "attention_grad" holds the backward pass
/// of the same attention, from the saved probabilities p and the result's gradient dy:
///
///   %dp = fused(dy, v) {kind="matmul"}     the probabilities' gradient dy v^T
///   %ds = fused(%dp, p) {kind="rows"}      the scores' gradient p (dp - rowsum(dp p)), masked, scaled
///   three fused matmuls: %ds k (dq), %ds^T q (dk), p^T dy (dv)
///   their reshapes concatenated along the last axis (the gradient of a fused qkv)
///
/// so that the gradients of the probabilities and scores stay in the cache too. The
/// reference interpreter runs either body as it is.
#include <optional>
#include <string>

#include "ir/graph.h"

namespace weft::ir {

/// The three fused nodes of an attention body.
struct AttentionParts {
  ValueId scores = -1;         ///< fused, kind "matmul": reads body inputs only
  ValueId probabilities = -1;  ///< fused, kind "rows": causalSoftmax of the scores
  ValueId result = -1;         ///< fused, kind "matmul": the probabilities (lhs) by a body input; -1: none
};

/// The nodes of an attention gradient body.
struct AttentionGradParts {
  ValueId scoresGrad = -1;     ///< fused, kind "matmul": reads body inputs only
  ValueId softmaxGrad = -1;    ///< fused, kind "rows": causalSoftmaxGradScale of (scoresGrad, probabilities)
  ValueId probabilities = -1;  ///< the body input holding the probabilities
  ValueId products[3] = {-1, -1, -1};  ///< fused, kind "matmul": the concat's pieces in its order
};

/// True when `rows` (a body of kind "rows") is the softmax of its one input's last axis with
/// the entries above the diagonal masked away: select(column > row, -inf, x), the row's max,
/// exp(x - max), its sum, and exp divided by the sum.
bool isCausalSoftmax(const Graph& rows);

/// The scale c when `rows` (a body of kind "rows" of inputs dp and p, in that order) is the
/// gradient of a causal softmax's input scaled by c: select(column > row, 0, p (dp -
/// rowsum(dp p))) times c (or not multiplied: c = 1); else nullopt.
std::optional<double> causalSoftmaxGradScale(const Graph& rows);

/// Why `body` is not an attention body, or nullopt when it is: three fused nodes besides
/// its inputs, as AttentionParts describes, each read only by the next, the result being the
/// body's output; or only the scores and the probabilities, the probabilities being the
/// output (a training step's forward pass, whose backward pass reads them).
std::optional<std::string> attentionBodyProblem(const Graph& body);

/// The parts of `body`, which attentionBodyProblem accepts.
AttentionParts attentionParts(const Graph& body);

/// Why `body` is not an attention gradient body, or nullopt when it is: five fused nodes,
/// as AttentionGradParts describes, the softmax's gradient read by two of the products and
/// the probabilities by the third, each product read by one reshape, and a concat of the
/// three reshapes along its last axis as the body's output.
std::optional<std::string> attentionGradBodyProblem(const Graph& body);

/// The parts of `body`, which attentionGradBodyProblem accepts.
AttentionGradParts attentionGradParts(const Graph& body);

}  // namespace weft::ir
