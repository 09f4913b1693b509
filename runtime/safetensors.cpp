// safetensors reading and writing. The format is defined by the reference implementation
// (https://github.com/huggingface/safetensors): u64 LE header length N, N bytes of JSON
// (space padded to a multiple of 8 by writers), then the data section that the tensors
// tile exactly, each one at [begin, end) relative to the data section.
#include "runtime/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "ir/error.h"
#include "runtime/file_io.h"

namespace weft::runtime {

static_assert(std::endian::native == std::endian::little, "the safetensors code assumes a little-endian host");

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr size_t kLengthBytes = 8;
constexpr size_t kHeaderAlignment = 8;
constexpr const char* kMetadataKey = "__metadata__";

// ---------------------------------------------------------------- dtypes

std::string_view dtypeCode(ir::DType t) {
  switch (t) {
    case ir::DType::f32: return "F32";
    case ir::DType::f64: return "F64";
    case ir::DType::bf16: return "BF16";
    case ir::DType::i32: return "I32";
    case ir::DType::i64: return "I64";
    case ir::DType::boolean: return "BOOL";
  }
  return "?";
}

std::optional<ir::DType> dtypeOfCode(std::string_view code) {
  for (ir::DType t : {ir::DType::f32, ir::DType::f64, ir::DType::bf16, ir::DType::i32, ir::DType::i64,
                      ir::DType::boolean})
    if (dtypeCode(t) == code) return t;
  return std::nullopt;
}

// ---------------------------------------------------------------- header parsing

/// One tensor as the header describes it.
struct HeaderEntry {
  std::string name;
  ir::TensorType type;
  uint64_t begin = 0, end = 0;
};

/// A validated header: entries sorted by offset, the metadata and where the data starts.
struct ParsedHeader {
  std::vector<HeaderEntry> entries;
  MetadataMap metadata;
  uint64_t dataStart = 0;
  uint64_t dataSize = 0;
};

uint64_t readU64LittleEndian(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return v;
}

/// Parses JSON text, rejecting duplicate keys (which nlohmann would silently merge).
Json parseJsonStrict(std::string_view text, const std::string& what) {
  std::vector<std::set<std::string>> openObjects;
  std::optional<std::string> duplicate;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      openObjects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!openObjects.empty()) openObjects.pop_back();
    } else if (event == Json::parse_event_t::key && !openObjects.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!openObjects.back().insert(key).second && !duplicate) duplicate = key;
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text.begin(), text.end(), callback);
  } catch (const Json::exception& e) {
    throw Error(what + ": malformed safetensors header: invalid JSON: " + printableText(e.what()));
  }
  if (duplicate)
    throw Error(what + ": malformed safetensors header: duplicate key '" + printableText(*duplicate) + "'");
  return header;
}

/// A non-negative JSON integer that fits in int64; throws naming `context` otherwise.
uint64_t nonNegativeInteger(const Json& value, const std::string& context) {
  if (value.is_number_unsigned()) {
    uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) throw Error(context + " is too large");
    return v;
  }
  if (value.is_number_integer()) throw Error(context + " is negative (" + value.dump() + ")");
  throw Error(context + " must be a non-negative integer, not " + value.dump());
}

/// Bytes of a type, or nullopt when that overflows 64 bits.
std::optional<uint64_t> checkedByteSize(const ir::TensorType& type) {
  uint64_t n = ir::dtypeSize(type.dtype);
  for (int64_t d : type.shape) if (d == 0) return 0;
  for (int64_t d : type.shape) {
    if (n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) return std::nullopt;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

HeaderEntry parseEntry(const std::string& name, const Json& info, uint64_t dataSize, const std::string& what) {
  std::string where = what + ": tensor '" + printableText(name) + "'";
  if (!info.is_object()) throw Error(where + ": header entry must be an object, not " + info.dump());
  for (const auto& [key, value] : info.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      throw Error(where + ": unexpected key '" + printableText(key) + "' in its header entry");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!info.contains(key)) throw Error(where + ": header entry is missing '" + printableText(key) + "'");

  HeaderEntry e;
  e.name = name;
  const Json& dtype = info["dtype"];
  if (!dtype.is_string()) throw Error(where + ": dtype must be a string, not " + dtype.dump());
  std::optional<ir::DType> dt = dtypeOfCode(dtype.get_ref<const std::string&>());
  if (!dt)
    throw Error(where + ": unsupported dtype " + dtype.dump() + " (weft reads F32, F64, BF16, I32, I64 and BOOL)");
  e.type.dtype = *dt;

  const Json& shape = info["shape"];
  if (!shape.is_array()) throw Error(where + ": shape must be an array, not " + shape.dump());
  for (size_t i = 0; i < shape.size(); ++i)
    e.type.shape.push_back(static_cast<int64_t>(nonNegativeInteger(shape[i], where + ": dimension " + std::to_string(i) + " of the shape")));

  const Json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    throw Error(where + ": data_offsets must be an array [begin, end], not " + offsets.dump());
  e.begin = nonNegativeInteger(offsets[0], where + ": data_offsets begin");
  e.end = nonNegativeInteger(offsets[1], where + ": data_offsets end");
  std::string range = "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  if (e.end < e.begin) throw Error(where + ": data_offsets " + range + " end before they begin");
  if (e.end > dataSize)
    throw Error(where + ": data_offsets " + range + " lie outside the data section of " + std::to_string(dataSize) +
                " bytes (is the file truncated?)");
  std::optional<uint64_t> expected = checkedByteSize(e.type);
  if (!expected) throw Error(where + ": shape " + ir::shapeStr(e.type.shape) + " is too large");
  if (e.end - e.begin != *expected)
    throw Error(where + ": data_offsets " + range + " span " + std::to_string(e.end - e.begin) + " bytes but " +
                e.type.str() + " needs " + std::to_string(*expected));
  return e;
}

MetadataMap parseMetadata(const Json& value, const std::string& what) {
  if (!value.is_object()) throw Error(what + ": __metadata__ must be an object of strings, not " + value.dump());
  MetadataMap metadata;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string())
      throw Error(what + ": __metadata__ entry '" + printableText(key) + "' must be a string, not " + v.dump());
    metadata[key] = v.get<std::string>();
  }
  return metadata;
}

