// fuse-attention: merges causal attention's three kernels into one `fused` node of kind
// "attention" (ir/fused_attention.h) that the CPU runs as one native step
// (runtime/cpu/native_attention.h): the scores q k^T (a fused matmul, needed="lower"), their
// masked softmax (a rows kernel) and its product with v (a matmul, lhs_zeros="upper"; plain
// matmuls among them become fused ones of kind "matmul").
// Run after triangular-matmuls and fuse-rows.
//
// A triple merges when the scores are read by the softmax alone and the probabilities by
// their product with v alone, so neither needs to be written: in inference. A training step
// keeps the probabilities for the backward pass: there the scores and the softmax merge
// (the node returns the probabilities, the scores unwritten) and the product stays apart.
//
// The backward pass merges into one node of kind "attention_grad": the probabilities'
// gradient dy v^T (a matmul read only by the next kernel), the scores' gradient (a rows
// kernel read by two of the products), the products ds k, ds^T q and p^T dy, and the concat
// of their reshapes (the gradient of a fused qkv). The merged node
// takes the place of the product (its name and type), its operands those of the scores and
// then v, and it is kept only when the native step takes it (triangular views, one batch
// shape, the probabilities read as computed).
#include <algorithm>
#include <memory>
#include <optional>

#include "backends/cpu/executable.h"
#include "ir/attrs.h"
#include "ir/fused_attention.h"
#include "passes/pass_manager.h"
#include "passes/rewriter.h"
#include "passes/sole_users.h"
#include "runtime/cpu/native_attention.h"

