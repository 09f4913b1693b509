#pragma once
/// The model families behind the registry. Each family file defines a configurable builder
/// and a `register*Models` function that appends its benchmark-size model and a `_tiny`
/// variant (same structure, small dims) to the registry list. registry.cpp calls these
/// explicitly, so no static initializer can be dropped by the linker.
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "models/registry.h"

namespace weft::models {

/// `config` with the batch size, seed and mode of `options` applied (those left unset keep
/// the config's values). Works for every *Config below.
template <class Config>
Config withOptions(Config config, const BuildOptions& options) {
  if (options.batch > 0) config.batch = options.batch;
  if (options.seed) config.seed = *options.seed;
  config.training = options.training;
  return config;
}

/// Sizes of the MLP classifier: x [batch, in] -> hidden... (ReLU) -> classes.
struct MlpConfig {
  int64_t batch = 128;                       ///< examples per step
  int64_t in = 784;                          ///< input features
  std::vector<int64_t> hidden = {512, 256};  ///< hidden widths
  int64_t classes = 10;                      ///< output classes
  ir::DType dtype = ir::DType::f32;          ///< float dtype of inputs and parameters
  uint64_t seed = 0;                         ///< model seed (initializers)
  bool training = true;                      ///< training or evaluation form of the layers
};
/// The MLP classifier: inputs x, y (i32); outputs logits, loss (mean cross-entropy).
ir::Graph buildMlp(const std::string& name, const MlpConfig& c);
/// Registers `mlp` and `mlp_tiny`.
void registerMlpModels(std::vector<ModelInfo>& out);

/// Sizes of LeNet: two (conv3x3, ReLU, maxpool2) stages, then fc hidden -> classes.
struct LenetConfig {
  int64_t batch = 64;                ///< examples per step
  int64_t channels = 1;              ///< input channels
  int64_t size = 28;                 ///< input height and width
  int64_t c1 = 32;                   ///< channels of the first conv
  int64_t c2 = 64;                   ///< channels of the second conv
  int64_t hidden = 128;              ///< width of the hidden fc layer
  int64_t classes = 10;              ///< output classes
  ir::DType dtype = ir::DType::f32;  ///< float dtype
  uint64_t seed = 0;                 ///< model seed
  bool training = true;              ///< training or evaluation form of the layers
};
/// LeNet: inputs x [batch, channels, size, size], y (i32); outputs logits, loss.
ir::Graph buildLenet(const std::string& name, const LenetConfig& c);
/// Registers `lenet` and `lenet_tiny`.
void registerLenetModels(std::vector<ModelInfo>& out);

/// Sizes of the VAE: in -> hidden -> (mu, logvar) latent -> hidden -> in.
struct VaeConfig {
  int64_t batch = 128;               ///< examples per step
  int64_t in = 784;                  ///< data features (values in [0, 1))
  int64_t hidden = 400;              ///< hidden width of encoder and decoder
  int64_t latent = 20;               ///< latent dims
  ir::DType dtype = ir::DType::f32;  ///< float dtype
  uint64_t seed = 0;                 ///< model seed (initializers and the reparameterization noise)
  bool training = true;              ///< training or evaluation form of the layers
};
/// The VAE: input x; outputs logits (decoder output) and loss = (BCE-with-logits sum + KL) / batch.
ir::Graph buildVae(const std::string& name, const VaeConfig& c);
/// The VAE's decoder alone: input z [batch, latent]; output images = sigmoid(decoder logits),
/// with the parameters d1, d2 named and initialized as in buildVae.
ir::Graph buildVaeDecoder(const std::string& name, const VaeConfig& c);
/// Registers `vae` and `vae_tiny`.
void registerVaeModels(std::vector<ModelInfo>& out);

/// Sizes of the GPT stack: `layers` pre-norm transformer blocks on x [batch, seq, dim].
struct GptConfig {
  int64_t batch = 8;                 ///< sequences per step
  int64_t seq = 128;                 ///< tokens per sequence
  int64_t dim = 256;                 ///< model width
  int64_t heads = 4;                 ///< attention heads (dim must be divisible)
  int64_t ff = 1024;                 ///< feed-forward width
  int64_t layers = 2;                ///< number of blocks
  ir::DType dtype = ir::DType::f32;  ///< float dtype
  uint64_t seed = 0;                 ///< model seed
  bool training = true;              ///< training or evaluation form of the layers
};
/// The GPT blocks: inputs x, target [batch, seq, dim]; outputs out and loss = MSE(out, target).
ir::Graph buildGpt(const std::string& name, const GptConfig& c);
/// Registers `gpt` and `gpt_tiny`.
void registerGptModels(std::vector<ModelInfo>& out);

}  // namespace weft::models
