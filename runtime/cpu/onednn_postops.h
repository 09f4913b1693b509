#pragma once
/// Internal to the oneDNN lowering: the body of a `fused` node of kind "matmul" or "conv"
/// read as one contraction followed by oneDNN post-ops (eltwise and binary).
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/cpu/onednn_step.h"
#include "ir/graph.h"

namespace weft::cpu::onednn {

/// One post-op of a contraction's epilogue.
struct PostOp {
  bool binary = false;                        ///< binary (a second input) or eltwise
  dnnl::algorithm algorithm = dnnl::algorithm::undef;
  float alpha = 0, beta = 0;                  ///< eltwise parameters
  int operand = -1;                           ///< binary: the fused node's operand read, or -1 for `constant`
  ir::TensorDataPtr constant;                 ///< binary: the constant read (f32), when not an operand
  ir::Shape shape;                            ///< binary: the second input's shape (broadcasts to the result)
  std::string name;                           ///< for describe(), e.g. "add" or "relu"
  bool sum = false;                           ///< binary add of a full-shape operand run as oneDNN's
                                              ///< sum post-op (the operand is copied into the destination first)
};

/// How a fused matmul's operands and result are stored: the operands through the view ops
/// of its body (transposes keeping the last dim, slices, reshapes: ir/strided_view.h), the
/// result through a transpose (a permutation keeping the last dim last), or as the matmul
/// reads or writes them (empty).
struct StoredLayouts {
  std::vector<const ir::Node*> lhs, rhs;  ///< the body's view ops from operand i to the matmul, in order
  ir::Shape result;                       ///< the node's result is transpose(the matmul's, result)
};

/// A fused node's body as one contraction and the post-ops applied to its result in order.
struct FusedContraction {
  const ir::Node* contraction = nullptr;  ///< matmul or conv reading the node's operands 0 and 1
  std::vector<PostOp> postOps;
  StoredLayouts layouts;                  ///< a matmul's folded transposes (fold-matmul-transposes)
};

/// Reads `body` (a fused node's body) as a contraction and post-ops; nullopt when it is not a
/// matmul or conv on inputs 0 and 1 (a matmul's possibly through view ops, or followed by one
/// transpose keeping the last dim as the body's result and nothing else; see
/// StoredLayouts) followed by a chain of ops oneDNN post-ops express exactly
/// (up to rounding): eltwise neg, abs, exp, log, sqrt, rsqrt, tanh, sigmoid, square (x*x),
/// add/sub/mul/div by a one-element constant, maximum/minimum with a one-element constant
/// (relu for 0), pow by a one-element constant; binary add, sub, mul, div, maximum, minimum
/// with a tensor that broadcasts to the result. Consecutive linear post-ops are folded into
/// one. oneDNN 2.6 applies one algorithm's last eltwise parameters to all its eltwise
/// post-ops, so a linear or clip post-op whose algorithm came earlier with other parameters
/// becomes binary post-ops on held one-element constants, and other such pairs are refused.
std::optional<FusedContraction> parseFusedContraction(const ir::Graph& body);

/// The primitive attribute holding `postOps` for a result of rank `rank` (empty attribute
/// when there are none); a `channelsLast` result's operands are read in its channels-first
/// view. Throws dnnl::error when oneDNN rejects a post-op.
dnnl::primitive_attr postOpAttr(const std::vector<PostOp>& postOps, size_t rank, bool channelsLast = false);

/// Binds the second inputs of the binary post-ops (the node's operands or held constants)
/// into the primitive's `args`.
void bindPostOpInputs(PrimitiveStep& step, const std::vector<PostOp>& postOps, size_t rank,
                      std::unordered_map<int, memory>& args, bool channelsLast = false);

/// When the first post-op adds a node operand that varies along the output channels only
/// (shape [1, O, 1...] or [O, 1...]; [1, 1..., O] or [O] when `channelsLast`), removes it and
/// returns the operand's index: the convolution adds it as its bias, which costs less than a
/// binary post-op. -1 otherwise. `out` is the channels-first result shape.
int takeConvBias(std::vector<PostOp>& postOps, const ir::Shape& out, bool channelsLast);

/// The matmul form of takeConvBias: when the first post-op adds a node operand that varies
/// along the result's last dim only (shape [N] or [1..., N]), removes it and returns the
/// operand's index, for the matmul to add as its bias (in its kernel's epilogue, which costs
/// less than a binary post-op). -1 otherwise. `result` is the matmul's result shape.
int takeMatmulBias(std::vector<PostOp>& postOps, const ir::Shape& result);

/// Marks the first binary add of an operand of the result's full shape `full` as a sum
/// post-op (oneDNN 2.6 runs a full-shape binary post-op only in its slow gemm convolution;
/// the sum post-op keeps the fast kernels). Returns its index, or -1 when there is none.
int useSumForResidual(std::vector<PostOp>& postOps, const ir::Shape& full);

/// "+add+relu" for the post-ops in order ("" when none).
std::string postOpNames(const std::vector<PostOp>& postOps);

}  // namespace weft::cpu::onednn
