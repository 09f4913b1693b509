#pragma once
/// The registry of reference models, by name.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace weft::models {

/// A registered model: a name (e.g. `lenet`, `lenet_tiny`), a one-line description and a
/// function that builds its graph.
struct ModelInfo {
  std::string name;
  std::string description;
  std::function<ir::Graph()> build;
};

/// Every registered model, in a stable order.
const std::vector<ModelInfo>& allModels();
/// The model called `name`, or nullptr.
const ModelInfo* findModel(std::string_view name);
/// Builds the model called `name`; throws weft::Error listing the known names if unknown.
ir::Graph buildModel(std::string_view name);

}  // namespace weft::models
