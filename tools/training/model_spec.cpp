#include "tools/training/model_spec.h"

#include "models/registry.h"

namespace weft::training {

ModelSpec registryModel(const std::string& name, uint64_t seed) {
  ModelSpec spec;
  spec.name = name;
  spec.build = [name, seed](bool training, int64_t batch) {
    return models::buildModel(name, models::BuildOptions{.training = training, .batch = batch, .seed = seed});
  };
  ir::Graph probe = spec.build(true, 0);  // also rejects an unknown name
  spec.classifier = probe.find("y").has_value() && probe.findOutput("logits").has_value();
  return spec;
}

}  // namespace weft::training
