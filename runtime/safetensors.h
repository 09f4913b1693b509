#pragma once
/// safetensors files (https://huggingface.co/docs/safetensors): named tensors plus a string
/// metadata map, as PyTorch/JAX/HF tooling reads and writes them.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON header (padded with
/// spaces to a multiple of 8), then the data section. The header maps each tensor name to
/// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section)
/// and may hold "__metadata__": {string: string}.
#include <map>
#include <string>
#include <string_view>

#include "ir/tensor_data.h"

namespace weft::runtime {

/// Named tensors, as saved and loaded (sorted by name).
using TensorMap = std::map<std::string, ir::TensorData>;
/// The free-form string metadata of a safetensors file.
using MetadataMap = std::map<std::string, std::string>;

/// The safetensors bytes of `tensors` (stored in name order, header "__metadata__" first).
/// Throws weft::Error when a tensor's byte size disagrees with its type, a name is empty or
/// "__metadata__", or a name or metadata string is not valid UTF-8.
std::string serializeSafetensors(const TensorMap& tensors, const MetadataMap& metadata = {});

/// Writes `tensors` to `path` atomically (temporary file, then rename). Errors name the path.
void saveSafetensors(const std::string& path, const TensorMap& tensors, const MetadataMap& metadata = {});

/// Parses safetensors bytes, validating the header length, JSON, dtypes (F32, F64, BF16,
/// I32, I64, BOOL), shapes and offsets (inside the data section, in order, exactly sized,
/// without gaps, overlaps or trailing bytes). Errors name `what` and the tensor.
TensorMap loadSafetensorsFromMemory(std::string_view bytes, const std::string& what);

/// Reads and validates the safetensors file at `path` (see loadSafetensorsFromMemory).
TensorMap loadSafetensors(const std::string& path);

/// The "__metadata__" map of the safetensors file at `path` (empty when absent). Reads only
/// the header, which is fully validated against the file's size.
MetadataMap readSafetensorsMetadata(const std::string& path);

/// The "__metadata__" map of safetensors `bytes` held in memory (empty when absent), after
/// validating the header against the bytes' size as loadSafetensorsFromMemory does (so a
/// truncated file fails here). Errors name `what`.
MetadataMap readSafetensorsMetadataFromMemory(std::string_view bytes, const std::string& what);

/// A tensor of safetensors bytes held in memory, seen in place.
struct TensorView {
  ir::TensorType type;
  std::string_view bytes;  ///< as stored (a bool element is true when nonzero)
};

/// The tensors of safetensors `bytes` by name, as views into `bytes` (no copy), validated as
/// loadSafetensorsFromMemory validates them. Errors name `what`.
std::map<std::string, TensorView> viewSafetensors(std::string_view bytes, const std::string& what);

/// Copies `loaded` into `state` after checking that `loaded` holds exactly the tensors of
/// `state` (same names, dtypes and shapes). On any mismatch it throws weft::Error naming
/// `what`, the tensor and both types, and leaves `state` untouched.
void loadInto(TensorMap& state, const TensorMap& loaded, const std::string& what);

}  // namespace weft::runtime
