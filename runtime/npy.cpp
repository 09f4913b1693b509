// NumPy .npy files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
//   "\x93NUMPY", major, minor, header length (u16 LE for 1.0, u32 LE for 2.0/3.0),
//   then a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), }
//   padded with spaces and a final '\n' so that the data starts at a multiple of 64,
//   then the raw little-endian elements in C order.
// The writer reproduces numpy's own bytes, including the spare spaces numpy leaves after the
// dict so that the first axis can grow in place.
#include "runtime/npy.h"
#include "runtime/file_io.h"

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <variant>

#include "ir/error.h"

namespace weft::runtime {

static_assert(std::endian::native == std::endian::little, "the .npy code assumes a little-endian host");

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kPreambleV1 = 10;      // magic, version, u16 header length
constexpr size_t kPreambleV2 = 12;      // magic, version, u32 header length
constexpr size_t kAlignment = 64;       // numpy's ARRAY_ALIGN
constexpr size_t kGrowthAxisDigits = 21;  // numpy's GROWTH_AXIS_MAX_DIGITS

// ---------------------------------------------------------------- dtypes

/// The descr numpy writes for a dtype; nullopt when numpy has no such dtype.
std::optional<std::string> descrOf(ir::DType t) {
  switch (t) {
    case ir::DType::f32: return "<f4";
    case ir::DType::f64: return "<f8";
    case ir::DType::i32: return "<i4";
    case ir::DType::i64: return "<i8";
    case ir::DType::boolean: return "|b1";
    case ir::DType::bf16: return std::nullopt;
  }
  return std::nullopt;
}

/// The dtype of a descr string; throws for big-endian or unsupported descrs.
ir::DType dtypeOfDescr(const std::string& descr, const std::string& what) {
  std::string_view code = descr;
  char order = '=';
  if (!code.empty() && (code[0] == '<' || code[0] == '>' || code[0] == '|' || code[0] == '=')) {
    order = code[0];
    code.remove_prefix(1);
  }
  static const std::map<std::string_view, ir::DType> kCodes = {
      {"f4", ir::DType::f32}, {"f8", ir::DType::f64}, {"i4", ir::DType::i32},
      {"i8", ir::DType::i64}, {"b1", ir::DType::boolean}};
  auto it = kCodes.find(code);
  if (it == kCodes.end())
    throw Error(what + ": unsupported dtype '" + printableText(descr) + "' (weft reads <f4, <f8, <i4, <i8 and |b1)");
  bool singleByte = ir::dtypeSize(it->second) == 1;
  if (order == '>' && !singleByte)
    throw Error(what + ": big-endian dtype '" + descr + "' is not supported (save it as little-endian '<" +
                std::string(code) + "')");
  if (order == '|' && !singleByte)
    throw Error(what + ": unsupported dtype '" + descr + "' (a multi-byte dtype needs a byte order)");
  return it->second;
}

// ---------------------------------------------------------------- header parsing

/// A value of the header dict: a string, a bool or a tuple of ints.
using HeaderValue = std::variant<std::string, bool, std::vector<int64_t>>;

/// Parses the Python dict literal of a .npy header.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& what) : text_(text), what_(what) {}

