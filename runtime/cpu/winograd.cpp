// The Winograd choice of the convolution family (see winograd.h).
#include "runtime/cpu/winograd.h"

#include <algorithm>

#include "ir/channels_last.h"

namespace weft::cpu {

bool triesWinograd(const ir::Node& node, const ir::Shape& first, const ir::Shape& second) {
  if (node.type.dtype != ir::DType::f32 || node.type.shape.size() != 4 || first.size() != 4 || second.size() != 4)
    return false;
  ir::AttrReader attr(node.attrs, node.op);
  auto allOnes = [](const std::vector<int64_t>& values) {
    return std::all_of(values.begin(), values.end(), [](int64_t v) { return v == 1; });
  };
  if (!allOnes(attr.ints("stride")) || !allOnes(attr.ints("dilation")) || attr.i("groups") != 1) return false;
  const bool channelsLast = ir::isChannelsLast(node.op, node.attrs);
  auto channels = [&](const ir::Shape& data) { return channelsLast ? data.back() : data[1]; };
  auto planeOf = [&](const ir::Shape& data) { return channelsLast ? data[1] * data[2] : data[2] * data[3]; };
  int64_t in = 0, out = 0;
  ir::Shape kernel, result = channelsLast ? ir::toChannelsFirst(node.type.shape) : node.type.shape;
  switch (node.op) {
    case ir::OpKind::Conv:  // (x, w [O, C, k...])
      in = second[1], out = second[0], kernel = {second[2], second[3]};
      break;
    case ir::OpKind::ConvTranspose:  // (dy, w [C_in, O, k...]): the data gradient of a conv
      in = second[0], out = second[1], kernel = {second[2], second[3]};
      if (attr.ints("padding") != std::vector<int64_t>{1, 1}) return false;
      break;
    case ir::OpKind::ConvWeightGrad:  // (x, dy) -> w
      in = channels(first), out = channels(second), kernel = attr.ints("kernel");
      result = channelsLast ? ir::toChannelsFirst(second) : second;
      if (in < 64 && !(in >= 32 && planeOf(first) >= 24 * 24)) return false;
      break;
    default: return false;
  }
  return kernel == ir::Shape{3, 3} && in % 16 == 0 && out % 16 == 0 && result[2] >= 8 && result[3] >= 8;
}

}  // namespace weft::cpu