namespace weft::cpu {
namespace {

using ir::OpKind;
using ir::ValueId;

std::string kindOf(const ir::Node& n) {
  return n.op == OpKind::Fused && n.body ? ir::AttrReader(n.attrs, n.op).s("kind") : std::string();
}

/// True when `n` is a matmul, plain or fused.
bool isMatmul(const ir::Node& n) { return n.op == OpKind::Matmul || kindOf(n) == "matmul"; }

/// Matmul node `n` of `g` as a fused matmul: itself when fused, else a fused node of kind
/// "matmul" whose body is `n` on the node's operands.
ir::Node asFusedMatmul(const ir::Graph& g, const ir::Node& n) {
  if (n.op == OpKind::Fused) return n;
  ir::Graph body;
  body.setName("fused_matmul");
  ir::Node matmul = n;
  matmul.name.clear();
  for (size_t i = 0; i < n.operands.size(); ++i)
    matmul.operands[i] = body.addInput("in" + std::to_string(i), g.type(n.operands[i]));
  body.addOutput("out", body.addNode(std::move(matmul)));
  ir::Node fused = n;
  fused.op = OpKind::Fused;
  fused.attrs = {{"kind", std::string("matmul")}};
  fused.body = std::make_shared<const ir::Graph>(std::move(body));
  return fused;
}

/// True when the matmul of fused matmul body `body` reads its lhs transposed.
bool transposesLhs(const ir::Graph& body) {
  for (const ir::Node& n : body.nodes())
    if (n.op == OpKind::Matmul) return ir::AttrReader(n.attrs, n.op).i("transpose_lhs", 0) != 0;
  return false;
}

/// True when `n` is a fused loop kernel that only moves its one operand: slices, reshapes
/// and transposes in a chain from its input to its output (a head cut out of a fused qkv).
bool isViewCopy(const ir::Node& n) {
  if (kindOf(n) != "loop" || n.operands.size() != 1) return false;
  const ir::Graph& body = *n.body;
  ValueId expected = body.inputs().at(0);
  for (ValueId v = 0; v < body.size(); ++v) {
    const ir::Node& x = body.node(v);
    if (x.op == OpKind::Input) continue;
    if ((x.op != OpKind::Slice && x.op != OpKind::Reshape && x.op != OpKind::Transpose) || x.operands.size() != 1 ||
        x.operands[0] != expected)
      return false;
    expected = v;
  }
  return body.outputs().size() == 1 && body.outputs()[0].value == expected && expected != body.inputs()[0];
}

/// Fused matmul `matmul` with its operand `index` read through the view ops of view copy
/// `copy` (isViewCopy) from the copy's operand instead.
ir::Node readThroughCopy(const ir::Graph& g, const ir::Node& matmul, size_t index, ValueId copy) {
  const ir::Graph& old = *matmul.body;
  const ir::Graph& views = *g.node(copy).body;
  ir::Graph body;
  body.setName(old.name());
  std::vector<ValueId> map(static_cast<size_t>(old.size()), -1);
  const std::vector<ValueId> inputs = old.inputs();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ir::Node& in = old.node(inputs[i]);
    map[static_cast<size_t>(inputs[i])] = body.addInput(in.name, i == index ? g.type(g.node(copy).operands[0]) : in.type);
  }
  ValueId viewed = map[static_cast<size_t>(inputs[index])];
  for (ValueId v = 0; v < views.size(); ++v) {
    if (views.node(v).op == OpKind::Input) continue;
    ir::Node view = views.node(v);
    view.operands = {viewed};
    view.name.clear();
    viewed = body.addNode(std::move(view));
  }
  for (ValueId v = 0; v < old.size(); ++v) {
    if (old.node(v).op == OpKind::Input) continue;
    ir::Node n = old.node(v);
    for (ValueId& o : n.operands) o = o == inputs[index] ? viewed : map[static_cast<size_t>(o)];
    map[static_cast<size_t>(v)] = body.addNode(std::move(n));
  }
  for (const ir::Output& out : old.outputs()) body.addOutput(out.name, map[static_cast<size_t>(out.value)]);
  ir::Node folded = matmul;
  folded.operands[index] = g.node(copy).operands[0];
  folded.body = std::make_shared<const ir::Graph>(std::move(body));
  return folded;
}

/// The attention body of the scores `scores`, probabilities `probabilities` and product
/// `result` (nodes of `g`, the product's operands their stored ones; none: the body returns
/// the probabilities), whose inputs are `operands` (values of `g`).
ir::Graph attentionBody(const ir::Graph& g, ir::Node scores, ir::Node probabilities, std::optional<ir::Node> result,
                        const std::vector<ValueId>& operands) {
  ir::Graph body;
  body.setName("causal_attention");
  std::vector<ValueId> inputs;
  for (size_t i = 0; i < operands.size(); ++i)
    inputs.push_back(body.addInput("in" + std::to_string(i), g.type(operands[i])));
  auto input = [&](ValueId outer) {
    return inputs[static_cast<size_t>(std::find(operands.begin(), operands.end(), outer) - operands.begin())];
  };
  for (ValueId& operand : scores.operands) operand = input(operand);
  scores.name = "scores";
  const ValueId scoresValue = body.addNode(std::move(scores));
  probabilities.operands = {scoresValue};
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
std::optional<ir::Graph> mergeAttention(const ir::Graph& g, ValueId s, ValueId p, ValueId o, bool foldCopies) {
  const std::vector<ValueId> sole = passes::soleUsers(g);
  const ValueId last = o >= 0 ? o : p;
  ir::Node scores = asFusedMatmul(g, g.node(s));
  std::optional<ir::Node> result;
  if (o >= 0) result = asFusedMatmul(g, g.node(o));
  std::vector<ValueId> folded;
  auto fold = [&](ir::Node& matmul, ValueId reader, size_t index) {
    const ValueId x = matmul.operands[index];
    if (!foldCopies || !isViewCopy(g.node(x)) || sole[static_cast<size_t>(x)] != reader) return;
    matmul = readThroughCopy(g, matmul, index, x);
    folded.push_back(x);
  };
  fold(scores, s, 0);
  fold(scores, s, 1);
  if (result) fold(*result, o, 1);
  std::vector<ValueId> operands;
  for (ValueId x : {scores.operands[0], scores.operands[1]})
    if (std::find(operands.begin(), operands.end(), x) == operands.end()) operands.push_back(x);
  if (result && std::find(operands.begin(), operands.end(), result->operands[1]) == operands.end())
    operands.push_back(result->operands[1]);
  passes::Rewriter rw(g);
  ValueId merged = -1;
  for (ValueId v = 0; v < g.size(); ++v) {
    rw.begin(v);
    if ((v == s || v == p || std::find(folded.begin(), folded.end(), v) != folded.end()) && v != last) {
      rw.erase(v);
    } else if (v != last) {
      rw.copy(v);
    } else {
      ir::Node node;
      node.op = OpKind::Fused;
      node.type = g.node(last).type;
      node.loc = g.node(last).loc;
      node.attrs["kind"] = std::string("attention");
      for (ValueId x : operands) node.operands.push_back(rw.map(x));
      node.body = std::make_shared<const ir::Graph>(attentionBody(g, scores, g.node(p), result, operands));
      merged = rw.target().addNode(std::move(node));
      rw.replace(last, merged);
    }
  }
  ir::Graph candidate = rw.finish();
  if (!runsCausalAttention(candidate, merged)) return std::nullopt;
  return candidate;
}

/// One merge, or false when none applies: a causal softmax's scores (read by it alone)
/// with its product with v when that alone reads the probabilities, else without.
bool mergeOnce(ir::Graph& g, std::vector<bool>& refused) {
  const std::vector<ValueId> sole = passes::soleUsers(g);
  for (ValueId p = 0; p < g.size(); ++p) {
    if (refused[static_cast<size_t>(p)] || kindOf(g.node(p)) != "rows" || g.node(p).operands.size() != 1) continue;
    const ValueId s = g.node(p).operands[0];
    if (!isMatmul(g.node(s)) || sole[static_cast<size_t>(s)] != p) continue;
    const ValueId o = sole[static_cast<size_t>(p)];
    const bool product = o >= 0 && isMatmul(g.node(o)) && g.node(o).operands.size() == 2 &&
                         g.node(o).operands[0] == p && g.node(o).operands[1] != p;
    std::optional<ir::Graph> merged;
    if (product) merged = mergeAttention(g, s, p, o, true);
    if (product && !merged) merged = mergeAttention(g, s, p, o, false);
    if (!product) merged = mergeAttention(g, s, p, -1, true);
    if (!product && !merged) merged = mergeAttention(g, s, p, -1, false);
    if (!merged) {
      refused[static_cast<size_t>(p)] = true;
      continue;
    }
    g = std::move(*merged);
    refused.assign(static_cast<size_t>(g.size()), false);
    return true;
  }
  return false;
}

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
  if (ds < 0 || kindOf(g.node(ds)) != "rows") return std::nullopt;
  if (reads[static_cast<size_t>(ds)] != 2 || g.node(ds).operands.size() != 2) return std::nullopt;
  const ValueId dp = g.node(ds).operands[0], probabilities = g.node(ds).operands[1];
  if (!isMatmul(g.node(dp)) || sole[static_cast<size_t>(dp)] != ds) return std::nullopt;
  int readingDs = 0;
  for (ValueId x : products) readingDs += g.node(x).operands[0] == ds ? 1 : 0;
  if (readingDs != 2) return std::nullopt;
  erased.insert(erased.end(), {dp, ds});

  // The body: the operands of dp, the probabilities and the products' right-hand sides as inputs.
  std::vector<ValueId> operands;
  auto addOperand = [&](ValueId x) {
    if (std::find(operands.begin(), operands.end(), x) == operands.end()) operands.push_back(x);
  };
  for (ValueId x : g.node(dp).operands) addOperand(x);
  addOperand(probabilities);
  for (ValueId x : products) addOperand(g.node(x).operands[1]);
  ir::Graph body;
  body.setName("causal_attention_grad");
  std::vector<ValueId> inputs;
  for (size_t i = 0; i < operands.size(); ++i) inputs.push_back(body.addInput("in" + std::to_string(i), g.type(operands[i])));
  auto input = [&](ValueId outer) {
    return inputs[static_cast<size_t>(std::find(operands.begin(), operands.end(), outer) - operands.begin())];
  };
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

  passes::Rewriter rw(g);
  ValueId merged = -1;
  for (ValueId v = 0; v < g.size(); ++v) {
    rw.begin(v);
    if (std::find(erased.begin(), erased.end(), v) != erased.end()) {
      rw.erase(v);
    } else if (v != c) {
      rw.copy(v);
    } else {
      ir::Node node;
      node.op = OpKind::Fused;
      node.type = concat.type;
      node.loc = concat.loc;
      node.attrs["kind"] = std::string("attention_grad");
      for (ValueId x : operands) node.operands.push_back(rw.map(x));
      node.body = std::make_shared<const ir::Graph>(std::move(body));
      merged = rw.target().addNode(std::move(node));
      rw.replace(c, merged);
    }
  }
  ir::Graph candidate = rw.finish();
  if (!runsCausalAttentionGrad(candidate, merged)) return std::nullopt;
  return candidate;
}

/// One merge of an attention gradient, or false when none applies.
bool mergeGradOnce(ir::Graph& g, std::vector<bool>& refused) {
  for (ValueId c = 0; c < g.size(); ++c) {
    if (refused[static_cast<size_t>(c)] || g.node(c).op != OpKind::Concat) continue;
    std::optional<ir::Graph> merged = mergeAttentionGrad(g, c);
    if (!merged) {
      refused[static_cast<size_t>(c)] = true;
      continue;
    }
    g = std::move(*merged);
    refused.assign(static_cast<size_t>(g.size()), false);
    return true;
  }
  return false;
}

bool fuseAttention(ir::Graph& g) {
  std::vector<bool> refused(static_cast<size_t>(g.size()), false);
  bool changed = false;
  while (mergeOnce(g, refused)) changed = true;
  refused.assign(static_cast<size_t>(g.size()), false);
  while (mergeGradOnce(g, refused)) changed = true;
  return changed;
}

}  // namespace

void registerCpuPasses() {
  passes::registerPass({"fuse-attention",
                        "merge causal attention's kernels into one step (its forward pass in inference, its backward pass)",
                        fuseAttention});
}

}  // namespace weft::cpu