/// Checks that the sorted entries tile [0, dataSize) exactly.
void checkTiling(const std::vector<HeaderEntry>& entries, uint64_t dataSize, const std::string& what) {
  uint64_t position = 0;
  const HeaderEntry* previous = nullptr;
  for (const HeaderEntry& e : entries) {
    if (e.begin < position)
      throw Error(what + ": tensor '" + printableText(e.name) + "': data_offsets [" + std::to_string(e.begin) + ", " +
                  std::to_string(e.end) + "] overlap tensor '" + printableText(previous->name) + "'");
    if (e.begin > position)
      throw Error(what + ": tensor '" + printableText(e.name) + "': " + std::to_string(e.begin - position) +
                  " unused bytes before its data_offsets begin " + std::to_string(e.begin) +
                  (previous ? " (after tensor '" + printableText(previous->name) + "')"
                            : std::string(" (at the data start)")));
    position = e.end;
    if (e.end > e.begin || !previous) previous = &e;
  }
  if (position != dataSize)
    throw Error(what + ": " + std::to_string(dataSize - position) + " trailing bytes after the last tensor" +
                (previous ? " '" + previous->name + "'" : std::string()) + " in the data section");
}

/// Parses and validates the header. `prefix` holds at least the length and header bytes of
/// a file of `fileSize` bytes.
ParsedHeader parseHeader(std::string_view prefix, uint64_t fileSize, const std::string& what) {
  if (fileSize < kLengthBytes)
    throw Error(what + ": not a safetensors file: " + std::to_string(fileSize) +
                " bytes is too short for the 8-byte header length (truncated?)");
  uint64_t headerLength = readU64LittleEndian(prefix);
  if (headerLength > fileSize - kLengthBytes)
    throw Error(what + ": header length " + std::to_string(headerLength) + " exceeds the " +
                std::to_string(fileSize - kLengthBytes) + " bytes after it (truncated or not a safetensors file)");
  std::string_view text = prefix.substr(kLengthBytes, headerLength);
  if (text.empty() || text.front() != '{')
    throw Error(what + ": not a safetensors file: the header does not start with '{'");
  Json header = parseJsonStrict(text, what);
  if (!header.is_object()) throw Error(what + ": malformed safetensors header: it must be a JSON object");

  ParsedHeader h;
  h.dataStart = kLengthBytes + headerLength;
  h.dataSize = fileSize - h.dataStart;
  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey) {
      h.metadata = parseMetadata(info, what);
      continue;
    }
    if (name.empty()) throw Error(what + ": a tensor has an empty name");
    h.entries.push_back(parseEntry(name, info, h.dataSize, what));
  }
  std::sort(h.entries.begin(), h.entries.end(), [](const HeaderEntry& a, const HeaderEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  checkTiling(h.entries, h.dataSize, what);
  return h;
}

}  // namespace

// ---------------------------------------------------------------- writing

