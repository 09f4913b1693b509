#pragma once
/// oneDNN primitives for the nodes the compiled CPU backend accelerates (f32 matmul, f32 conv).
#include <optional>

#include <oneapi/dnnl/dnnl.hpp>

#include "ir/graph.h"
#include "ir/tensor_data.h"

namespace weft::cpu {

/// A oneDNN primitive built for one node, with the memory descriptors of its arguments.
/// Operand 0 is bound to DNNL_ARG_SRC, operand 1 to DNNL_ARG_WEIGHTS, the result to DNNL_ARG_DST.
struct OneDnnNode {
  dnnl::primitive primitive;     ///< the created primitive, reused by every run
  dnnl::memory::desc src;        ///< layout of operand 0 (row-major bytes of the TensorData)
  dnnl::memory::desc weights;    ///< layout of operand 1 (row-major bytes of the TensorData)
  dnnl::memory::desc dst;        ///< layout of the result (row-major)
};

/// The primitive for node `v` of `g` when oneDNN can run it; nullopt for every other node
/// (other ops, other dtypes, empty tensors, shapes oneDNN rejects).
std::optional<OneDnnNode> compileOneDnnNode(const ir::Graph& g, ir::ValueId v, const dnnl::engine& engine);

/// Runs `node` on the operands `src` and `weights` and returns the result of type `outType`.
ir::TensorData runOneDnnNode(const OneDnnNode& node, const ir::TensorData& src, const ir::TensorData& weights,
                             const ir::TensorType& outType, const dnnl::engine& engine, dnnl::stream& stream);

}  // namespace weft::cpu
