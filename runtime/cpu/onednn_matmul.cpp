// The oneDNN matmul step: row-major operands seen through strided descriptors (transposes
// swap the last two strides, missing batch dims become leading 1s that oneDNN broadcasts,
// folded view ops make strides and an offset: ir/strided_view.h),
// optionally followed by post-ops.
#include <algorithm>

#include "ir/strided_view.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/onednn_families.h"

namespace weft::cpu::onednn {
namespace {

/// A matmul operand as oneDNN reads it: its descriptor and the offset of its first element
/// in the stored tensor's buffer, in bytes.
struct OperandView {
  memory::desc desc;
  size_t byteOffset = 0;
};

/// The operand stored row-major as `shape` and read through the view ops `views` as a matmul
/// of rank `rank` reads it (ir::matmulOperandView); nullopt when a view op is no strided view.
std::optional<OperandView> operandDesc(const ir::Shape& shape, const std::vector<const ir::Node*>& views,
                                       size_t rank, bool transposed) {
  std::optional<ir::StridedView> view = ir::matmulOperandView(shape, views, rank, transposed);
  if (!view) return std::nullopt;
  return OperandView{stridedDesc(view->dims, view->strides), static_cast<size_t>(view->offset) * sizeof(float)};
}

/// The non-reference implementations oneDNN offers for `pd`'s descriptor (a fresh primitive
/// descriptor: listing them moves it on), each name once, in its order of preference.
std::vector<std::string> implementationsOf(dnnl::matmul::primitive_desc pd) {
  std::vector<std::string> names;
  do {
    std::string name = pd.impl_info_str();
    if (!isReferenceImpl(name.c_str()) && std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(name);
  } while (pd.next_impl());
  return names;
}

/// A primitive descriptor `make()` returns, moved on to oneDNN's first implementation called
/// `impl`; at oneDNN's first choice when none is.
template <class Make>
dnnl::matmul::primitive_desc withImpl(const Make& make, const std::string& impl) {
  dnnl::matmul::primitive_desc pd = make();
  if (impl.empty() || impl == pd.impl_info_str()) return pd;
  while (pd.next_impl())
    if (impl == pd.impl_info_str()) return pd;
  return make();
}

/// The descriptor of a matmul result of shape `result` stored as transpose(result, perm).
memory::desc resultDesc(const ir::Shape& result, const ir::Shape& perm) {
  return perm.empty() ? rowMajorDesc(result) : stridedDesc(result, ir::stridesStoredTransposed(result, perm));
}

/// A matmul of a batch of row-major lhs matrices by one weight matrix, as one matmul of the
/// batch's rows stacked: [B..., M, K] x [K, N] as [B...*M, K] x [K, N], with its binary
/// post-ops' inputs flattened alike (those broadcast over part of the batch have no such
/// form). brgemm holds constant 2-D weights in its blocked panels, not weights broadcast over
/// a batch, and ran gpt's training matmuls of [8,128,*] results 4% faster stacked.
struct StackedRows {
  ir::Node node;  ///< the matmul with the 2-D result type
  ir::TensorType lhs;
  std::vector<PostOp> postOps;
};

std::optional<StackedRows> stackedRows(const ir::Node& node, const ir::TensorType& lhs, const ir::TensorType& rhs,
                                       const std::vector<PostOp>& postOps, const StoredLayouts& layouts) {
  const ir::Shape& result = node.type.shape;
  const size_t rank = result.size();
  if (rank < 3 || rhs.shape.size() != 2 || lhs.shape.size() != rank || !layouts.lhs.empty() ||
      !layouts.rhs.empty() || !layouts.result.empty() || ir::AttrReader(node.attrs, node.op).i("transpose_lhs", 0) != 0)
    return std::nullopt;
  const ir::Shape batch(result.begin(), result.end() - 1);  // the batch dims and M
  int64_t rows = 1;
  for (int64_t d : batch) rows *= d;
  StackedRows stacked{node, lhs, postOps};
  stacked.node.type.shape = {rows, result.back()};
  stacked.lhs.shape = {rows, lhs.shape.back()};
  for (PostOp& op : stacked.postOps) {
    if (!op.binary) continue;
    ir::Shape aligned(rank - op.shape.size(), 1);
    aligned.insert(aligned.end(), op.shape.begin(), op.shape.end());
    const ir::Shape leading(aligned.begin(), aligned.end() - 1);
    if (leading == batch)
      op.shape = {rows, aligned.back()};
    else if (std::all_of(leading.begin(), leading.end(), [](int64_t d) { return d == 1; }))
      op.shape = {1, aligned.back()};
    else
      return std::nullopt;
  }
  return stacked;
}

/// True when a matmul (attributes `attr`) reading its transposed lhs as `lhs`, `rows` x
/// `depth`, whole (no offset, no folded view ops: `folded`), into `columns` result columns,
/// should copy the lhs row-major first: oneDNN 2.6's AVX2 sgemm (no AVX-512) reads a transposed
/// lhs slowly where it has 512 or more rows and columns, or where its stored rows (the result's
/// rows) lie a multiple of 1 KiB apart. On the AMD EPYC of stop 33, gpt's weight gradient
/// [1022, 1024]^T x [1022, 256] took 6.9 ms, 3.0 ms with the lhs transposed beforehand,
/// 4.1-4.5 with the copy in the step; [1022, 256]^T x [1022, 1024] 3.5-4.1 ms either way;
/// mlp's [128, 784]^T x [128, 512] 0.58-0.63 ms, 0.68 with the copy. On the same machine at
/// stop 36 (alternating runs): [128, 512]^T x [128, 256] (mlp's second weight gradient)
/// 0.36-0.39 -> 0.30-0.32 ms, [128, 512]^T x [128, 512] 0.61 -> 0.45-0.48, [128, 256]^T x
/// [128, 512] 0.27 -> 0.24, while rows of 400, 784 or 1600 floats and a [64, 6272] lhs gained
/// nothing or lost (0.40 -> 0.55 ms). A copy pays where each of its floats takes part in 64 or
/// more multiply-adds (`columns`). The AVX-512 machines' kernels read it at full rate
/// (split_contractions.cpp's timings). (`anyCpu`: as on such a CPU, whatever this one is.)
bool copiesTransposedLhs(const ir::AttrReader& attr, const OperandView& lhs, int64_t columns, bool folded,
                         bool anyCpu = false) {
  const memory::dims dims = lhs.desc.dims();
  const size_t rank = dims.size();
  const int64_t rows = dims[rank - 2], depth = dims[rank - 1];
  constexpr int64_t kAliasingRows = 256;  // floats in 1 KiB
  const bool slowRead = (rows >= 512 && depth >= 512) || (rows % kAliasingRows == 0 && columns >= 64);
  return attr.i("transpose_lhs", 0) != 0 && lhs.byteOffset == 0 && !folded && slowRead &&
         (anyCpu || !channelBlocksFit());
}

/// The floats a padded rhs's rows grow by (one cache line).
constexpr int64_t kRhsRowPadding = 16;

/// True when a matmul should read its row-major rhs `rhs` (a whole buffer: no offset) from a copy whose
/// rows are kRhsRowPadding floats longer, `rows` being the result's rows per matrix and
/// `constant` whether the rhs holds the same bytes every run (then it is copied once). oneDNN
/// 2.6's AVX2 sgemm (no AVX-512) reads a row-major rhs in place, and slowly where its rows lie
/// a multiple of 1 KiB apart: on the AMD EPYC of stop 34, [128, 784] x [784, 512] (mlp's
/// first layer) 0.80 -> 0.55 ms padded, [1024, 256] x [256, 1024] (gpt's fc1) 3.6 -> 2.9,
/// [256, 512] x [512, 1024] (its weight gradient) 5.9 -> 3.1, [1024, 1024] x [1024, 256] 3.05
/// -> 2.83 (a rhs one float off 32-byte alignment ran as fast: the sgemm packs such a rhs).
/// Other widths gained less or nothing (400 columns 0.56 -> 0.44 alone, but vae's training
/// step lost with its copies each run; 784 none) and copying every rhs of 384 or more
/// columns moved 38 MiB a step in gpt's training: so 512 or more columns, a multiple of 256.
/// A copy made every run pays where each of its floats takes part in 64 or more multiply-adds.
/// (`anyCpu`: as on such a CPU, whatever this one is.)
bool padsRhsRows(const OperandView& rhs, int64_t rows, bool constant, bool anyCpu = false) {
  const memory::dims dims = rhs.desc.dims();
  return (anyCpu || !channelBlocksFit()) && rhs.byteOffset == 0 && (constant || rows >= 64) &&
         rhs.desc == rowMajorDesc(dims) && dims.back() >= 512 && dims.back() % 256 == 0 && dims[dims.size() - 2] > 1;
}

/// `rhs`'s dims with its rows kRhsRowPadding floats apart.
memory::desc paddedRows(const memory::desc& rhs) {
  const memory::dims dims = rhs.dims();
  ir::Shape strides(dims.size(), 1);
  strides[dims.size() - 2] = dims.back() + kRhsRowPadding;
  for (size_t d = dims.size() - 2; d-- > 0;) strides[d] = strides[d + 1] * dims[d + 1];
  return stridedDesc(dims, strides);
}

}  // namespace

std::unique_ptr<OneDnnStep> compileMatmul(const ir::Node& node, const ir::TensorType& lhs, const ir::TensorType& rhs,
                                          std::vector<PostOp> postOps, const dnnl::engine& engine,
                                          const StoredLayouts& layouts, const std::string& impl,
                                          const std::vector<bool>& constantOperands) {
  if (std::optional<StackedRows> stacked = stackedRows(node, lhs, rhs, postOps, layouts))
    return compileMatmul(stacked->node, stacked->lhs, rhs, std::move(stacked->postOps), engine, {}, impl,
                         constantOperands);
  ir::AttrReader attr(node.attrs, node.op);
  size_t rank = node.type.shape.size();
  std::optional<OperandView> lhsView = operandDesc(lhs.shape, layouts.lhs, rank, attr.i("transpose_lhs", 0) != 0);
  std::optional<OperandView> rhsView = operandDesc(rhs.shape, layouts.rhs, rank, attr.i("transpose_rhs", 0) != 0);
  if (!lhsView || !rhsView) return nullptr;
  // A transposed lhs of many rows is copied row-major first where oneDNN's sgemm reads it slowly.
  const bool lhsCopied = copiesTransposedLhs(attr, *lhsView, node.type.shape.back(), !layouts.lhs.empty());
  const memory::desc src = lhsCopied ? rowMajorDesc(lhsView->desc.dims()) : lhsView->desc;
  memory::desc dst = resultDesc(node.type.shape, layouts.result);
  const int biasOperand = takeMatmulBias(postOps, node.type.shape);
  ir::Shape biasDims(rank, 1);
  biasDims.back() = node.type.shape.back();
  const memory::desc bias = rowMajorDesc(biasDims);
  // A constant rhs is copied (padded rows, or the layout oneDNN chooses) once; others each run.
  StepLayouts stepLayouts;
  stepLayouts.constantOperands = constantOperands;
  const bool rhsPadded = padsRhsRows(*rhsView, node.type.shape[rank - 2], stepLayouts.constantOperand(1));
  auto descFor = [&](const memory::desc& weights) {
    return biasOperand >= 0 ? dnnl::matmul::desc(src, weights, bias, dst) : dnnl::matmul::desc(src, weights, dst);
  };
  // A primitive descriptor keeps reading the op descriptor it was made from while it moves on
  // to other implementations (next_impl), so each descriptor outlives its primitive descriptors.
  auto makeFrom = [&](const dnnl::matmul::desc& desc) {
    return dnnl::matmul::primitive_desc(desc, postOpAttr(postOps, rank), engine);
  };
  // Constant weights (a whole buffer) are kept in the layout the implementation reads fastest
  // (brgemm's blocked panels), converted once instead of packed every run. Only in 2-D (see
  // stackedRows): for weights broadcast over a batch brgemm keeps the row-major layout.
  memory::desc weights = rhsPadded ? paddedRows(rhsView->desc) : rhsView->desc;
  if (!rhsPadded && stepLayouts.constantOperand(1) && rhsView->byteOffset == 0 && rank == 2) {
    const memory::desc chosen(rhsView->desc.dims(), memory::data_type::f32, memory::format_tag::any);
    try {
      const dnnl::matmul::desc desc = descFor(chosen);
      const dnnl::matmul::primitive_desc heldPd = withImpl([&] { return makeFrom(desc); }, impl);
      const std::string held = heldPd.impl_info_str();
      // Only panels without padding: 64-column panels pad a [6272, 1] head 64x, and realnvp's
      // [512, 784] weights (13 panels, the last a quarter full) ran 6% slower held than
      // read row-major.
      const bool compact = heldPd.weights_desc().get_size() == rhsView->desc.get_size();
      if (!isReferenceImpl(held.c_str()) && (impl.empty() || held == impl) && compact) weights = chosen;
    } catch (const dnnl::error&) {
    }  // no implementation chooses: the weights stay as stored
  }
  const dnnl::matmul::desc desc = descFor(weights);
  auto make = [&] { return makeFrom(desc); };
  const dnnl::matmul::primitive_desc pd = withImpl(make, impl);
  bool folded = !layouts.lhs.empty() || !layouts.rhs.empty() || !layouts.result.empty();
  if ((!postOps.empty() || folded || biasOperand >= 0) && isReferenceImpl(pd.impl_info_str())) return nullptr;

  auto step = std::make_unique<PrimitiveStep>(std::string(biasOperand >= 0 ? "matmul+bias" : "matmul") +
                                                  postOpNames(postOps),
                                              engine, stepLayouts);
  // An operand read from an offset (a slice of the stored tensor) binds that part of its buffer.
  auto operand = [&](size_t i, const OperandView& view) {
    return view.byteOffset == 0 ? step->operand(i, view.desc)
                                : step->part(static_cast<int>(i), view.desc, view.byteOffset);
  };
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, lhsCopied ? step->convertedOperand(0, lhsView->desc, src)
                                                                 : operand(0, *lhsView)},
                                       {DNNL_ARG_WEIGHTS, rhsView->byteOffset == 0
                                                              ? step->convertedOperand(1, rhsView->desc, pd.weights_desc())
                                                              : operand(1, *rhsView)},
                                       {DNNL_ARG_DST, step->result(dst)}};
  if (biasOperand >= 0) args[DNNL_ARG_BIAS] = step->operand(static_cast<size_t>(biasOperand), bias);
  bindPostOpInputs(*step, postOps, rank, args);
  step->add(dnnl::matmul(pd), std::move(args));
  step->noteImpl(pd.impl_info_str());
  step->noteImplementations(implementationsOf(make()));
  return step;
}

}  // namespace weft::cpu::onednn