std::string serializeSafetensors(const TensorMap& tensors, const MetadataMap& metadata) {
  OrderedJson header = OrderedJson::object();
  if (!metadata.empty()) {
    OrderedJson meta = OrderedJson::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header[kMetadataKey] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) throw Error("cannot save a tensor with an empty name in safetensors");
    if (name == kMetadataKey) throw Error("cannot save a tensor named '__metadata__' in safetensors (reserved)");
    for (int64_t d : t.type.shape)
      if (d < 0) throw Error("cannot save tensor '" + name + "': its shape " + ir::shapeStr(t.type.shape) + " is negative");
    if (t.bytes.size() != t.type.byteSize())
      throw Error("cannot save tensor '" + name + "' of type " + t.type.str() + ": it holds " +
                  std::to_string(t.bytes.size()) + " bytes instead of " + std::to_string(t.type.byteSize()));
    OrderedJson info = OrderedJson::object();
    info["dtype"] = dtypeCode(t.type.dtype);
    info["shape"] = t.type.shape;
    info["data_offsets"] = {offset, offset + t.bytes.size()};
    header[name] = std::move(info);
    offset += t.bytes.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const OrderedJson::exception& e) {
    throw Error(std::string("cannot save safetensors: a tensor name or metadata string is not valid UTF-8 (") +
                e.what() + ")");
  }
  text.append((kHeaderAlignment - text.size() % kHeaderAlignment) % kHeaderAlignment, ' ');

  std::string out;
  out.reserve(kLengthBytes + text.size() + offset);
  for (size_t i = 0; i < kLengthBytes; ++i) out += static_cast<char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff);
  out += text;
  for (const auto& [name, t] : tensors) {
    size_t start = out.size();
    out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
    if (t.type.dtype == ir::DType::boolean)
      for (size_t i = start; i < out.size(); ++i) out[i] = out[i] != 0;
  }
  return out;
}

void saveSafetensors(const std::string& path, const TensorMap& tensors, const MetadataMap& metadata) {
  std::string bytes;
  try {
    bytes = serializeSafetensors(tensors, metadata);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  writeFileAtomically(path, bytes);
}

// ---------------------------------------------------------------- reading

TensorMap loadSafetensorsFromMemory(std::string_view bytes, const std::string& what) {
  ParsedHeader h = parseHeader(bytes, bytes.size(), what);
  TensorMap tensors;
  for (const HeaderEntry& e : h.entries) {
    ir::TensorData t(e.type);
    if (!t.bytes.empty()) std::memcpy(t.bytes.data(), bytes.data() + h.dataStart + e.begin, t.bytes.size());
    if (e.type.dtype == ir::DType::boolean)
      for (uint8_t& b : t.bytes) b = b != 0;
    tensors.emplace(e.name, std::move(t));
  }
  return tensors;
}

std::map<std::string, TensorView> viewSafetensors(std::string_view bytes, const std::string& what) {
  ParsedHeader h = parseHeader(bytes, bytes.size(), what);
  std::map<std::string, TensorView> views;
  for (const HeaderEntry& e : h.entries)
    views.emplace(e.name, TensorView{e.type, bytes.substr(h.dataStart + e.begin, e.end - e.begin)});
  return views;
}

TensorMap loadSafetensors(const std::string& path) { return loadSafetensorsFromMemory(readFileBytes(path), path); }

MetadataMap readSafetensorsMetadata(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": cannot read: it is a directory");
  uint64_t fileSize = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path + ": cannot open: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::string prefix(static_cast<size_t>(std::min<uint64_t>(fileSize, kLengthBytes)), '\0');
  in.read(prefix.data(), static_cast<std::streamsize>(prefix.size()));
  if (fileSize >= kLengthBytes) {
    uint64_t headerLength = readU64LittleEndian(prefix);
    if (headerLength <= fileSize - kLengthBytes) {
      prefix.resize(kLengthBytes + headerLength);
      in.read(prefix.data() + kLengthBytes, static_cast<std::streamsize>(headerLength));
    }
  }
  if (!in) throw Error(path + ": read error while reading the safetensors header");
  return parseHeader(prefix, fileSize, path).metadata;
}

MetadataMap readSafetensorsMetadataFromMemory(std::string_view bytes, const std::string& what) {
  return parseHeader(bytes, bytes.size(), what).metadata;
}

void loadInto(TensorMap& state, const TensorMap& loaded, const std::string& what) {
  std::vector<std::string> problems;
  for (const auto& [name, expected] : state) {
    auto it = loaded.find(name);
    if (it == loaded.end())
      problems.push_back("missing tensor '" + name + "' (expected " + expected.type.str() + ")");
    else if (it->second.type != expected.type)
      problems.push_back("tensor '" + name + "' is " + it->second.type.str() + " but " + expected.type.str() +
                         " is expected");
  }
  for (const auto& [name, t] : loaded)
    if (!state.count(name))
      problems.push_back("unexpected tensor '" + printableText(name) + "' (" + t.type.str() + ")");
  if (!problems.empty()) {
    std::string message = what + ": cannot load: ";
    for (size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    throw Error(message);
  }
  for (auto& [name, t] : state) t = loaded.at(name);
}

}  // namespace weft::runtime
