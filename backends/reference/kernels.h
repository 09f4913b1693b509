#pragma once
/// The reference kernels: one function per op of ir/ops.def, and the table that finds them.
#include <string>
#include <vector>

#include "backends/reference/interpreter.h"
#include "ir/attrs.h"
#include "ir/graph.h"
#include "ir/tensor_data.h"

namespace weft::reference {

/// Everything a kernel sees while evaluating one node.
struct KernelContext {
  const ir::Graph& graph;                       ///< the graph being run
  ir::ValueId value;                            ///< the node being evaluated
  std::vector<const ir::TensorData*> operands;  ///< operand values, in operand order
  const TensorMap& feeds;                       ///< the run's feeds (for inputs and params)
  const RunOptions& options;                    ///< the run's options (random step)

  /// The node being evaluated.
  const ir::Node& node() const { return graph.node(value); }
  /// Operand `i`'s value.
  const ir::TensorData& in(size_t i) const { return *operands.at(i); }
  /// The result type the node declares.
  const ir::TensorType& outType() const { return node().type; }
  /// Typed access to the node's attributes.
  ir::AttrReader attr() const { return ir::AttrReader(node().attrs, node().op); }
  /// `opname %value` (plus ` at loc` when known), for messages.
  std::string where() const;
  /// Throws weft::Error "<where>: <why>".
  [[noreturn]] void fail(const std::string& why) const;
};

/// A kernel computes the value of one node from its context.
using Kernel = ir::TensorData (*)(const KernelContext&);

// One kernel declaration per op: kernelNeg, kernelMatmul, ...
#define WEFT_OP(Id, name, operands, attrs, rule, flags) ir::TensorData kernel##Id(const KernelContext& ctx);
#include "ir/ops.def"
#undef WEFT_OP

/// True when the node of `ctx` is a windowed op with channels_last=1.
bool isChannelsLast(const KernelContext& ctx);
/// Runs a channels_last node through `kernel`, its channels-first kernel: data operands
/// transposed to [N, C, S...], the data result transposed back (ir/channels_last.h).
ir::TensorData viaChannelsFirst(const KernelContext& ctx, Kernel kernel);

/// True when the reference backend has a kernel for `op`.
bool hasKernel(ir::OpKind op);
/// The kernel of `op`; throws weft::Error when there is none.
Kernel kernelFor(ir::OpKind op);

}  // namespace weft::reference
