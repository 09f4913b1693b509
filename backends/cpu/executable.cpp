// Compiles a graph into oneDNN primitives and reference kernels, and runs it.
#include "backends/cpu/executable.h"

#include <optional>
#include <vector>

#include "backends/cpu/onednn_ops.h"
#include "backends/reference/kernels.h"
#include "backends/reference/run_support.h"
#include "ir/verifier.h"

namespace weft::cpu {

using ir::TensorData;
using ir::ValueId;

/// One step per node, in graph order.
struct Executable::Impl {
  ir::Graph graph;                                ///< the compiled graph (owned copy)
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};  ///< the CPU engine of every primitive
  std::vector<std::optional<OneDnnNode>> onednn;  ///< per node: its primitive, if oneDNN runs it
  std::vector<reference::Kernel> kernels;         ///< per node: its reference kernel, or null
  std::vector<ValueId> lastUse;                   ///< per value: the last node reading it
  int oneDnnCount = 0;                            ///< nodes with a primitive
};

Executable compile(const ir::Graph& g) {
  ir::verify(g);
  auto impl = std::make_shared<Executable::Impl>();
  impl->graph = g;
  impl->lastUse = reference::lastUses(g);
  for (ValueId v = 0; v < g.size(); ++v) {
    impl->onednn.push_back(compileOneDnnNode(g, v, impl->engine));
    ir::OpKind op = g.node(v).op;
    // An op without a kernel fails at run time (as in reference::run), through kernelFor.
    impl->kernels.push_back(impl->onednn.back() || !reference::hasKernel(op) ? nullptr : reference::kernelFor(op));
    if (impl->onednn.back()) ++impl->oneDnnCount;
  }
  return Executable(std::move(impl));
}

reference::TensorMap Executable::run(const reference::TensorMap& feeds, const reference::RunOptions& options) const {
  const ir::Graph& g = impl_->graph;
  reference::checkFeedNames(g, feeds);
  dnnl::stream stream(impl_->engine);
  std::vector<TensorData> values(static_cast<size_t>(g.size()));
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& node = g.node(v);
    auto index = static_cast<size_t>(v);
    if (const auto& prim = impl_->onednn[index]) {
      values[index] = runOneDnnNode(*prim, values[static_cast<size_t>(node.operands[0])],
                                    values[static_cast<size_t>(node.operands[1])], node.type, impl_->engine, stream);
    } else {
      reference::KernelContext ctx{g, v, {}, feeds, options};
      for (ValueId o : node.operands) ctx.operands.push_back(&values[static_cast<size_t>(o)]);
      reference::Kernel kernel = impl_->kernels[index] ? impl_->kernels[index] : reference::kernelFor(node.op);
      values[index] = reference::runKernel(kernel, ctx);
    }
    for (ValueId o : node.operands)
      if (impl_->lastUse[static_cast<size_t>(o)] == v) values[static_cast<size_t>(o)] = TensorData{};
  }
  reference::TensorMap outputs;
  for (const auto& out : g.outputs()) outputs[out.name] = values[static_cast<size_t>(out.value)];
  return outputs;
}

int Executable::oneDnnNodeCount() const { return impl_->oneDnnCount; }

const ir::Graph& Executable::graph() const { return impl_->graph; }

}  // namespace weft::cpu
