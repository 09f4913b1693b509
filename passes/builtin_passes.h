#pragma once
/// The passes that live in passes/, callable directly as well as through the registry.
#include <functional>

#include "ir/graph.h"

namespace weft::passes {

/// `decompose-composites`: replaces every composite op by its decomposition into primitives.
bool decomposeComposites(ir::Graph& g);
/// `canonicalize`: removes algebraic identities (x+0, x*1, neg(neg x), no-op reshapes, ...).
bool canonicalize(ir::Graph& g);
/// `cse`: merges nodes that compute the same value.
bool eliminateCommonSubexpressions(ir::Graph& g);
/// `dce`: removes nodes no output depends on (inputs, parameters and check_index stay).
bool eliminateDeadCode(ir::Graph& g);
/// `fuse-elementwise`: groups elementwise, movement and reduction nodes into `fused` nodes
/// (kind "loop" or "reduce"); expects primitives (run after decompose-composites).
bool fuseElementwise(ir::Graph& g);
/// `fold-conv-affine`: folds per-output-channel scales after a conv into its weights and the
/// per-channel shifts into one add (batch norm in evaluation form: (conv - mean) * s + b).
bool foldConvAffine(ir::Graph& g);
/// `fuse-rows`: merges the fused kernels of a normalization over the last axis (softmax,
/// a layer norm: reductions of a row and the values that read them) into one `fused` node of
/// kind "rows", computed a row at a time (run after fuse-elementwise).
bool fuseRows(ir::Graph& g);
/// `precompute-derivatives`: a backward loop kernel multiplying the incoming gradient by a
/// factor computed from one forward value alone (an activation's derivative) gets that
/// factor from a kernel of its own, run right after the value's last forward reader
/// (precompute_derivatives.cpp; after fuse-elementwise and fuse-rows).
bool precomputeDerivatives(ir::Graph& g);
/// `fuse-epilogues`: folds the elementwise chain after a matmul or conv into a `fused` node
/// (kind "matmul" or "conv") that backends run as a library call with post-ops.
bool fuseEpilogues(ir::Graph& g);
/// `fuse-epilogues-leaving-gelu`: fuse-epilogues except that an erf GELU after a matmul stays
/// apart (a generated kernel), for CPUs where oneDNN's gelu_erf post-op is slower than that
/// kernel (AVX2: gpt's [1024, 256] x [256, 1024] with the post-op 4.46 ms, without it 3.54 +
/// 0.30 for the kernel, on the AMD EPYC).
bool fuseEpiloguesLeavingGelu(ir::Graph& g);
/// `pool-gradient-masks`: a ReLU mask on a 2-D max_pool_grad's result moves to its incoming
/// gradient (masked where the pooled value fails the test), and a sum of the result over the
/// spatial axes becomes the same sum of the incoming gradient (pool_gradient_masks.cpp).
bool maskPoolGradients(ir::Graph& g);

/// `fold-matmul-transposes`: folds the view ops matmuls read their operands through
/// (transposes keeping the last dim in place, slices, reshapes: views without gaps) and a
/// transpose they are read through into the matmuls (a `fused` node of kind "matmul" holding
/// them), which read and write the tensors as stored.
bool foldMatmulTransposes(ir::Graph& g);
/// `triangular-matmuls`: sets the matmul hints lhs_zeros and needed (ir/ops.def) where the
/// graph shows them true, as in causal attention (triangular_matmuls.cpp; before fusion).
bool markTriangularMatmuls(ir::Graph& g);
/// `masked-contractions`: a 2-D matmul whose contraction indices, result rows or result
/// columns a constant mask zeroes (or whose result columns nothing needs) computes only the
/// others, where they are one residue class mod s >= 2: strided slices of its operands, the
/// result padded back (masked_contractions.cpp; RealNVP's coupling layers; before fusion).
bool maskContractions(ir::Graph& g);
/// `strip-stop-gradient`: replaces every stop_gradient by its operand (for graphs compiled
/// as they are, after differentiation: it only guides autodiff).
bool stripStopGradients(ir::Graph& g);
/// `pointwise-convs-to-matmuls`: rewrites convolutions with a 1x1 kernel (no padding, one
/// group; stride 1 for the forward one) and their gradients as matmuls over the flattened
/// spatial positions; of channels-last ones only the strided gradients.
bool lowerPointwiseConvs(ir::Graph& g);
/// `affine-grads-from-weight-grads`: where the data gradient of y = n * gamma + beta read by a
/// matmul y w is needed only for gamma's and beta's gradients, takes those (and w's) from the
/// product n^T g instead, so that the data gradient's matmul goes (affine_grads_from_weight_grads.cpp).
bool affineGradsFromWeightGrads(ir::Graph& g);

/// `split-long-contractions`: runs a matmul contracting 1024 or more rows of transposed
/// operands (a weight gradient over a batch of activations) as two halves side by side and
/// adds them, so that each of two threads computes a half.
bool splitLongContractions(ir::Graph& g);
/// `channels-last`: stores the activations around 2-D convolutions as [N, H, W, C] (the
/// convolutions get channels_last=1) where that saves more layout conversions than the
/// transposes it adds at the group's edges.
bool convertToChannelsLast(ir::Graph& g);
/// `schedule-memory`: reorders nodes (operands still first) so that fewer arena bytes are
/// alive at once: a node that frees more than it allocates runs as soon as it is ready.
bool scheduleForMemory(ir::Graph& g);
/// The bytes a backend needs while node `v` of `g` runs, beside its operands and result.
using TransientBytes = std::function<int64_t(const ir::Graph& g, ir::ValueId v)>;
/// scheduleForMemory, comparing orders with each node's `transient` bytes counted while it
/// runs (null: none).
bool scheduleForMemory(ir::Graph& g, const TransientBytes& transient);

}  // namespace weft::passes