  /// The dict's entries by key; throws on any syntax error or duplicate key.
  std::map<std::string, HeaderValue> parseDict() {
    std::map<std::string, HeaderValue> entries;
    expect('{');
    while (true) {
      skipSpace();
      if (peek() == '}') break;
      std::string key = parseString();
      expect(':');
      HeaderValue value = parseValue(key);
      if (!entries.emplace(key, std::move(value)).second) fail("duplicate key '" + printableText(key) + "'");
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    skipSpace();
    if (pos_ != text_.size()) fail("unexpected text after the dict");
    return entries;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw Error(what_ + ": malformed header: " + problem + " at offset " + std::to_string(pos_) +
                " of \"" + printableText(text_) + "\"");
  }
  void skipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r'))
      ++pos_;
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void expect(char c) {
    skipSpace();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  bool consumeWord(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  std::string parseString() {
    skipSpace();
    char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }

  int64_t parseInt() {
    skipSpace();
    size_t start = pos_;
    int64_t v = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      int digit = text_[pos_] - '0';
      if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) fail("dimension too large");
      v = v * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) fail("expected a non-negative integer");
    if (peek() == 'L') ++pos_;  // Python 2 long suffix, as old numpy wrote
    return v;
  }

  std::vector<int64_t> parseTuple() {
    std::vector<int64_t> dims;
    ++pos_;  // '('
    while (true) {
      skipSpace();
      if (peek() == ')') break;
      dims.push_back(parseInt());
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
    ++pos_;
    return dims;
  }

  HeaderValue parseValue(const std::string& key) {
    skipSpace();
    char c = peek();
    if (c == '\'' || c == '"') return parseString();
    if (c == '(') return parseTuple();
    if (consumeWord("True")) return true;
    if (consumeWord("False")) return false;
    if (c == '[' && key == "descr")
      throw Error(what_ + ": unsupported dtype: structured arrays (a list 'descr') are not supported");
    fail("unsupported value for '" + printableText(key) + "'");
  }

  std::string_view text_;
  const std::string& what_;
  size_t pos_ = 0;
};

/// The type and data offset that a .npy header announces.
struct NpyHeader {
  ir::TensorType type;
  size_t dataOffset = 0;
};

template <class T>
const T& entryAs(const std::map<std::string, HeaderValue>& entries, const std::string& key, const char* kind,
                 const std::string& what) {
  auto it = entries.find(key);
  if (it == entries.end()) throw Error(what + ": malformed header: missing key '" + key + "'");
  if (auto* p = std::get_if<T>(&it->second)) return *p;
  throw Error(what + ": malformed header: '" + key + "' must be " + kind);
}

uint32_t readLittleEndian(const std::string& bytes, size_t offset, size_t width) {
  uint32_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[offset + i])) << (8 * i);
  return v;
}

NpyHeader parseHeader(const std::string& bytes, const std::string& what) {
  if (bytes.size() < kMagic.size() || std::string_view(bytes).substr(0, kMagic.size()) != kMagic)
    throw Error(what + ": not a .npy file (bad magic: it does not start with \\x93NUMPY)");
  if (bytes.size() < kPreambleV1)
    throw Error(what + ": truncated header: the file ends inside the .npy preamble");
  int major = static_cast<uint8_t>(bytes[6]), minor = static_cast<uint8_t>(bytes[7]);
  if (minor != 0 || major < 1 || major > 3)
    throw Error(what + ": unsupported .npy format version " + std::to_string(major) + "." +
                std::to_string(minor) + " (weft reads 1.0, 2.0 and 3.0)");
  size_t preamble = major == 1 ? kPreambleV1 : kPreambleV2;
  if (bytes.size() < preamble) throw Error(what + ": truncated header: the file ends inside the .npy preamble");
  size_t headerLength = readLittleEndian(bytes, 8, preamble - 8);
  if (bytes.size() - preamble < headerLength)
    throw Error(what + ": truncated header: it should be " + std::to_string(headerLength) + " bytes, found " +
                std::to_string(bytes.size() - preamble));

  std::string_view text = std::string_view(bytes).substr(preamble, headerLength);
  auto entries = HeaderParser(text, what).parseDict();
  for (const auto& [key, value] : entries)
    if (key != "descr" && key != "fortran_order" && key != "shape")
      throw Error(what + ": malformed header: unexpected key '" + printableText(key) + "'");

  NpyHeader h;
  h.type.dtype = dtypeOfDescr(entryAs<std::string>(entries, "descr", "a string", what), what);
  h.type.shape = entryAs<std::vector<int64_t>>(entries, "shape", "a tuple of ints", what);
  bool fortranOrder = entryAs<bool>(entries, "fortran_order", "True or False", what);
  // Fortran and C order lay out tensors of rank <= 1 identically.
  if (fortranOrder && h.type.rank() > 1)
    throw Error(what + ": fortran_order is True; weft reads only C-order arrays (save with "
                       "np.ascontiguousarray)");
  h.dataOffset = preamble + headerLength;
  return h;
}

