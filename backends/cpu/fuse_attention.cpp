// fuse-attention: merges causal attention's kernels into `fused` nodes that the CPU runs as
// native steps (ir/fused_attention.h, runtime/cpu/native_attention.h). Run after
// triangular-matmuls and fuse-rows.
//
// Forward: the scores q k^T (a matmul, needed="lower"), their masked softmax (a rows kernel
// read by nothing else) and the product with v (a matmul, lhs_zeros="upper") become one node
// of kind "attention" when the product alone reads the probabilities, so neither the scores
// nor the probabilities are written (inference). Where something else reads the
// probabilities (a training step's backward pass), the node holds the scores and the
// softmax and returns the probabilities, and the product stays apart. The copies that cut
// q, k and v out of a fused qkv, read by nothing else, fold in as views. Plain matmuls
// become fused ones of kind "matmul" inside the node.
//
// Backward (fuse_attention_grad.cpp): dy v^T, the softmax's gradient, its products with k
// and q, p^T dy and the concat of their reshapes become one node of kind "attention_grad".
//
// A merged node takes the place of its last node (its name and type), and is kept only when
// the native step takes it. On a CPU with neither AVX-512 nor AVX2 and FMA nothing merges
// (the steps would run plain loops there).
#include <optional>

#include "backends/cpu/executable.h"
#include "backends/cpu/fuse_attention.h"
#include "backends/cpu/fused_matmul_nodes.h"
#include "passes/pass_manager.h"
#include "passes/sole_users.h"
#include "runtime/cpu/native_attention.h"

namespace weft::cpu {
namespace {

using ir::OpKind;
using ir::ValueId;

/// The attention body of the scores `scores`, probabilities `probabilities` and product
/// `result` (nodes of `g`, the product's operands their stored ones; none: the body returns
/// the probabilities), whose inputs are `operands` (values of `g`).
ir::Graph attentionBody(const ir::Graph& g, ir::Node scores, ir::Node probabilities, std::optional<ir::Node> result,
                        const std::vector<ValueId>& operands) {
  ir::Graph body;
  body.setName("causal_attention");
  const BodyInputs input(body, g, operands);
  for (ValueId& operand : scores.operands) operand = input(operand);
  scores.name = "scores";
  probabilities.operands = {body.addNode(std::move(scores))};
  probabilities.name = "probabilities";
  const ValueId probabilitiesValue = body.addNode(std::move(probabilities));
  if (!result) {
    body.addOutput("out", probabilitiesValue);
    return body;
  }
  result->operands = {probabilitiesValue, input(result->operands[1])};
  result->name = "result";
  body.addOutput("out", body.addNode(std::move(*result)));
  return body;
}

/// `g` with the scores `s`, probabilities `p` and product `o` (-1: none, the node returns
/// the probabilities) as one attention node, its operands read through the view copies
/// among q, k and v when `foldCopies` (the copies dropped); nullopt when the native step
/// would not take the node.
std::optional<ir::Graph> mergeAttention(const ir::Graph& g, const std::vector<ValueId>& sole, ValueId s, ValueId p,
                                        ValueId o, bool foldCopies) {
  ir::Node scores = asFusedMatmul(g, g.node(s));
  std::optional<ir::Node> result;
  if (o >= 0) result = asFusedMatmul(g, g.node(o));
  std::vector<ValueId> erased;  // the folded copies, then the scores and probabilities
  auto fold = [&](ir::Node& matmul, ValueId reader, size_t index) {
    const ValueId x = matmul.operands[index];
    if (!foldCopies || !isViewCopy(g.node(x)) || sole[static_cast<size_t>(x)] != reader) return;
    matmul = readThroughCopy(g, matmul, index, x);
    erased.push_back(x);
  };
  fold(scores, s, 0);
  fold(scores, s, 1);
  if (result) fold(*result, o, 1);
  std::vector<ValueId> operands;
  for (ValueId x : scores.operands) appendOnce(operands, x);
  if (result) appendOnce(operands, result->operands[1]);
  const ValueId last = o >= 0 ? o : p;
  for (ValueId x : {s, p})
    if (x != last) erased.push_back(x);
  return withFusedNode(g, erased, last, "attention", operands,
                       attentionBody(g, std::move(scores), g.node(p), std::move(result), operands), runsCausalAttention);
}

/// The attention node made at `p` of `g`, a causal softmax's rows kernel whose scores it
/// alone reads: with its product with v when that alone reads the probabilities, else
/// without; nullopt when none is made there.
std::optional<ir::Graph> mergeAttentionAt(const ir::Graph& g, ValueId p) {
  if (ir::fusedKind(g.node(p)) != "rows" || g.node(p).operands.size() != 1) return std::nullopt;
  const std::vector<ValueId> sole = passes::soleUsers(g);
  const ValueId s = g.node(p).operands[0];
  if (!isMatmul(g.node(s)) || sole[static_cast<size_t>(s)] != p) return std::nullopt;
  ValueId o = sole[static_cast<size_t>(p)];
  if (o < 0 || !isMatmul(g.node(o)) || g.node(o).operands.size() != 2 || g.node(o).operands[0] != p ||
      g.node(o).operands[1] == p)
    o = -1;
  std::optional<ir::Graph> merged = mergeAttention(g, sole, s, p, o, true);
  return merged ? merged : mergeAttention(g, sole, s, p, o, false);
}

bool fuseAttention(ir::Graph& g) {
  // Without vector tiles the steps would run their plain loops: the kernels apart (oneDNN's
  // matmuls, generated kernels) run faster there.
  if (hostTileIsa() == TileIsa::plain) return false;
  const bool forward = mergeWherePossible(g, mergeAttentionAt);
  return mergeAttentionGrads(g) || forward;
}

}  // namespace

void registerCpuPasses() {
  passes::registerPass({"fuse-attention",
                        "merge causal attention's kernels into one step (its forward pass in inference, its backward pass)",
                        fuseAttention});
}

}  // namespace weft::cpu
