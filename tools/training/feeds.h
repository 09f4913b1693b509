#pragma once
/// How a mini-batch of images becomes the inputs of a model graph.
#include <string>

#include "backends/reference/interpreter.h"
#include "ir/graph.h"
#include "runtime/fashion_mnist.h"

namespace weft::training {

/// The feeds of `g` for batch `b`: input `x` gets the images (reshaped to x's shape, which
/// must have as many elements, converted to x's dtype), input `y` the labels (converted to
/// y's integer dtype); inputs named in `skip` are left out (e.g. `lr`, fed by the caller).
/// Throws weft::Error naming the input for any other input, or a size that does not match.
reference::TensorMap batchFeeds(const ir::Graph& g, const runtime::Batch& b, const std::string& skip = "");

/// `t` converted element by element to `type` (same number of elements).
ir::TensorData convertTo(const ir::TensorData& t, const ir::TensorType& type);

}  // namespace weft::training
