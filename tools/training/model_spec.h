#pragma once
/// A trainable model as the training loop sees it: a way to build its graph for a mode and a
/// batch size, and whether it classifies (labels in, logits out).
#include <cstdint>
#include <functional>
#include <string>

#include "ir/graph.h"

namespace weft::training {

/// What the training loop and the evaluation need to know about a model.
struct ModelSpec {
  std::string name;  ///< recorded in checkpoints
  /// Builds the forward graph (inputs x and, for classifiers, y; outputs loss and, for
  /// classifiers, logits) in training or evaluation form for `batch` examples.
  std::function<ir::Graph(bool training, int64_t batch)> build;
  bool classifier = true;  ///< report accuracy (argmax of logits vs y)
};

/// The registered model `name` (models/registry.h) with model seed `seed`; classifiers are
/// the models with a `y` input. Throws weft::Error for an unknown name.
ModelSpec registryModel(const std::string& name, uint64_t seed);

}  // namespace weft::training