namespace weft::cpu {

int64_t matmulCopyBytes(const ir::Graph& g, ir::ValueId v) {
  const ir::Node& node = g.node(v);
  const ir::Node* matmul = &node;
  onednn::StoredLayouts layouts;
  std::vector<onednn::PostOp> postOps;
  std::optional<onednn::FusedContraction> fused;
  if (node.op == ir::OpKind::Fused) {
    if (!node.body || ir::AttrReader(node.attrs, node.op).s("kind") != "matmul") return 0;
    fused = onednn::parseFusedContraction(*node.body);
    if (!fused || fused->contraction->op != ir::OpKind::Matmul) return 0;
    matmul = fused->contraction;
    layouts = fused->layouts;
    postOps = fused->postOps;
  } else if (node.op != ir::OpKind::Matmul) {
    return 0;
  }
  if (node.operands.size() < 2 || matmul->type.dtype != ir::DType::f32) return 0;
  ir::TensorType lhs = g.type(node.operands[0]);
  const ir::TensorType& rhs = g.type(node.operands[1]);
  ir::Node read = *matmul;  // as compileMatmul reads it: stacked rows where it stacks them
  if (std::optional<onednn::StackedRows> stacked = onednn::stackedRows(*matmul, lhs, rhs, postOps, layouts)) {
    read = stacked->node;
    lhs = stacked->lhs;
    layouts = {};
  }
  ir::AttrReader attr(read.attrs, read.op);
  const size_t rank = read.type.shape.size();
  if (rank < 2) return 0;
  std::optional<onednn::OperandView> lhsView =
      onednn::operandDesc(lhs.shape, layouts.lhs, rank, attr.i("transpose_lhs", 0) != 0);
  std::optional<onednn::OperandView> rhsView =
      onednn::operandDesc(rhs.shape, layouts.rhs, rank, attr.i("transpose_rhs", 0) != 0);
  if (!lhsView || !rhsView) return 0;
  constexpr int64_t kAlign = 64;
  auto aligned = [](size_t bytes) { return (static_cast<int64_t>(bytes) + kAlign - 1) / kAlign * kAlign; };
  int64_t bytes = 0;
  if (onednn::copiesTransposedLhs(attr, *lhsView, read.type.shape.back(), !layouts.lhs.empty(),
                                  /*anyCpu=*/true))
    bytes += aligned(onednn::rowMajorDesc(lhsView->desc.dims()).get_size());
  const bool constant = sameBytesEveryRun(g, node.operands[1]);  // then copied once, held
  if (!constant && onednn::padsRhsRows(*rhsView, read.type.shape[rank - 2], false, /*anyCpu=*/true))
    bytes += aligned(onednn::paddedRows(rhsView->desc).get_size());
  return bytes;
}

}  // namespace weft::cpu
