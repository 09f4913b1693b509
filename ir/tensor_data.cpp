#include "ir/tensor_data.h"

namespace weft::ir {

uint16_t floatToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16ToFloat(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

double TensorData::get(int64_t i) const {
  switch (type.dtype) {
    case DType::f32: return as<float>()[i];
    case DType::f64: return as<double>()[i];
    case DType::bf16: return bf16ToFloat(as<uint16_t>()[i]);
    case DType::i32: return as<int32_t>()[i];
    case DType::i64: return static_cast<double>(as<int64_t>()[i]);
    case DType::boolean: return as<uint8_t>()[i] ? 1.0 : 0.0;
  }
  return 0;
}

void TensorData::set(int64_t i, double v) {
  switch (type.dtype) {
    case DType::f32: as<float>()[i] = static_cast<float>(v); break;
    case DType::f64: as<double>()[i] = v; break;
    case DType::bf16: as<uint16_t>()[i] = floatToBf16(static_cast<float>(v)); break;
    case DType::i32: as<int32_t>()[i] = static_cast<int32_t>(v); break;
    case DType::i64: as<int64_t>()[i] = static_cast<int64_t>(v); break;
    case DType::boolean: as<uint8_t>()[i] = v != 0.0; break;
  }
}

}  // namespace weft::ir
