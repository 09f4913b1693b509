// The value readers of the IR text parser (see ir/value_reader.h): numbers, types,
// locations, attribute blocks and dense literals.
#include "ir/value_reader.h"

#include <charconv>
#include <limits>
#include <optional>

namespace weft::ir::text {
namespace {

/// The largest element count a type in IR text may have.
constexpr int64_t kMaxElements = int64_t{1} << 48;
/// The largest constant that `dense<elided>` is materialized for (as zeros).
constexpr size_t kMaxElidedBytes = size_t{1} << 30;

bool isFloatWord(const Token& t) { return t.kind == Tok::Word && (t.text == "inf" || t.text == "nan"); }

/// Reads all of `s` as a number of type T with std::from_chars.
template <class T>
std::optional<T> fromChars(const std::string& s, std::errc& ec) {
  T value{};
  auto res = std::from_chars(s.data(), s.data() + s.size(), value);
  ec = res.ec;
  if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

int64_t ValueReader::intValue(const Token& t, const std::string& what) const {
  std::errc ec;
  if (auto v = fromChars<int64_t>(t.text, ec)) return *v;
  if (ec == std::errc::result_out_of_range) fail(t.pos, "number " + t.text + " is out of range");
  if (fromChars<double>(t.text, ec)) fail(t.pos, "expected an integer " + what + ", got " + t.text);
  fail(t.pos, "bad number '" + t.text + "'");
}

template <class F>
F ValueReader::floatValue(const Token& t, std::string_view dtype) const {
  std::errc ec;
  if (t.kind == Tok::Number || isFloatWord(t)) {
    if (auto v = fromChars<F>(t.text, ec)) return *v;
    if (ec == std::errc::result_out_of_range)
      fail(t.pos, "number " + t.text + " is out of range for " + std::string(dtype));
  }
  if (t.kind == Tok::Number) fail(t.pos, "bad number '" + t.text + "'");
  fail(t.pos, "expected a number, got " + describe(t));
}

TensorType ValueReader::parseType() {
  Token dt = expect(Tok::Word, "a type such as f32[4,8]");
  auto dtype = parseDType(dt.text);
  if (!dtype) fail(dt.pos, "unknown dtype '" + dt.text + "' (dtypes are f32, f64, bf16, i32, i64, bool)");
  expect(Tok::LBracket, "'[' after the dtype (a scalar is written " + dt.text + "[])");
  TensorType type{*dtype, {}};
  int64_t numel = 1;
  if (tok_.kind != Tok::RBracket) {
    do {
      Token n = expect(Tok::Number, "a dimension size");
      int64_t extent = intValue(n, "dimension size");
      if (extent < 0) fail(n.pos, "dimension size must be >= 0, got " + n.text);
      if (extent > kMaxElements || (extent != 0 && numel > kMaxElements / extent))
        fail(n.pos, "type has too many elements");
      numel *= extent;
      type.shape.push_back(extent);
    } while (accept(Tok::Comma));
  }
  expect(Tok::RBracket, "',' or ']' in the type");
  return type;
}

std::string ValueReader::parseOptionalLoc() {
  if (!atWord("loc")) return "";
  advance();
  expect(Tok::LParen, "'(' after 'loc'");
  std::string loc = expect(Tok::String, "a location string").text;
  expect(Tok::RParen, "')' after the location");
  return loc;
}

AttrBlock ValueReader::parseAttrs(const OpInfo& info) {
  AttrBlock block;
  expect(Tok::LBrace, "'{'");
  if (tok_.kind != Tok::RBrace) {
    do {
      Token name = expect(Tok::Word, "an attribute name");
      const AttrSpec* spec = info.attr(name.text);
      if (!spec) fail(name.pos, "unknown attribute '" + name.text + "' for op '" + std::string(info.name) + "'" +
                                    attrList(info));
      if (block.attrs.count(name.text)) fail(name.pos, "attribute '" + name.text + "' is given twice");
      expect(Tok::Equals, "'=' after the attribute name");
      block.attrs[name.text] = parseAttrValue(info, *spec, block);
    } while (accept(Tok::Comma));
  }
  expect(Tok::RBrace, "',' or '}' in the attributes");
  return block;
}

std::string ValueReader::attrList(const OpInfo& info) {
  if (info.attrs.empty()) return " (it takes none)";
  std::string r = " (it takes ";
  for (size_t i = 0; i < info.attrs.size(); ++i) r += (i ? ", " : "") + info.attrs[i].name;
  return r + ")";
}

void ValueReader::checkMissing(const OpInfo& info, const Attrs& attrs, SourcePos pos) const {
  for (const auto& spec : info.attrs)
    if (!spec.optional && !attrs.count(spec.name))
      fail(pos, "op '" + std::string(info.name) + "' is missing attribute '" + spec.name + "'");
}

AttrValue ValueReader::parseAttrValue(const OpInfo& info, const AttrSpec& spec, AttrBlock& block) {
  Token start = tok_;
  auto mistyped = [&](const std::string& got) { failMistyped(start.pos, info, spec, got); };
  switch (tok_.kind) {
    case Tok::Number: {
      advance();
      std::errc ec;
      bool isInt = fromChars<int64_t>(start.text, ec).has_value() || ec == std::errc::result_out_of_range;
      if (isInt && spec.kind == AttrKind::Int) {
        int64_t value = intValue(start, "");
        if (spec.flag && value != 0 && value != 1)
          fail(start.pos, "attribute '" + spec.name + "' of op '" + std::string(info.name) + "' must be 0 or 1, got " +
                              start.text);
        return value;
      }
      if (spec.kind == AttrKind::Float) return floatValue<double>(start, "a float attribute");
      floatValue<double>(start, "a float attribute");  // rejects a bad number before a kind mismatch
      failMistyped(start.pos, info, spec, isInt ? "int" : "float");
    }
    case Tok::String:
      if (spec.kind != AttrKind::Str) mistyped("str");
      return expect(Tok::String, "a string").text;
    case Tok::LBracket: {
      if (spec.kind != AttrKind::Ints) mistyped("a list");
      advance();
      std::vector<int64_t> list;
      if (tok_.kind != Tok::RBracket) {
        do list.push_back(intValue(expect(Tok::Number, "an integer"), "in the list"));
        while (accept(Tok::Comma));
      }
      expect(Tok::RBracket, "',' or ']'");
      return list;
    }
    case Tok::Word: {
      if (start.text == "dense") {
        if (spec.kind != AttrKind::Tensor) mistyped("tensor");
        block.dense.emplace_back(spec.name, parseDense());
        return TensorDataPtr{};
      }
      advance();
      if (isFloatWord(start)) {
        if (spec.kind != AttrKind::Float) mistyped("float");
        return floatValue<double>(start, "a float attribute");
      }
      auto dtype = parseDType(start.text);
      if (spec.kind == AttrKind::DType) {
        if (!dtype) fail(start.pos, "unknown dtype '" + start.text + "'");
        return *dtype;
      }
      failMistyped(start.pos, info, spec, dtype ? "dtype" : "'" + start.text + "'");
    }
    default: unexpected("an attribute value");
  }
}

void ValueReader::failMistyped(SourcePos pos, const OpInfo& info, const AttrSpec& spec,
                               const std::string& got) const {
  std::string want(attrKindName(spec.kind));
  if (spec.kind == AttrKind::Tensor) want += " (dense<[...]>)";
  fail(pos, "attribute '" + spec.name + "' of op '" + std::string(info.name) + "' must be " + want + ", got " + got);
}

DenseLiteral ValueReader::parseDense() {
  DenseLiteral d;
  d.pos = tok_.pos;
  advance();  // 'dense'
  expect(Tok::Less, "'<' after 'dense'");
  if (atWord("elided")) {
    advance();
    d.elided = true;
  } else {
    expect(Tok::LBracket, "'[' or 'elided' after 'dense<'");
    if (tok_.kind != Tok::RBracket) {
      do {
        if (tok_.kind != Tok::Number && tok_.kind != Tok::Word) unexpected("a tensor element");
        d.elements.push_back(tok_);
        advance();
      } while (accept(Tok::Comma));
    }
    expect(Tok::RBracket, "',' or ']' in the tensor");
  }
  expect(Tok::Greater, "'>' to close 'dense<'");
  return d;
}

TensorDataPtr ValueReader::materialize(const DenseLiteral& d, const TensorType& type) const {
  if (d.elided) {
    if (!allowElided_)
      fail(d.pos, "constant " + type.str() +
                      " is dense<elided>: the text lacks its values, which computing would take as zeros "
                      "(`--print-constants` of `weft dump` and `weft compile --print-ir` writes them; only "
                      "`weft opt` and `weft dump` read elided constants)");
    if (type.byteSize() > kMaxElidedBytes) fail(d.pos, "elided constant " + type.str() + " is too large to fill");
    return std::make_shared<const TensorData>(type);
  }
  if (static_cast<int64_t>(d.elements.size()) != type.numel())
    fail(d.pos, "constant has " + std::to_string(d.elements.size()) + " values but its type " + type.str() +
                    " needs " + std::to_string(type.numel()));
  auto data = std::make_shared<TensorData>(type);
  for (size_t i = 0; i < d.elements.size(); ++i) setElement(*data, static_cast<int64_t>(i), d.elements[i]);
  return data;
}

void ValueReader::setElement(TensorData& data, int64_t i, const Token& t) const {
  DType dt = data.type.dtype;
  std::string dtName(dtypeName(dt));
  switch (dt) {
    case DType::f32: data.as<float>()[i] = floatValue<float>(t, dtName); return;
    case DType::f64: data.as<double>()[i] = floatValue<double>(t, dtName); return;
    case DType::bf16: data.as<uint16_t>()[i] = floatToBf16(floatValue<float>(t, dtName)); return;
    case DType::boolean:
      if (t.kind != Tok::Word || (t.text != "true" && t.text != "false"))
        fail(t.pos, "expected true or false in a bool constant, got " + describe(t));
      data.as<uint8_t>()[i] = t.text == "true";
      return;
    case DType::i32:
    case DType::i64: {
      if (t.kind != Tok::Number) fail(t.pos, "expected an integer in an " + dtName + " constant, got " + describe(t));
      int64_t v = intValue(t, "in an " + dtName + " constant");
      if (dt == DType::i64) {
        data.as<int64_t>()[i] = v;
      } else {
        if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
          fail(t.pos, "value " + t.text + " is out of range for i32");
        data.as<int32_t>()[i] = static_cast<int32_t>(v);
      }
      return;
    }
  }
}

}  // namespace weft::ir::text
