// Runs a graph node by node with the reference kernels.
#include "backends/reference/interpreter.h"

#include <stdexcept>

#include "runtime/init.h"

#include "backends/reference/kernels.h"
#include "backends/reference/run_support.h"
#include "ir/error.h"
#include "ir/verifier.h"

namespace weft::reference {

using ir::Graph;
using ir::OpKind;
using ir::TensorData;
using ir::ValueId;

void checkFeedNames(const Graph& g, const TensorMap& feeds) {
  for (const auto& [name, data] : feeds) {
    auto v = g.find(name);
    if (!v || (g.node(*v).op != OpKind::Input && g.node(*v).op != OpKind::Param))
      throw Error("feed '" + name + "' is not an input or parameter of graph @" + g.name());
  }
}

std::vector<ValueId> lastUses(const Graph& g) {
  std::vector<ValueId> last(static_cast<size_t>(g.size()), g.size());
  std::vector<bool> used(static_cast<size_t>(g.size()), false);
  for (ValueId v = 0; v < g.size(); ++v)
    for (ValueId o : g.node(v).operands) {
      last[static_cast<size_t>(o)] = v;
      used[static_cast<size_t>(o)] = true;
    }
  for (const auto& out : g.outputs()) last[static_cast<size_t>(out.value)] = g.size();
  for (const auto& u : g.updates()) last[static_cast<size_t>(u.value)] = g.size();
  for (ValueId v = 0; v < g.size(); ++v)
    if (!used[static_cast<size_t>(v)]) last[static_cast<size_t>(v)] = g.size();
  return last;
}

TensorData runKernel(Kernel kernel, const KernelContext& ctx) {
  TensorData result = kernel(ctx);
  const ir::TensorType& type = ctx.outType();
  if (result.type != type || result.bytes.size() != type.byteSize())
    throw std::logic_error("reference kernel of " + ctx.where() + " produced " + result.type.str() +
                           " instead of " + type.str());
  return result;
}

namespace {

/// Evaluates every node in order. With `keepAll` false, a value is released after its last
/// reader has run (outputs are kept).
std::vector<TensorData> evaluate(const Graph& g, const TensorMap& feeds, const RunOptions& options,
                                 bool keepAll) {
  ir::verify(g);
  checkFeedNames(g, feeds);
  std::vector<ValueId> last = keepAll ? std::vector<ValueId>{} : lastUses(g);
  std::vector<TensorData> values(static_cast<size_t>(g.size()));
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& node = g.node(v);
    KernelContext ctx{g, v, {}, feeds, options};
    ctx.operands.reserve(node.operands.size());
    for (ValueId o : node.operands) ctx.operands.push_back(&values[static_cast<size_t>(o)]);
    try {
      values[static_cast<size_t>(v)] = runKernel(kernelFor(node.op), ctx);
    } catch (const std::bad_alloc&) {
      ctx.fail("cannot allocate memory for its result " + node.type.str() + " (" + ir::gibibytes(node.type.byteSize()) + ")");
    }
    if (!keepAll)
      for (ValueId o : node.operands)
        if (last[static_cast<size_t>(o)] == v) values[static_cast<size_t>(o)] = TensorData{};
  }
  return values;
}

}  // namespace

TensorMap run(const Graph& g, const TensorMap& feeds, const RunOptions& options) {
  std::vector<TensorData> values = evaluate(g, feeds, options, /*keepAll=*/false);
  TensorMap outputs;
  for (const auto& out : g.outputs()) outputs[out.name] = values[static_cast<size_t>(out.value)];
  return outputs;
}

TensorMap initialState(const Graph& g) {
  TensorMap state;
  for (ValueId p : g.params()) {
    const ir::Node& n = g.node(p);
    try {
      state[n.name] = runtime::initializeParam(n.name, n.type, n.attrs);
    } catch (const std::bad_alloc&) {
      throw Error("param " + ir::valueRef(g, p) + " : " + n.type.str() + ": cannot allocate memory for it (" +
                  ir::gibibytes(n.type.byteSize()) + ")");
    }
  }
  return state;
}

TensorMap runStep(const Graph& g, const TensorMap& inputs, TensorMap& state, const RunOptions& options) {
  TensorMap feeds = inputs;
  for (ValueId p : g.params()) {
    const ir::Node& n = g.node(p);
    auto it = state.find(n.name);
    if (it == state.end()) it = state.emplace(n.name, runtime::initializeParam(n.name, n.type, n.attrs)).first;
    if (!feeds.emplace(n.name, it->second).second)
      throw Error("'" + n.name + "' is given both as an input and as state");
  }
  std::vector<TensorData> values = evaluate(g, feeds, options, /*keepAll=*/false);
  TensorMap outputs;
  for (const auto& out : g.outputs()) outputs[out.name] = values[static_cast<size_t>(out.value)];
  for (const auto& u : g.updates()) state[g.node(u.param).name] = values[static_cast<size_t>(u.value)];
  return outputs;
}

std::vector<TensorData> runAll(const Graph& g, const TensorMap& feeds, const RunOptions& options) {
  return evaluate(g, feeds, options, /*keepAll=*/true);
}

}  // namespace weft::reference
