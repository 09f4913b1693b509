#include "models/registry.h"

#include "ir/error.h"
#include "models/families.h"

namespace weft::models {

const std::vector<ModelInfo>& allModels() {
  static const std::vector<ModelInfo> models = [] {
    std::vector<ModelInfo> all;
    registerMlpModels(all);
    registerLenetModels(all);
    registerResnetModels(all);
    registerVaeModels(all);
    registerGptModels(all);
    registerDcganModels(all);
    registerDdpmModels(all);
    registerRealnvpModels(all);
    return all;
  }();
  return models;
}

const ModelInfo* findModel(std::string_view name) {
  for (const auto& m : allModels())
    if (m.name == name) return &m;
  return nullptr;
}

ir::Graph buildModel(std::string_view name, const BuildOptions& options) {
  if (options.batch < 0) throw Error("model '" + std::string(name) + "': batch size must be positive, got " +
                                     std::to_string(options.batch));
  if (const ModelInfo* m = findModel(name)) return m->build(options);
  std::string known;
  for (const auto& m : allModels()) known += (known.empty() ? "" : ", ") + m.name;
  throw Error("unknown model '" + std::string(name) + "'; known models: " + known);
}

}  // namespace weft::models
