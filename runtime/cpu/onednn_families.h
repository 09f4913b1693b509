#pragma once
/// Internal to the oneDNN lowering: the step builders of each op family. Each takes the node
/// (for its attributes and result type) and its operand types, builds the primitives once,
/// and throws dnnl::error when oneDNN has no implementation (compileOneDnnNode then returns
/// null); a builder returns null itself for geometry it does not map exactly.
#include <memory>
#include <optional>
#include <vector>

#include "runtime/cpu/onednn_postops.h"

namespace weft::cpu::onednn {

/// matmul(lhs, rhs) followed by `postOps`, its operands and result stored as `layouts` says
/// (lhs and rhs are the operands as stored; a first post-op adding a row along the last dim
/// becomes the matmul's own bias); null when post-ops or a stored layout would need oneDNN's
/// reference implementation. The primitive is oneDNN's implementation named `impl` when
/// oneDNN offers it (the node's impl attribute), else its first; the step lists the others
/// (OneDnnStep::implementations). Constant 2-D weights (rhs marked in `constantOperands`, see
/// StepLayouts, read whole) are held in the layout the implementation prefers; a batch of
/// row-major lhs matrices times 2-D weights runs as one matmul of the stacked rows.
std::unique_ptr<OneDnnStep> compileMatmul(const ir::Node& node, const ir::TensorType& lhs, const ir::TensorType& rhs,
                                          std::vector<PostOp> postOps, const dnnl::engine& engine,
                                          const StoredLayouts& layouts = {}, const std::string& impl = {},
                                          const std::vector<bool>& constantOperands = {});
/// conv(x, w) followed by `postOps` (same rule); a leading per-output-channel add runs as
/// the convolution's bias and a residual add as a sum post-op.
std::unique_ptr<OneDnnStep> compileConv(const ir::Node& node, const ir::TensorType& x, const ir::TensorType& w,
                                        std::vector<PostOp> postOps, const dnnl::engine& engine,
                                        const StepLayouts& layouts);
/// conv_transpose(x, w): a deconvolution with weights [C_in, O/groups, kernel...].
std::unique_ptr<OneDnnStep> compileConvTranspose(const ir::Node& node, const ir::TensorType& x, const ir::TensorType& w,
                                                 const dnnl::engine& engine, const StepLayouts& layouts);
/// conv_weight_grad(x, dy): convolution backward-weights.
std::unique_ptr<OneDnnStep> compileConvWeightGrad(const ir::Node& node, const ir::TensorType& x,
                                                  const ir::TensorType& dy, const dnnl::engine& engine,
                                                  const StepLayouts& layouts);
/// max_pool(x) or avg_pool(x) (the average counts the padding). It reads x in any layout:
/// when `layouts` gives x one, the result is computed in the layout the primitive picks.
std::unique_ptr<OneDnnStep> compilePool(const ir::Node& node, const ir::TensorType& x, const dnnl::engine& engine,
                                        const StepLayouts& layouts);
/// max_pool_grad(x, dy): pooling forward-training (for the workspace) then pooling backward.
std::unique_ptr<OneDnnStep> compileMaxPoolGrad(const ir::Node& node, const ir::TensorType& x, const ir::TensorType& dy,
                                               const dnnl::engine& engine, const StepLayouts& layouts);

/// The layout preference of the conv family: the primitive's own (blocked) layouts, with
/// reorders inside the step, unless those fail or only have oneDNN's reference
/// implementation, then the user's row-major layouts. `make(layout)` creates a primitive
/// descriptor; throws what `make` throws when neither layout works.
template <class Pd, class Make>
Pd preferredPd(const Make& make) {
  std::optional<Pd> chosen;
  try {
    chosen = make(Layout::Chosen);
    if (!isReferenceImpl(chosen->impl_info_str())) return *chosen;
  } catch (const dnnl::error&) {
  }
  try {
    Pd plain = make(Layout::RowMajor);
    if (!chosen || !isReferenceImpl(plain.impl_info_str())) return plain;
  } catch (const dnnl::error&) {
    if (!chosen) throw;
  }
  return *chosen;
}

}  // namespace weft::cpu::onednn
