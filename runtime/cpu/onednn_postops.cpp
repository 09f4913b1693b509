// Reads the body of a fused contraction as oneDNN post-ops, and builds their attribute and
// arguments. The body is walked in order: inputs and constant values (constants seen through
// reshape and broadcast) are skipped, the first other node must be the contraction on inputs
// 0 and 1, and every later node must take the previous one (the "chain value") and map to
// one or two post-ops (the five nodes of a GELU after a matmul map to one, eltwise_gelu_erf);
// the chain's last node must be the body's output.
#include "runtime/cpu/onednn_postops.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "ir/channels_last.h"
#include "ir/gelu_pattern.h"

namespace weft::cpu::onednn {
namespace {

using dnnl::algorithm;
using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

/// A constant value of a body: its data, and the shape that data has where it is read
/// (which broadcasts to the reader's shape).
struct ConstantValue {
  ir::TensorDataPtr data;
  ir::Shape shape;
};

/// The f32 constant that value `v` of `body` is, seen through reshapes and broadcasts.
std::optional<ConstantValue> constantOf(const Graph& body, ValueId v) {
  const Node& n = body.node(v);
  switch (n.op) {
    case OpKind::Constant: {
      const ir::TensorDataPtr& t = ir::AttrReader(n.attrs, n.op).tensor("value");
      if (t->type.dtype != ir::DType::f32) return std::nullopt;
      return ConstantValue{t, t->type.shape};
    }
    case OpKind::Reshape: {
      auto c = constantOf(body, n.operands.at(0));
      if (!c || c->data->numel() != n.type.numel()) return std::nullopt;  // a reshaped broadcast
      c->shape = n.type.shape;
      return c;
    }
    case OpKind::Broadcast: return constantOf(body, n.operands.at(0));  // numpy broadcasting reads it as is
    default: return std::nullopt;
  }
}

/// `shape` with leading 1s up to rank `rank`.
ir::Shape alignedShape(const ir::Shape& shape, size_t rank) {
  ir::Shape aligned(rank - shape.size(), 1);
  aligned.insert(aligned.end(), shape.begin(), shape.end());
  return aligned;
}

/// True when `shape` broadcasts to `result` with no dim growing the result.
bool broadcastsTo(const ir::Shape& shape, const ir::Shape& result) {
  if (shape.size() > result.size()) return false;
  ir::Shape aligned = alignedShape(shape, result.size());
  for (size_t d = 0; d < result.size(); ++d)
    if (aligned[d] != 1 && aligned[d] != result[d]) return false;
  return true;
}

/// Appends the post-ops of node `n`, which reads the chain value `chain`; false when `n` has
/// no exact post-op form.
class PostOpReader {
 public:
  PostOpReader(const Graph& body, std::vector<PostOp>& out) : body_(body), out_(out) {
    std::vector<ValueId> inputs = body.inputs();
    for (size_t i = 0; i < inputs.size(); ++i) operandOf_[inputs[i]] = static_cast<int>(i);
  }

  /// Appends GELU's erf form (ir::matchErfGelu's five nodes) as one eltwise post-op.
  bool appendErfGelu() { return eltwise(algorithm::eltwise_gelu_erf, 0, 0, "gelu"); }

  bool append(const Node& n, ValueId chain) {
    if (n.operands.size() == 1) return n.operands[0] == chain && appendUnary(n.op);
    if (n.operands.size() != 2) return false;
    ValueId lhs = n.operands[0], rhs = n.operands[1];
    if (lhs == chain && rhs == chain) return n.op == OpKind::Mul && eltwise(algorithm::eltwise_square, 0, 0, "square");
    if (lhs != chain && rhs != chain) return false;
    bool chainFirst = lhs == chain;
    ValueId other = chainFirst ? rhs : lhs;
    std::optional<ConstantValue> c = constantOf(body_, other);
    std::optional<float> k;
    if (c && c->data->numel() == 1) k = static_cast<float>(c->data->get(0));
    const float inf = std::numeric_limits<float>::infinity();
    switch (n.op) {
      case OpKind::Add:
        return k ? eltwise(algorithm::eltwise_linear, 1, *k, "add") : binary(algorithm::binary_add, other, c, n, "add");
      case OpKind::Sub:
        if (chainFirst)
          return k ? eltwise(algorithm::eltwise_linear, 1, -*k, "sub") : binary(algorithm::binary_sub, other, c, n, "sub");
        if (k) return eltwise(algorithm::eltwise_linear, -1, *k, "rsub");
        return eltwise(algorithm::eltwise_linear, -1, 0, "neg") && binary(algorithm::binary_add, other, c, n, "add");
      case OpKind::Mul:
        return k ? eltwise(algorithm::eltwise_linear, *k, 0, "mul") : binary(algorithm::binary_mul, other, c, n, "mul");
      case OpKind::Div:
        if (!chainFirst) return false;
        return k ? eltwise(algorithm::eltwise_linear, 1 / *k, 0, "div") : binary(algorithm::binary_div, other, c, n, "div");
      case OpKind::Maximum:
        if (k && *k == 0) return eltwise(algorithm::eltwise_relu, 0, 0, "relu");
        return k ? eltwise(algorithm::eltwise_clip_v2, *k, inf, "max") : binary(algorithm::binary_max, other, c, n, "max");
      case OpKind::Minimum:
        return k ? eltwise(algorithm::eltwise_clip_v2, -inf, *k, "min") : binary(algorithm::binary_min, other, c, n, "min");
      case OpKind::Pow: return chainFirst && k && eltwise(algorithm::eltwise_pow, 1, *k, "pow");
      default: return false;
    }
  }

