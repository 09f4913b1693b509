#pragma once
/// The whole model DSL in one include: GraphBuilder/BuildScope, Tensor and its operators,
/// the core ops, nn functions, parameters/initializers, nn:: layers and weft::Error.
#include "frontend/builder.h"
#include "frontend/functional.h"
#include "frontend/init.h"
#include "frontend/nn.h"
#include "frontend/ops.h"
#include "frontend/tensor.h"
#include "ir/error.h"
