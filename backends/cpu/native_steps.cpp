// Hand-written steps over the executable's buffers.
#include "backends/cpu/native_steps.h"

#include <cstring>

namespace weft::cpu {
namespace {

/// concat along `axis` of row-major buffers: for each of the prod(shape[:axis]) outer
/// indices, each operand contributes one contiguous run of bytes, in operand order.
void runConcat(const ir::Graph& g, ir::ValueId v, const std::vector<const void*>& operands, void* result) {
  const ir::Node& node = g.node(v);
  const auto axis = static_cast<size_t>(ir::AttrReader(node.attrs, node.op).i("axis"));
  const ir::Shape& out = node.type.shape;
  int64_t outer = 1;
  for (size_t d = 0; d < axis; ++d) outer *= out[d];
  const size_t element = ir::dtypeSize(node.type.dtype);
  std::vector<size_t> runBytes;
  for (ir::ValueId o : node.operands) {
    const ir::Shape& s = g.type(o).shape;
    int64_t inner = 1;
    for (size_t d = axis; d < s.size(); ++d) inner *= s[d];
    runBytes.push_back(static_cast<size_t>(inner) * element);
  }
  auto* dst = static_cast<uint8_t*>(result);
  for (int64_t i = 0; i < outer; ++i)
    for (size_t k = 0; k < operands.size(); ++k) {
      if (runBytes[k]) std::memcpy(dst, static_cast<const uint8_t*>(operands[k]) + static_cast<size_t>(i) * runBytes[k], runBytes[k]);
      dst += runBytes[k];
    }
}

}  // namespace

NativeStep nativeStepFor(const ir::Graph& g, ir::ValueId v) {
  if (g.node(v).op == ir::OpKind::Concat) return &runConcat;
  return nullptr;
}

}  // namespace weft::cpu