 private:
  bool appendUnary(OpKind op) {
    switch (op) {
      case OpKind::Neg: return eltwise(algorithm::eltwise_linear, -1, 0, "neg");
      case OpKind::Abs: return eltwise(algorithm::eltwise_abs, 0, 0, "abs");
      case OpKind::Exp: return eltwise(algorithm::eltwise_exp, 0, 0, "exp");
      case OpKind::Log: return eltwise(algorithm::eltwise_log, 0, 0, "log");
      case OpKind::Sqrt: return eltwise(algorithm::eltwise_sqrt, 0, 0, "sqrt");
      case OpKind::Rsqrt: return eltwise(algorithm::eltwise_pow, 1, -0.5f, "rsqrt");
      case OpKind::Tanh: return eltwise(algorithm::eltwise_tanh, 0, 0, "tanh");
      case OpKind::Sigmoid: return eltwise(algorithm::eltwise_logistic, 0, 0, "sigmoid");
      default: return false;
    }
  }

  bool eltwise(algorithm a, float alpha, float beta, const char* name) {
    PostOp op;
    op.algorithm = a;
    op.alpha = alpha;
    op.beta = beta;
    op.name = name;
    out_.push_back(std::move(op));
    return true;
  }

  /// A binary post-op reading `other`: one of the node's operands, or a constant.
  bool binary(algorithm a, ValueId other, const std::optional<ConstantValue>& c, const Node& n, const char* name) {
    PostOp op;
    op.binary = true;
    op.algorithm = a;
    op.name = name;
    if (auto it = operandOf_.find(other); it != operandOf_.end()) {
      op.operand = it->second;
      op.shape = body_.type(other).shape;
    } else if (c) {
      op.constant = c->data;
      op.shape = c->shape;
    } else {
      return false;  // computed inside the body from something else
    }
    if (!broadcastsTo(op.shape, n.type.shape)) return false;
    out_.push_back(std::move(op));
    return true;
  }

