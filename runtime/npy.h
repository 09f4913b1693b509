#pragma once
/// NumPy .npy files in and out (format versions 1.0-3.0, little-endian, C order).
#include <string>

#include "ir/tensor_data.h"

namespace weft::runtime {

/// Reads a .npy file. Errors (missing file, bad magic, unsupported dtype or order,
/// truncated data) throw weft::Error naming the file and the problem.
ir::TensorData readNpy(const std::string& path);
/// Writes a .npy file atomically (temporary file, then rename). Throws weft::Error on failure.
void writeNpy(const std::string& path, const ir::TensorData& t);
/// Parses .npy bytes; `what` names the source in messages.
ir::TensorData parseNpy(const std::string& bytes, const std::string& what);
/// Serializes a tensor as .npy bytes.
std::string serializeNpy(const ir::TensorData& t);

}  // namespace weft::runtime
