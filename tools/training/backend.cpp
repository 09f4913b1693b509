// GraphRunner: the reference interpreter or a compiled CPU executable behind one interface.
#include "tools/training/backend.h"

#include <optional>

#include "backends/cpu/executable.h"
#include "ir/error.h"

namespace weft::training {

Backend parseBackend(const std::string& name) {
  if (name == "reference") return Backend::reference;
  if (name == "cpu") return Backend::cpu;
  throw Error("unknown backend '" + name + "' (known: cpu, reference)");
}

std::string backendName(Backend b) { return b == Backend::cpu ? "cpu" : "reference"; }

struct GraphRunner::Impl {
  ir::Graph graph;                     ///< for the reference backend
  reference::TensorMap state;          ///< for the reference backend
  std::optional<cpu::Executable> exe;  ///< for the CPU backend
};

GraphRunner::GraphRunner(const ir::Graph& g, Backend backend) : impl_(std::make_unique<Impl>()) {
  if (backend == Backend::cpu) {
    impl_->exe.emplace(cpu::compile(g));
  } else {
    impl_->graph = g;
    impl_->state = reference::initialState(g);
  }
}

GraphRunner::~GraphRunner() = default;
GraphRunner::GraphRunner(GraphRunner&&) noexcept = default;
GraphRunner& GraphRunner::operator=(GraphRunner&&) noexcept = default;

reference::TensorMap GraphRunner::step(const reference::TensorMap& inputs, uint64_t step) {
  if (impl_->exe) return impl_->exe->step(inputs, {.step = step});
  return reference::runStep(impl_->graph, inputs, impl_->state, {.step = step});
}

reference::TensorMap GraphRunner::run(const reference::TensorMap& feeds) {
  if (impl_->exe) return impl_->exe->run(feeds);
  reference::TensorMap all = feeds;
  for (const auto& [name, t] : impl_->state) all.emplace(name, t);
  return reference::run(impl_->graph, all);
}

reference::TensorMap GraphRunner::state() const { return impl_->exe ? impl_->exe->state() : impl_->state; }

void GraphRunner::setState(const reference::TensorMap& state) {
  if (impl_->exe) return impl_->exe->setState(state);
  for (const auto& [name, t] : state) {
    auto v = impl_->graph.find(name);
    if (!v || impl_->graph.node(*v).op != ir::OpKind::Param)
      throw Error("'" + name + "' is not a parameter of graph @" + impl_->graph.name());
    if (t.type != impl_->graph.type(*v))
      throw Error("'" + name + "' has type " + t.type.str() + ", the parameter is " + impl_->graph.type(*v).str());
    impl_->state[name] = t;
  }
}

}  // namespace weft::training