  const Graph& body_;
  std::vector<PostOp>& out_;
  std::unordered_map<ValueId, int> operandOf_;
};

/// Folds each run of consecutive eltwise_linear post-ops into one:
/// a2 * (a1 * x + b1) + b2 = (a1 * a2) * x + (b1 * a2 + b2).
void foldLinearRuns(std::vector<PostOp>& ops) {
  std::vector<PostOp> folded;
  for (PostOp& op : ops) {
    bool linear = !op.binary && op.algorithm == algorithm::eltwise_linear;
    PostOp* last = folded.empty() ? nullptr : &folded.back();
    if (linear && last && !last->binary && last->algorithm == algorithm::eltwise_linear) {
      last->beta = last->beta * op.alpha + op.beta;
      last->alpha *= op.alpha;
      last->name += "+" + op.name;
    } else {
      folded.push_back(std::move(op));
    }
  }
  ops = std::move(folded);
}

/// A binary post-op `a` with the one-element constant `value`, held by the step.
PostOp scalarBinary(algorithm a, float value, const std::string& name) {
  PostOp op;
  op.binary = true;
  op.algorithm = a;
  auto data = std::make_shared<ir::TensorData>(ir::TensorType{ir::DType::f32, {1}});
  data->set(0, value);
  op.constant = std::move(data);
  op.shape = {1};
  op.name = name;
  return op;
}

/// Rewrites each eltwise post-op whose algorithm an earlier eltwise post-op uses with other
/// parameters as binary post-ops on held one-element constants, where it has that form:
/// linear (a x + b: a mul, then an add) and clip_v2 (a max, then a min). oneDNN 2.6's JIT
/// kernels keep one eltwise injector per algorithm, so the later parameters would otherwise
/// be applied to both (wrong results, not an error); others stay (hasConflictingEltwise).
void separateConflictingEltwise(std::vector<PostOp>& ops) {
  std::vector<PostOp> out;
  for (PostOp& op : ops) {
    const bool conflicts = !op.binary && std::any_of(out.begin(), out.end(), [&](const PostOp& kept) {
      return !kept.binary && kept.algorithm == op.algorithm && (kept.alpha != op.alpha || kept.beta != op.beta);
    });
    const float inf = std::numeric_limits<float>::infinity();
    if (conflicts && op.algorithm == algorithm::eltwise_linear) {
      if (op.alpha != 1) out.push_back(scalarBinary(algorithm::binary_mul, op.alpha, op.name));
      if (op.beta != 0) out.push_back(scalarBinary(algorithm::binary_add, op.beta, op.name));
    } else if (conflicts && op.algorithm == algorithm::eltwise_clip_v2) {
      if (op.alpha != -inf) out.push_back(scalarBinary(algorithm::binary_max, op.alpha, op.name));
      if (op.beta != inf) out.push_back(scalarBinary(algorithm::binary_min, op.beta, op.name));
    } else {
      out.push_back(std::move(op));
    }
  }
  ops = std::move(out);
}

/// True when two eltwise post-ops share an algorithm but not their parameters (what
/// separateConflictingEltwise could not rewrite).
bool hasConflictingEltwise(const std::vector<PostOp>& ops) {
  for (size_t i = 0; i < ops.size(); ++i)
    for (size_t j = i + 1; j < ops.size(); ++j)
      if (!ops[i].binary && !ops[j].binary && ops[i].algorithm == ops[j].algorithm &&
          (ops[i].alpha != ops[j].alpha || ops[i].beta != ops[j].beta))
        return true;
  return false;
}

}  // namespace

std::optional<FusedContraction> parseFusedContraction(const Graph& body) {
  std::vector<ValueId> inputs = body.inputs();
  if (inputs.size() < 2 || body.outputs().size() != 1) return std::nullopt;
  FusedContraction out;
  PostOpReader reader(body, out.postOps);
  ValueId chain = -1, contraction = -1;
  std::vector<ValueId> read = {inputs[0], inputs[1]};  // what the contraction must read
  std::vector<ValueId> inGelu;  // the nodes of a GELU after its first, read as one post-op
  for (ValueId v = 0; v < body.size(); ++v) {
    const Node& n = body.node(v);
    if (n.op == OpKind::Input || constantOf(body, v)) continue;
    if (std::find(inGelu.begin(), inGelu.end(), v) != inGelu.end()) continue;
    if (chain >= 0 && out.contraction->op == OpKind::Matmul && out.layouts.result.empty()) {
      std::optional<std::array<ValueId, 5>> gelu = ir::matchErfGelu(body, chain);
      if (gelu && (*gelu)[0] == v) {
        reader.appendErfGelu();
        inGelu.assign(gelu->begin() + 1, gelu->end());
        chain = gelu->back();
        continue;
      }
    }
    if (n.type.dtype != ir::DType::f32) return std::nullopt;
    const std::vector<int64_t>* perm =
        n.op == OpKind::Transpose ? &ir::AttrReader(n.attrs, n.op).ints("perm") : nullptr;
    const bool viewOp = n.op == OpKind::Transpose || n.op == OpKind::Slice || n.op == OpKind::Reshape;
    if (chain < 0 && viewOp && !n.operands.empty() && (n.operands[0] == read[0] || n.operands[0] == read[1])) {
      const size_t i = n.operands[0] == read[0] ? 0 : 1;  // an operand read through a view op
      if (perm && !ir::keepsLastDim(*perm)) return std::nullopt;
      (i == 0 ? out.layouts.lhs : out.layouts.rhs).push_back(&n);
      read[i] = v;
      continue;
    }
    if (chain < 0) {
      if ((n.op != OpKind::Matmul && n.op != OpKind::Conv) || n.operands != read) return std::nullopt;
      if (n.op == OpKind::Conv && read != std::vector<ValueId>{inputs[0], inputs[1]}) return std::nullopt;
      out.contraction = &n;
      contraction = v;
    } else if (perm && chain == contraction && out.contraction->op == OpKind::Matmul && ir::keepsLastDim(*perm) &&
               body.outputs()[0].value == v) {
      out.layouts.result = *perm;  // the result written through a transpose
    } else if (!out.layouts.result.empty() || n.type != body.type(chain) || !reader.append(n, chain)) {
      return std::nullopt;
    }
    chain = v;
  }
  if (chain < 0 || body.outputs()[0].value != chain) return std::nullopt;
  foldLinearRuns(out.postOps);
  separateConflictingEltwise(out.postOps);
  if (hasConflictingEltwise(out.postOps)) return std::nullopt;
  return out;
}

namespace {

/// The descriptor of a binary post-op's second input of `shape` for a result of rank `rank`
/// (plain row-major where the channels-first view moves only unit dims, e.g. a bias).
memory::desc postOpDesc(const ir::Shape& shape, size_t rank, bool channelsLast) {
  ir::Shape aligned = alignedShape(shape, rank);
  if (!channelsLast) return rowMajorDesc(aligned);
  ir::Shape first = ir::toChannelsFirst(aligned);
  return ir::movesOnlyUnitDims(aligned, ir::toChannelsFirstPerm(rank)) ? rowMajorDesc(first)
                                                                     : dataDesc(first, aligned, true);
}

}  // namespace

dnnl::primitive_attr postOpAttr(const std::vector<PostOp>& postOps, size_t rank, bool channelsLast) {
  dnnl::primitive_attr attr;
  if (postOps.empty()) return attr;
  dnnl::post_ops ops;
  for (const PostOp& op : postOps) {
    if (op.sum) ops.append_sum(1.f);
    else if (op.binary) ops.append_binary(op.algorithm, postOpDesc(op.shape, rank, channelsLast));
    else ops.append_eltwise(1.f, op.algorithm, op.alpha, op.beta);
  }
  attr.set_post_ops(ops);
  return attr;
}

void bindPostOpInputs(PrimitiveStep& step, const std::vector<PostOp>& postOps, size_t rank,
                      std::unordered_map<int, memory>& args, bool channelsLast) {
  for (size_t i = 0; i < postOps.size(); ++i) {
    const PostOp& op = postOps[i];
    if (!op.binary || op.sum) continue;
    memory::desc desc = postOpDesc(op.shape, rank, channelsLast);
    memory m;
    if (op.operand >= 0) {
      m = step.operand(static_cast<size_t>(op.operand), desc);
    } else {
      m = step.held(desc);
      std::memcpy(m.get_data_handle(), op.constant->bytes.data(), op.constant->bytes.size());
    }
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(static_cast<int>(i)) | DNNL_ARG_SRC_1] = m;
  }
}

