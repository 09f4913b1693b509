#pragma once
/// The rules of a `param` node's init attributes, shared by the verifier (which reports a
/// broken one where the graph is read) and the runtime's initializers (runtime/init.h).
#include <optional>
#include <string>

#include "ir/attrs.h"
#include "ir/types.h"

namespace weft::ir {

/// What is wrong with the init attributes of a param of `type`, or nullopt when nothing is:
/// `init` is one of zeros, ones, uniform and normal; uniform and normal need a float dtype,
/// an int `seed` and a finite, non-negative `scale` (an int or a float).
std::optional<std::string> paramInitProblem(const TensorType& type, const Attrs& attrs);

}  // namespace weft::ir
