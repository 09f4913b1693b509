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

/// One residual stage of the ResNet: a BasicBlock with `channels` outputs and `stride`.
struct ResnetBlock {
  int64_t channels;  ///< output channels of the block
  int64_t stride;    ///< stride of its first conv (and of the projection shortcut)
};

/// Sizes of the ResNet: stem conv3x3 + BN + ReLU, BasicBlocks, global average pool, fc.
struct ResnetConfig {
  int64_t batch = 32;                                                ///< examples per step
  int64_t channels = 3;                                              ///< input channels
  int64_t size = 32;                                                 ///< input height and width
  int64_t stem = 32;                                                 ///< channels of the stem conv
  std::vector<ResnetBlock> blocks = {{32, 1}, {64, 2}, {64, 1}, {128, 2}};  ///< the BasicBlocks in order
  int64_t classes = 10;                                              ///< output classes
  ir::DType dtype = ir::DType::f32;                                  ///< float dtype
  uint64_t seed = 0;                                                 ///< model seed
  bool training = true;  ///< training form (batch statistics) or evaluation form (running statistics)
};
/// The ResNet: inputs x [batch, channels, size, size], y (i32); outputs logits, loss.
ir::Graph buildResnet(const std::string& name, const ResnetConfig& c);
/// Registers `resnet` and `resnet_tiny`.
void registerResnetModels(std::vector<ModelInfo>& out);

/// Sizes of the DCGAN: G maps z [batch, latent] through fc to [g1, base, base], then two
/// stride-2 transposed convs (to g2 channels with BN + ReLU, then to `channels` with tanh),
/// so images are [channels, 4 base, 4 base]; D mirrors it with two stride-2 convs (d1, d2
/// channels, LeakyReLU) and fc to one logit.
struct DcganConfig {
  int64_t batch = 64;                ///< examples per step
  int64_t latent = 64;               ///< z dims
  int64_t base = 7;                  ///< side of G's first feature map (images are 4 base)
  int64_t channels = 1;              ///< image channels
  int64_t g1 = 128;                  ///< channels of G's first feature map
  int64_t g2 = 64;                   ///< channels after G's first transposed conv
  int64_t d1 = 64;                   ///< channels of D's first conv
  int64_t d2 = 128;                  ///< channels of D's second conv
  double slope = 0.2;                ///< LeakyReLU slope of D
  ir::DType dtype = ir::DType::f32;  ///< float dtype
  uint64_t seed = 0;                 ///< model seed (initializers and z)
  bool training = true;              ///< training or evaluation form (G's batch norm)
};
/// The DCGAN's losses in one graph: input x (real images [batch, channels, 4 base, 4 base]),
/// z ~ N(0, 1) drawn in the graph; outputs d_loss, g_loss and loss = d_loss + g_loss, where
/// the gradient of loss w.r.t. D's parameters is that of d_loss alone (G's output is detached
/// there) and w.r.t. G's that of g_loss alone (D's parameters are stop_gradient there).
ir::Graph buildDcgan(const std::string& name, const DcganConfig& c);
/// The DCGAN's generator alone: input z [batch, latent]; output images = (G(z) + 1) / 2
/// flattened to [batch, channels * (4 base)^2], with G's parameter names.
ir::Graph buildDcganGenerator(const std::string& name, const DcganConfig& c);
/// Registers `dcgan` and `dcgan_tiny`.
void registerDcganModels(std::vector<ModelInfo>& out);

/// Sizes of the DDPM's two-level U-Net (torch_models.py's TinyUNet) and its noise schedule.
struct DdpmConfig {
  int64_t batch = 32;                ///< examples per step
  int64_t channels = 1;              ///< image channels
  int64_t size = 28;                 ///< image height and width (even)
  int64_t c1 = 32;                   ///< channels of the first level
  int64_t c2 = 64;                   ///< channels of the second level
  int64_t temb = 128;                ///< width of the time embedding (even)
  int64_t groups = 8;                ///< GroupNorm groups (divides c1 and c2)
  int64_t steps = 1000;              ///< diffusion steps T (betas linear from 1e-4 to 0.02)
  ir::DType dtype = ir::DType::f32;  ///< float dtype
  uint64_t seed = 0;                 ///< model seed (initializers, timesteps, noise)
  bool training = true;              ///< training or evaluation form (the same graph here)
};
/// The DDPM training objective: input x (clean images [batch, channels, size, size]);
/// t ~ U{0..steps-1} and eps ~ N(0, 1) drawn in the graph; outputs eps_pred (the U-Net's
/// noise prediction for x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps) and loss = MSE(eps_pred, eps).
ir::Graph buildDdpm(const std::string& name, const DdpmConfig& c);
/// Registers `ddpm` and `ddpm_tiny`.
void registerDdpmModels(std::vector<ModelInfo>& out);

/// Sizes of RealNVP: affine couplings with alternating parity masks on `dim` features.
struct RealnvpConfig {
  int64_t batch = 128;               ///< examples per step
  int64_t dim = 784;                 ///< data features
  int64_t hidden = 512;              ///< hidden width of the s and t MLPs
  int64_t couplings = 4;             ///< number of coupling layers
  ir::DType dtype = ir::DType::f32;  ///< float dtype
  uint64_t seed = 0;                 ///< model seed
  bool training = true;              ///< training or evaluation form (the same graph here)
};
/// RealNVP: input x [batch, dim]; outputs z (the transformed data) and loss = the mean
/// negative log-likelihood under a standard normal base distribution.
ir::Graph buildRealnvp(const std::string& name, const RealnvpConfig& c);
/// Registers `realnvp` and `realnvp_tiny`.
void registerRealnvpModels(std::vector<ModelInfo>& out);

}  // namespace weft::models