/// Bytes of data a type needs, or nullopt when that overflows.
std::optional<size_t> dataBytes(const ir::TensorType& t) {
  size_t n = ir::dtypeSize(t.dtype);
  for (int64_t d : t.shape) {
    if (d != 0 && n > std::numeric_limits<size_t>::max() / static_cast<size_t>(d)) return std::nullopt;
    n *= static_cast<size_t>(d);
  }
  return n;
}

// ---------------------------------------------------------------- writing

/// Python's repr of a shape tuple: (), (5,), (2, 3).
std::string pythonShapeRepr(const ir::Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::string headerBytes(const ir::TensorType& type, const std::string& descr) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " +
                     pythonShapeRepr(type.shape) + ", }";
  if (!type.shape.empty()) dict.append(kGrowthAxisDigits - std::to_string(type.shape[0]).size(), ' ');
  auto wrap = [&](size_t preamble) {
    size_t length = dict.size() + 1;  // the final '\n'
    size_t padding = kAlignment - (preamble + length) % kAlignment;  // numpy pads a full 64 when aligned
    return length + padding;
  };
  size_t headerLength = wrap(kPreambleV1);
  int major = 1;
  if (headerLength > 0xffff) {
    major = 2;
    headerLength = wrap(kPreambleV2);
  }
  std::string out(kMagic);
  out += static_cast<char>(major);
  out += '\0';
  for (size_t i = 0; i < (major == 1 ? 2u : 4u); ++i) out += static_cast<char>((headerLength >> (8 * i)) & 0xff);
  out += dict;
  out.append(headerLength - dict.size() - 1, ' ');
  out += '\n';
  return out;
}

}  // namespace

ir::TensorData parseNpy(const std::string& bytes, const std::string& what) {
  NpyHeader h = parseHeader(bytes, what);
  std::optional<size_t> expected = dataBytes(h.type);
  if (!expected) throw Error(what + ": shape " + ir::shapeStr(h.type.shape) + " is too large");
  size_t found = bytes.size() - h.dataOffset;
  if (found != *expected)
    throw Error(what + ": expected " + std::to_string(*expected) + " bytes of data for " + h.type.str() +
                ", found " + std::to_string(found));
  ir::TensorData t(h.type);
  if (found) std::memcpy(t.bytes.data(), bytes.data() + h.dataOffset, found);
  if (h.type.dtype == ir::DType::boolean)
    for (uint8_t& b : t.bytes) b = b != 0;
  return t;
}

std::string serializeNpy(const ir::TensorData& t) {
  std::optional<std::string> descr = descrOf(t.type.dtype);
  if (!descr)
    throw Error("cannot store a " + t.type.str() +
                " tensor in .npy: NumPy has no bfloat16 dtype (cast it to f32 first)");
  if (t.bytes.size() != t.type.byteSize())
    throw Error("cannot store a " + t.type.str() + " tensor in .npy: it holds " + std::to_string(t.bytes.size()) +
                " bytes instead of " + std::to_string(t.type.byteSize()));
  std::string out = headerBytes(t.type, *descr);
  size_t dataStart = out.size();
  out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  if (t.type.dtype == ir::DType::boolean)
    for (size_t i = dataStart; i < out.size(); ++i) out[i] = out[i] != 0;
  return out;
}

ir::TensorData readNpy(const std::string& path) { return parseNpy(readFileBytes(path), path); }

void writeNpy(const std::string& path, const ir::TensorData& t) {
  std::string bytes;
  try {
    bytes = serializeNpy(t);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  writeFileAtomically(path, bytes);
}

}  // namespace weft::runtime
