#pragma once
// Test support: deterministic feeds for every input of a whole model's graph.
#include <cmath>

#include "backends/reference/interpreter.h"

namespace weft::testing {

/// Feeds for every input of `g`: float inputs vary smoothly (0.25 + 0.5 sin i), integer
/// ones (labels, indices) stay 0, so that every model runs on them.
inline reference::TensorMap modelFeeds(const ir::Graph& g) {
  reference::TensorMap feeds;
  for (ir::ValueId v : g.inputs()) {
    ir::TensorData t(g.type(v));
    if (ir::isFloat(t.type.dtype))
      for (int64_t i = 0; i < t.numel(); ++i) t.set(i, 0.25 + 0.5 * std::sin(double(i)));
    feeds[g.node(v).name] = t;
  }
  return feeds;
}

}  // namespace weft::testing
