#pragma once
/// Layers as small structs, PyTorch-style: construct with a name (parameters become
/// `NAME.weight`, `NAME.bias`, under any open NameScope) while a BuildScope is open, then
/// call like a function. Initialization follows PyTorch's defaults. Weights of Linear are
/// stored [in, out] so that the forward pass is matmul(x, W) + b.
/// Construct layers in model code itself (`v.push_back(nn::Linear(...))`, not
/// `v.emplace_back(...)`), so that the recorded source line is the model's.
#include <string>

#include "frontend/functional.h"
#include "frontend/init.h"

namespace weft::nn {

/// y = x W + b with W [in, out], b [out]; both U(-1/sqrt(in), 1/sqrt(in)).
struct Linear {
  Tensor weight;  ///< [in, out]
  Tensor bias;    ///< [out]; empty when built without bias

  /// An unbuilt layer (assign a built one before use).
  Linear() = default;
  /// Creates `name.weight` and (if `withBias`) `name.bias`.
  Linear(const std::string& name, int64_t in, int64_t out, bool withBias = true, SrcLoc loc = SrcLoc::current());
  /// Applies the layer to x [..., in].
  Tensor operator()(const Tensor& x, SrcLoc loc = SrcLoc::current()) const;
};

/// 2-D convolution with weight [out, in/groups, kh, kw] and bias [out]; PyTorch init.
struct Conv2d {
  Tensor weight;        ///< [out, in/groups, kh, kw]
  Tensor bias;          ///< [out]; empty when built without bias
  ConvOptions options;  ///< stride, padding, dilation, groups

  /// An unbuilt layer.
  Conv2d() = default;
  /// Creates `name.weight` and (if `withBias`) `name.bias`; `kernel` is k or {kh, kw}.
  Conv2d(const std::string& name, int64_t in, int64_t out, Spatial kernel, ConvOptions opts = {},
         bool withBias = true, SrcLoc loc = SrcLoc::current());
  /// Applies the layer to x [N, in, H, W].
  Tensor operator()(const Tensor& x, SrcLoc loc = SrcLoc::current()) const;
};

/// 2-D transposed convolution with weight [in, out/groups, kh, kw] and bias [out].
struct ConvTranspose2d {
  Tensor weight;                 ///< [in, out/groups, kh, kw]
  Tensor bias;                   ///< [out]; empty when built without bias
  ConvTransposeOptions options;  ///< stride, padding, output_padding, dilation, groups

  /// An unbuilt layer.
  ConvTranspose2d() = default;
  /// Creates `name.weight` and (if `withBias`) `name.bias`; `kernel` is k or {kh, kw}.
  ConvTranspose2d(const std::string& name, int64_t in, int64_t out, Spatial kernel, ConvTransposeOptions opts = {},
                  bool withBias = true, SrcLoc loc = SrcLoc::current());
  /// Applies the layer to x [N, in, H, W].
  Tensor operator()(const Tensor& x, SrcLoc loc = SrcLoc::current()) const;
};

/// Batch norm over [N, C, ...] with running statistics `name.running_mean` (zeros) and
/// `name.running_var` (ones), buffers (trainable=0) in both modes so that a checkpoint of
/// training loads into evaluation. Built in training mode it normalizes with the batch
/// statistics and updates the running ones after each run, as PyTorch does:
/// running = (1 - momentum) running + momentum batch_stat, with the unbiased batch variance.
/// Built in evaluation mode it normalizes with the running statistics. The mode is the
/// builder's at construction.
struct BatchNorm2d {
  Tensor weight;          ///< gamma [C], ones
  Tensor bias;            ///< beta [C], zeros
  Tensor running_mean;    ///< [C], zeros
  Tensor running_var;     ///< [C], ones
  double eps = 1e-5;      ///< added to the variance
  double momentum = 0.1;  ///< weight of the batch statistic in the running update
  bool training = true;   ///< which form operator() emits

  /// An unbuilt layer.
  BatchNorm2d() = default;
  /// Creates the parameters for `channels` channels.
  BatchNorm2d(const std::string& name, int64_t channels, double eps = 1e-5, double momentum = 0.1,
              SrcLoc loc = SrcLoc::current());
  /// Normalizes x [N, C, ...]; in training mode also adds the running-statistics updates
  /// (so a layer is applied once per graph).
  Tensor operator()(const Tensor& x, SrcLoc loc = SrcLoc::current()) const;
};

/// Layer norm over the trailing `normalized` dims; weight ones, bias zeros.
struct LayerNorm {
  Tensor weight;      ///< gamma, shape `normalized`
  Tensor bias;        ///< beta, shape `normalized`
  double eps = 1e-5;  ///< added to the variance

  /// An unbuilt layer.
  LayerNorm() = default;
  /// Normalizes over the last dim of extent `dim`.
  LayerNorm(const std::string& name, int64_t dim, double eps = 1e-5, SrcLoc loc = SrcLoc::current());
  /// Normalizes over the trailing dims `normalized`.
  LayerNorm(const std::string& name, const Shape& normalized, double eps = 1e-5, SrcLoc loc = SrcLoc::current());
  /// Applies the layer.
  Tensor operator()(const Tensor& x, SrcLoc loc = SrcLoc::current()) const;
};

/// Group norm with `groups` groups over `channels` channels; weight ones, bias zeros.
struct GroupNorm {
  Tensor weight;       ///< gamma [C]
  Tensor bias;         ///< beta [C]
  int64_t groups = 1;  ///< number of channel groups
  double eps = 1e-5;   ///< added to the variance

  /// An unbuilt layer.
  GroupNorm() = default;
  /// Creates the parameters.
  GroupNorm(const std::string& name, int64_t groups, int64_t channels, double eps = 1e-5,
            SrcLoc loc = SrcLoc::current());
  /// Normalizes x [N, C, ...].
  Tensor operator()(const Tensor& x, SrcLoc loc = SrcLoc::current()) const;
};

/// A lookup table [num, dim] initialized N(0, 1), as in PyTorch.
struct Embedding {
  Tensor weight;  ///< [num, dim]

  /// An unbuilt layer.
  Embedding() = default;
  /// Creates `name.weight`.
  Embedding(const std::string& name, int64_t num, int64_t dim, SrcLoc loc = SrcLoc::current());
  /// Rows of the table for integer `indices` of any shape: indices.shape + [dim].
  Tensor operator()(const Tensor& indices, SrcLoc loc = SrcLoc::current()) const;
};

/// Inverted dropout in training mode, the identity in evaluation mode (the builder's mode
/// when called).
struct Dropout {
  double p = 0.5;  ///< probability of dropping an element

  /// Dropout with probability `p`.
  explicit Dropout(double p = 0.5) : p(p) {}
  /// Applies dropout.
  Tensor operator()(const Tensor& x, SrcLoc loc = SrcLoc::current()) const { return dropout(x, p, loc); }
};

}  // namespace weft::nn
