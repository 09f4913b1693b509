#pragma once
/// The backend a training or evaluation run executes on, behind one small interface.
#include <memory>
#include <string>

#include "backends/reference/interpreter.h"
#include "ir/graph.h"

namespace weft::training {

/// Where graphs run.
enum class Backend { reference, cpu };

/// `reference` or `cpu`; throws weft::Error listing the names for anything else.
Backend parseBackend(const std::string& name);
/// The command-line name of `b`.
std::string backendName(Backend b);

/// A graph prepared to run on a backend, holding its parameters and optimizer state.
class GraphRunner {
 public:
  /// Prepares `g` (compiles it for the CPU backend); the state starts at the parameters' inits.
  GraphRunner(const ir::Graph& g, Backend backend);
  ~GraphRunner();
  GraphRunner(GraphRunner&&) noexcept;
  GraphRunner& operator=(GraphRunner&&) noexcept;

  /// One step with the held state: `inputs` are the graph's inputs; updates are applied.
  reference::TensorMap step(const reference::TensorMap& inputs, uint64_t step);
  /// Runs without applying updates; parameters not in `feeds` come from the held state.
  reference::TensorMap run(const reference::TensorMap& feeds);
  /// The held state by parameter name.
  reference::TensorMap state() const;
  /// Replaces the parameters named in `state` (weft::Error for unknown names or wrong types).
  void setState(const reference::TensorMap& state);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft::training
