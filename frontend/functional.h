#pragma once
/// Neural-network functions of the DSL (PyTorch's torch.nn.functional): convolutions,
/// pooling, activations, normalizations, attention, dropout and losses.
#include <initializer_list>
#include <optional>
#include <vector>

#include "frontend/ops.h"

namespace weft {

/// Integers per spatial dimension: one value for every dim (`2`) or one per dim (`{2, 1}`).
/// Default-constructed it is "unset" (pooling then uses the window as stride).
class Spatial {
 public:
  /// Unset.
  Spatial() = default;
  /// The same value for every spatial dim.
  Spatial(int64_t v) : values_{v} {}
  /// One value per spatial dim.
  Spatial(std::initializer_list<int64_t> v) : values_(v) {}
  /// True when unset.
  bool empty() const { return values_.empty(); }
  /// The values as given.
  const std::vector<int64_t>& values() const { return values_; }

 private:
  std::vector<int64_t> values_;
};

/// Options of conv / conv2d, as in PyTorch; use designated initializers:
/// `conv2d(x, w, {.stride = 2, .padding = 1})`.
struct ConvOptions {
  Spatial stride = 1;    ///< step of the window
  Spatial padding = 0;   ///< symmetric zero padding per spatial dim
  Spatial dilation = 1;  ///< spacing of kernel taps
  int64_t groups = 1;    ///< channel groups (groups == channels: depthwise)
};

/// Options of conv_transpose / conv_transpose2d, as in PyTorch.
struct ConvTransposeOptions {
  Spatial stride = 1;          ///< step of the window
  Spatial padding = 0;         ///< implicit padding removed from each side of the output
  Spatial output_padding = 0;  ///< extra size added to one side of the output
  Spatial dilation = 1;        ///< spacing of kernel taps
  int64_t groups = 1;          ///< channel groups
};

/// How a loss reduces its per-element terms.
enum class Reduction { mean, sum, none };

// ---- convolution and pooling ([N, C, spatial...] layouts) ----------------------------
/// Convolution of any spatial rank; weight [O, C/groups, kernel...]; no bias.
Tensor conv(const Tensor& x, const Tensor& w, const ConvOptions& opts = {}, SrcLoc loc = SrcLoc::current());
/// 2-D convolution: x [N, C, H, W], weight [O, C/groups, kh, kw]; no bias.
Tensor conv2d(const Tensor& x, const Tensor& w, const ConvOptions& opts = {}, SrcLoc loc = SrcLoc::current());
/// Transposed convolution of any spatial rank; weight [C, O/groups, kernel...]; no bias.
Tensor conv_transpose(const Tensor& x, const Tensor& w, const ConvTransposeOptions& opts = {},
                      SrcLoc loc = SrcLoc::current());
/// 2-D transposed convolution: x [N, C, H, W], weight [C, O/groups, kh, kw]; no bias.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const ConvTransposeOptions& opts = {},
                        SrcLoc loc = SrcLoc::current());
/// Max pooling of any spatial rank (pads with -inf); stride defaults to the window.
Tensor max_pool(const Tensor& x, Spatial window, Spatial stride = {}, Spatial padding = 0,
                SrcLoc loc = SrcLoc::current());
/// Average pooling of any spatial rank (divides by the full window); stride defaults to the window.
Tensor avg_pool(const Tensor& x, Spatial window, Spatial stride = {}, Spatial padding = 0,
                SrcLoc loc = SrcLoc::current());
/// 2-D max pooling (pads with -inf); stride defaults to the window.
Tensor max_pool2d(const Tensor& x, Spatial window, Spatial stride = {}, Spatial padding = 0,
                  SrcLoc loc = SrcLoc::current());
/// 2-D average pooling (divides by the full window); stride defaults to the window.
Tensor avg_pool2d(const Tensor& x, Spatial window, Spatial stride = {}, Spatial padding = 0,
                  SrcLoc loc = SrcLoc::current());

// ---- activations ----------------------------------------------------------------------
/// max(x, 0).
Tensor relu(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// x for x > 0, alpha * x otherwise.
Tensor leaky_relu(const Tensor& x, double alpha = 0.01, SrcLoc loc = SrcLoc::current());
/// GELU; erf form (PyTorch's default) unless `tanhApproximation`.
Tensor gelu(const Tensor& x, bool tanhApproximation = false, SrcLoc loc = SrcLoc::current());
/// x * sigmoid(x).
Tensor silu(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// log(1 + exp(x)), computed stably.
Tensor softplus(const Tensor& x, SrcLoc loc = SrcLoc::current());
/// softmax along `axis`.
Tensor softmax(const Tensor& x, int64_t axis = -1, SrcLoc loc = SrcLoc::current());
/// log(softmax) along `axis`, computed stably.
Tensor log_softmax(const Tensor& x, int64_t axis = -1, SrcLoc loc = SrcLoc::current());

// ---- normalization --------------------------------------------------------------------
/// Layer norm over the trailing dims that gamma/beta cover (PyTorch's normalized_shape).
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5,
                  SrcLoc loc = SrcLoc::current());
/// Batch norm with batch statistics (training mode); gamma/beta [C].
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5,
                  SrcLoc loc = SrcLoc::current());
/// Batch norm with given statistics (evaluation mode); all of gamma, beta, mean, var [C].
Tensor batch_norm_infer(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                        const Tensor& var, double eps = 1e-5, SrcLoc loc = SrcLoc::current());
/// Group norm: statistics per (sample, group of channels); gamma/beta [C].
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta, double eps = 1e-5,
                  SrcLoc loc = SrcLoc::current());

// ---- attention and regularization -----------------------------------------------------
/// softmax(q k^T * scale + mask) v over the last two dims; scale defaults to 1/sqrt(d);
/// `causal` masks key j > query i.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = false,
                 std::optional<double> scale = std::nullopt, SrcLoc loc = SrcLoc::current());
/// Inverted dropout while the builder is in training mode (keep with probability 1-p, scale
/// by 1/(1-p)); the identity in evaluation mode or for p == 0.
Tensor dropout(const Tensor& x, double p, SrcLoc loc = SrcLoc::current());

// ---- losses ---------------------------------------------------------------------------
/// -log_softmax(logits)[label]; logits [..., C], labels int [...].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction r = Reduction::mean,
                     SrcLoc loc = SrcLoc::current());
/// Binary cross-entropy on logits: max(x,0) - x*t + log(1 + exp(-|x|)).
Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, Reduction r = Reduction::mean,
                       SrcLoc loc = SrcLoc::current());
/// (input - target)^2.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::mean,
                SrcLoc loc = SrcLoc::current());

}  // namespace weft
