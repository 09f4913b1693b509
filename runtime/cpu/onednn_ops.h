#pragma once
/// oneDNN lowering: the nodes the compiled CPU backend runs as oneDNN primitives.
#include <memory>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "ir/graph.h"

namespace weft::cpu {

/// One node run by oneDNN. Its primitives (and any reorders or workspaces they need) are
/// created once, by compileOneDnnNode; run() only binds buffers and executes.
class OneDnnStep {
 public:
  virtual ~OneDnnStep() = default;
  /// Runs the node: `operands[i]` is operand i's buffer and `result` the result's buffer,
  /// all dense row-major in the node's types. Waits for completion before returning.
  virtual void run(const std::vector<const void*>& operands, void* result, dnnl::stream& stream) const = 0;
  /// What runs, for stats and dumps, e.g. "matmul" or "conv+bias+relu".
  virtual std::string describe() const = 0;
};

/// The oneDNN step for node `v` of `g` when oneDNN can run it: f32 matmul, conv,
/// conv_transpose, conv_weight_grad, max_pool, avg_pool, max_pool_grad, and `fused` nodes of
/// kind "matmul" or "conv" (one primitive with post-ops). Null for every other node (other
/// ops, other dtypes, empty tensors, shapes or post-ops oneDNN has no exact or no fast
/// implementation for); the caller then runs the node's reference kernel.
std::unique_ptr<OneDnnStep> compileOneDnnNode(const ir::Graph& g, ir::ValueId v, const dnnl::engine& engine);

}  // namespace weft::cpu
