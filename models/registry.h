#pragma once
/// The registry of reference models, by name.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace weft::models {

/// How to build a registered model: the defaults give the benchmark configuration.
struct BuildOptions {
  bool training = true;                ///< training form (dropout, batch statistics) or evaluation form
  int64_t batch = 0;                   ///< examples per step; 0 keeps the model's own batch size
  std::optional<uint64_t> seed;        ///< model seed (initializers, random ops); unset keeps the model's
};

/// A registered model: a name (e.g. `lenet`, `lenet_tiny`), a one-line description and a
/// function that builds its graph.
struct ModelInfo {
  std::string name;
  std::string description;
  std::function<ir::Graph(const BuildOptions&)> builder;  ///< builds the graph for the options
  /// Generative models only (empty otherwise): builds the decoder, input `z` [batch, latent]
  /// to output `images` [batch, features] in [0, 1], with the model's parameter names, so the
  /// model's trained parameters drive it.
  std::function<ir::Graph(const BuildOptions&)> decoder = {};

  /// Builds the graph (the benchmark configuration in training form by default).
  ir::Graph build(const BuildOptions& options = {}) const { return builder(options); }
};

/// Every registered model, in a stable order.
const std::vector<ModelInfo>& allModels();
/// The model called `name`, or nullptr.
const ModelInfo* findModel(std::string_view name);
/// Builds the model called `name`; throws weft::Error listing the known names if unknown,
/// or for a negative batch size.
ir::Graph buildModel(std::string_view name, const BuildOptions& options = {});

}  // namespace weft::models
