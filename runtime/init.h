#pragma once
/// Parameter initializers: how a `param` node's attributes become its first value.
#include "ir/attrs.h"
#include "ir/tensor_data.h"

namespace weft::runtime {

/// The initial value of a parameter of `type` from its attributes: `init` is one of
/// `zeros`, `ones`, `uniform` (in [-scale, scale]), `normal` (std `scale`); draws use
/// `seed` through the counter-based generator. Throws weft::Error for an unknown init.
ir::TensorData initializeParam(const std::string& name, const ir::TensorType& type, const ir::Attrs& attrs);

}  // namespace weft::runtime
