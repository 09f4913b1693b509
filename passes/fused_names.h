#pragma once
/// How fusion passes name the bodies of the `fused` nodes they make (the names generated
/// kernels and profiles carry).
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/ops.h"

namespace weft::passes {

/// `fused_` and the distinct ops of `ops` (a body's computing nodes in order, its root last)
/// in order; with more than three, the first two, `etc` and the root's: `fused_sub_exp`,
/// `fused_gt_select_etc_div`.
std::string fusedBodyName(const std::vector<ir::OpKind>& ops);

/// fusedBodyName of the computing nodes of `body` in order (inputs, constants and iotas left out).
std::string fusedBodyName(const ir::Graph& body);

}  // namespace weft::passes
