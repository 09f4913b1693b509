#pragma once
/// The compiled CPU backend: a graph turned once into a list of steps, each a oneDNN
/// primitive (f32 matmul, f32 conv) or the node's reference kernel.
#include <memory>

#include "backends/reference/interpreter.h"
#include "ir/graph.h"

namespace weft::cpu {

/// A graph compiled for the CPU. Runs with the semantics of reference::run; the oneDNN
/// primitives are created by compile() and reused by every run. Cheap to copy (shared state).
class Executable {
 public:
  struct Impl;  ///< the compiled steps (oneDNN types stay out of this header)

  /// Wraps compiled state; use cpu::compile() to make one.
  explicit Executable(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

  /// Runs the graph. `feeds` holds every graph input and may hold parameters by name;
  /// parameters not fed are initialized from their `init` attributes. Returns the outputs
  /// by name. Bad feeds throw weft::Error exactly as reference::run does.
  reference::TensorMap run(const reference::TensorMap& feeds, const reference::RunOptions& options = {}) const;

  /// How many nodes run as oneDNN primitives (the rest run reference kernels).
  int oneDnnNodeCount() const;

  /// The compiled graph.
  const ir::Graph& graph() const;

 private:
  std::shared_ptr<const Impl> impl_;
};

/// Compiles `g` (verified first; weft::Error when invalid): walks it once and creates a
/// oneDNN primitive for every node oneDNN can run, a reference kernel for the others.
Executable compile(const ir::Graph& g);

}  // namespace weft::cpu
