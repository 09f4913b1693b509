#pragma once
/// How fusion passes name the bodies of the `fused` nodes they make (the names generated
/// kernels and profiles carry).
#include <string>
#include <vector>

#include "ir/ops.h"

namespace weft::passes {

/// `fused_` and the distinct ops of `ops` (a body's computing nodes in order, its root last)
/// in order; with more than three, the first two, `etc` and the root's: `fused_sub_exp`,
/// `fused_gt_select_etc_div`.
std::string fusedBodyName(const std::vector<ir::OpKind>& ops);

}  // namespace weft::passes