int takeConvBias(std::vector<PostOp>& postOps, const ir::Shape& out, bool channelsLast) {
  if (postOps.empty() || !postOps[0].binary || postOps[0].sum || postOps[0].operand < 0 ||
      postOps[0].algorithm != dnnl::algorithm::binary_add)
    return -1;
  ir::Shape aligned = postOps[0].shape;
  if (aligned.size() > out.size()) return -1;
  aligned.insert(aligned.begin(), out.size() - aligned.size(), 1);
  if (channelsLast) aligned = ir::toChannelsFirst(aligned);
  for (size_t d = 0; d < out.size(); ++d)
    if (aligned[d] != (d == 1 ? out[1] : 1)) return -1;
  int operand = postOps[0].operand;
  postOps.erase(postOps.begin());
  return operand;
}

int takeMatmulBias(std::vector<PostOp>& postOps, const ir::Shape& result) {
  return takeConvBias(postOps, ir::toChannelsFirst(result), /*channelsLast=*/true);
}

int useSumForResidual(std::vector<PostOp>& postOps, const ir::Shape& full) {
  for (size_t i = 0; i < postOps.size(); ++i) {
    PostOp& op = postOps[i];
    if (op.binary && op.algorithm == algorithm::binary_add && op.operand >= 0 && op.shape == full) {
      op.sum = true;
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::string postOpNames(const std::vector<PostOp>& postOps) {
  std::string names;
  for (const PostOp& op : postOps) names += "+" + op.name;
  return names;
}

}  // namespace weft::cpu::onednn
