#pragma once
/// The training step as one graph: forward pass, gradients (passes/autodiff.h) of the loss
/// w.r.t. every trainable parameter, and the optimizer update (passes/optimizers.h) written
/// back with `update`. Running it once with runStep is one step of training; the learning
/// rate is an input, so schedules stay on the host.
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/optimizers.h"

namespace weft::passes {

/// What buildTrainStep builds.
struct TrainConfig {
  std::string loss = "loss";    ///< the scalar float output to minimize
  std::string lrInput = "lr";   ///< the name of the added learning-rate input, f32[]
  OptimizerConfig optimizer;    ///< update rule and hyper-parameters
};

/// True when parameter node `n` is trained: a float `param` whose `trainable` attribute is
/// absent or 1 (optimizer state and running statistics carry trainable=0).
bool isTrainable(const ir::Node& n);

/// The trainable parameters of `g`, in graph order.
std::vector<ir::ValueId> trainableParams(const ir::Graph& g);

/// A copy of `forward` extended into a training step: the input `lr: f32[]`, the gradient
/// `grad.<param>` of output `cfg.loss` for every trainable parameter, the optimizer state
/// parameters (`opt.*`, trainable=0) and an update for every trainable parameter (`<param>.next`)
/// and state value. The forward graph's outputs and updates (e.g. BatchNorm running
/// statistics) are kept; with clipping, `grad_norm` (before clipping) is added as an output.
/// Trainable parameters the loss does not depend on are left alone. Throws weft::Error when
/// the loss output is missing or not a one-element float value, when there is no trainable
/// parameter, when the graph already has the lr input or optimizer state, or for a bad
/// optimizer config.
ir::Graph buildTrainStep(const ir::Graph& forward, const TrainConfig& cfg = {});

}  // namespace weft::passes
