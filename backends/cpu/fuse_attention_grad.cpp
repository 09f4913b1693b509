// fuse-attention's backward half (see fuse_attention.h): the backward pass of causal
// attention as one `fused` node of kind "attention_grad" (ir/fused_attention.h) that the CPU
// runs as one native step (runtime/cpu/native_attention.h). A concat of three reshaped
// products merges when two of the products read the scores' gradient (a rows kernel read by
// them alone) and the third the probabilities that kernel reads, and the probabilities'
// gradient dy v^T (a matmul) is read by that kernel alone: the node's operands are dy, v,
// the probabilities and the products' right-hand sides, and it takes the concat's place.
#include <optional>

#include "backends/cpu/fuse_attention.h"
#include "backends/cpu/fused_matmul_nodes.h"
#include "passes/sole_users.h"
#include "runtime/cpu/native_attention.h"

namespace weft::cpu {
namespace {

using ir::OpKind;
using ir::ValueId;

/// The attention gradient node replacing concat `c` of `g` (its pieces reshapes of three
/// products, two of them reading the rows kernel of a causal softmax's gradient, the third
/// its probabilities), or nullopt when `c` is no such concat or the native step would not
/// take the node.
std::optional<ir::Graph> mergeAttentionGrad(const ir::Graph& g, ValueId c) {
  const ir::Node& concat = g.node(c);
  if (concat.op != OpKind::Concat || concat.operands.size() != 3) return std::nullopt;
  const std::vector<ValueId> sole = passes::soleUsers(g);
  const std::vector<int> reads = passes::readerCounts(g);
  std::vector<ValueId> products, erased;
  ValueId ds = -1;
  for (ValueId r : concat.operands) {
    if (g.node(r).op != OpKind::Reshape || sole[static_cast<size_t>(r)] != c) return std::nullopt;
    const ValueId x = g.node(r).operands[0];
    if (!isMatmul(g.node(x)) || sole[static_cast<size_t>(x)] != r) return std::nullopt;
    products.push_back(x);
    erased.insert(erased.end(), {r, x});
  }
  // The scores' gradient: the lhs two of the products share (the third reads the probabilities).
  for (size_t i = 0; i < 3; ++i)
    if (g.node(products[i]).operands[0] == g.node(products[(i + 1) % 3]).operands[0]) ds = g.node(products[i]).operands[0];
  if (ds < 0 || ir::fusedKind(g.node(ds)) != "rows") return std::nullopt;
  if (reads[static_cast<size_t>(ds)] != 2 || g.node(ds).operands.size() != 2) return std::nullopt;
  const ValueId dp = g.node(ds).operands[0], probabilities = g.node(ds).operands[1];
  if (!isMatmul(g.node(dp)) || sole[static_cast<size_t>(dp)] != ds) return std::nullopt;
  erased.insert(erased.end(), {dp, ds});

  // The body: the operands of dp, the probabilities and the products' right-hand sides as inputs.
  std::vector<ValueId> operands;
  for (ValueId x : g.node(dp).operands) appendOnce(operands, x);
  appendOnce(operands, probabilities);
  for (ValueId x : products) appendOnce(operands, g.node(x).operands[1]);
  ir::Graph body;
  body.setName("causal_attention_grad");
  const BodyInputs input(body, g, operands);
  ir::Node dpNode = asFusedMatmul(g, g.node(dp));
  for (ValueId& o : dpNode.operands) o = input(o);
  dpNode.name = "probabilities_grad";
  const ValueId dpValue = body.addNode(std::move(dpNode));
  ir::Node dsNode = g.node(ds);
  dsNode.operands = {dpValue, input(probabilities)};
  dsNode.name = "scores_grad";
  const ValueId dsValue = body.addNode(std::move(dsNode));
  std::vector<ValueId> pieces;
  for (size_t i = 0; i < 3; ++i) {
    ir::Node product = asFusedMatmul(g, g.node(products[i]));
    const bool readsDs = product.operands[0] == ds;
    product.operands = {readsDs ? dsValue : input(probabilities), input(product.operands[1])};
    product.name = !readsDs ? "v_grad" : transposesLhs(*product.body) ? "k_grad" : "q_grad";
    const ValueId value = body.addNode(std::move(product));
    ir::Node reshape = g.node(concat.operands[i]);
    reshape.operands = {value};
    reshape.name.clear();
    pieces.push_back(body.addNode(std::move(reshape)));
  }
  ir::Node joined = concat;
  joined.operands = pieces;
  joined.name.clear();
  body.addOutput("out", body.addNode(std::move(joined)));

  return withFusedNode(g, erased, c, "attention_grad", operands, std::move(body), runsCausalAttentionGrad);
}

}  // namespace

bool mergeAttentionGrads(ir::Graph& g) { return mergeWherePossible(g, mergeAttentionGrad); }

}  // namespace weft::cpu
