#pragma once
/// Parameters and their initializers. A parameter node carries its initializer as
/// attributes (`init` = zeros | ones | uniform | normal, `scale`, `seed`); the runtime draws
/// the values. Seeds are derived from the model seed and the parameter's full name.
#include <string>

#include "frontend/ops.h"

namespace weft {

/// How a parameter starts: `kind` is zeros, ones, uniform (U[-scale, scale]) or normal
/// (N(0, scale^2)).
struct Init {
  std::string kind = "zeros";  ///< zeros | ones | uniform | normal
  double scale = 0;            ///< the bound (uniform) or standard deviation (normal)
};

namespace init {
/// All zeros.
Init zeros();
/// All ones.
Init ones();
/// U[-bound, bound].
Init uniform(double bound);
/// N(0, std^2).
Init normal(double std);
/// Glorot/Xavier uniform: bound = gain * sqrt(6 / (fanIn + fanOut)).
Init xavier_uniform(int64_t fanIn, int64_t fanOut, double gain = 1.0);
/// Glorot/Xavier normal: std = gain * sqrt(2 / (fanIn + fanOut)).
Init xavier_normal(int64_t fanIn, int64_t fanOut, double gain = 1.0);
/// He/Kaiming uniform with leaky-ReLU slope `a`: bound = sqrt(6 / ((1 + a^2) fanIn)).
/// With a = sqrt(5) this is PyTorch's default for Linear/Conv weights: bound = 1/sqrt(fanIn).
Init kaiming_uniform(int64_t fanIn, double a = 0.0);
/// He/Kaiming normal: std = sqrt(2 / ((1 + a^2) fanIn)).
Init kaiming_normal(int64_t fanIn, double a = 0.0);
/// PyTorch's default for Linear/Conv weights and biases: U[-1/sqrt(fanIn), 1/sqrt(fanIn)].
Init torch_default(int64_t fanIn);
}  // namespace init

/// A parameter of the current builder called `name` (prefixed by the open NameScopes) with
/// the builder's float dtype.
Tensor param(const std::string& name, const Shape& shape, const Init& init, SrcLoc loc = SrcLoc::current());
/// A parameter with an explicit dtype.
Tensor param(const std::string& name, const Shape& shape, const Init& init, DType dtype,
             SrcLoc loc = SrcLoc::current());

/// A non-trainable parameter (PyTorch's buffer), e.g. BatchNorm's running statistics: it is
/// state that persists across runs and is saved in checkpoints, but training steps take no
/// gradient of it (its node carries trainable=0).
Tensor buffer(const std::string& name, const Shape& shape, const Init& init, SrcLoc loc = SrcLoc::current());

/// Records that parameter `param` takes the value `value` after each run of the graph
/// (`update %param = %value` in the IR). Throws weft::Error at `loc` when `param` is not a
/// parameter, is already updated, or `value` has another type.
void update(const Tensor& param, const Tensor& value, SrcLoc loc = SrcLoc::current());

}  // namespace weft
