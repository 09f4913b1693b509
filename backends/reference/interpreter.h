#pragma once
/// The reference interpreter: plain C++ kernels for every op, the oracle of weft.
#include <map>
#include <string>

#include "ir/graph.h"
#include "ir/tensor_data.h"

namespace weft::reference {

/// Tensors by name: graph inputs, parameters, or outputs.
using TensorMap = std::map<std::string, ir::TensorData>;

/// Options of one run.
struct RunOptions {
  /// The step counter that keys random draws (with each random op's seed).
  uint64_t step = 0;
};

/// Runs `g`. `feeds` holds every graph input and may hold parameters by name; parameters
/// not fed are initialized from their `init` attributes. Returns the outputs by name.
/// A missing input, a feed of the wrong dtype or shape, an unknown feed name or an
/// out-of-range index throws weft::Error naming the value.
TensorMap run(const ir::Graph& g, const TensorMap& feeds, const RunOptions& options = {});

/// The initial value of every parameter of `g`, from its `init` attributes, by name.
TensorMap initialState(const ir::Graph& g);

/// Runs one step of a stateful graph: parameters come from `state` (those missing are
/// initialized there first), inputs from `inputs`; afterwards each `update` of the graph
/// writes its new value into `state`. Returns the outputs by name.
TensorMap runStep(const ir::Graph& g, const TensorMap& inputs, TensorMap& state, const RunOptions& options = {});

/// Runs `g` and returns the value of every node (index = ValueId); for tests and folding.
std::vector<ir::TensorData> runAll(const ir::Graph& g, const TensorMap& feeds, const RunOptions& options = {});

/// Registers the passes that need the interpreter (fold-constants) with the pass registry.
void registerReferencePasses();

}  // namespace weft::reference
