// The channels-last layout of the windowed ops: which operands are data, and the
// permutations between [N, C, S...] and [N, S..., C].
#include "ir/channels_last.h"

namespace weft::ir {

bool takesChannelsLast(OpKind op) {
  switch (op) {
    case OpKind::Conv:
    case OpKind::ConvTranspose:
    case OpKind::ConvWeightGrad:
    case OpKind::MaxPool:
    case OpKind::AvgPool:
    case OpKind::MaxPoolGrad: return true;
    default: return false;
  }
}

bool isChannelsLast(OpKind op, const Attrs& attrs) {
  return takesChannelsLast(op) && AttrReader(attrs, op).i("channels_last", 0) != 0;
}

bool isDataOperand(OpKind op, size_t i) {
  switch (op) {
    case OpKind::Conv:
    case OpKind::ConvTranspose: return i == 0;  // operand 1 is the weight
    default: return true;
  }
}

bool hasDataResult(OpKind op) { return op != OpKind::ConvWeightGrad; }

std::vector<int64_t> toChannelsLastPerm(size_t rank) {
  std::vector<int64_t> perm = {0};
  for (size_t d = 2; d < rank; ++d) perm.push_back(static_cast<int64_t>(d));
  if (rank > 1) perm.push_back(1);
  return perm;
}

std::vector<int64_t> toChannelsFirstPerm(size_t rank) {
  std::vector<int64_t> perm = {0};
  if (rank > 1) perm.push_back(static_cast<int64_t>(rank) - 1);
  for (size_t d = 1; d + 1 < rank; ++d) perm.push_back(static_cast<int64_t>(d));
  return perm;
}

namespace {
Shape permuted(const Shape& shape, const std::vector<int64_t>& perm) {
  Shape out;
  for (int64_t p : perm) out.push_back(shape.at(static_cast<size_t>(p)));
  return out;
}
}  // namespace

Shape toChannelsLast(const Shape& shape) { return shape.size() < 2 ? shape : permuted(shape, toChannelsLastPerm(shape.size())); }

Shape toChannelsFirst(const Shape& shape) {
  return shape.size() < 2 ? shape : permuted(shape, toChannelsFirstPerm(shape.size()));
}

}  // namespace weft::ir
