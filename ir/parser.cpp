// The IR text parser: recursive descent over the tokens of ir/lexer.h, one token of
// lookahead. The grammar (see ir/printer.cpp for the format as printed):
//
//   graph     := 'graph' GRAPHNAME '(' [input {',' input}] ')' '{' {statement} return '}'
//   input     := VALUEREF ':' type [loc]
//   statement := 'param' VALUEREF ':' type [attrs] [loc]
//              | VALUEREF '=' WORD '(' [VALUEREF {',' VALUEREF}] ')' [attrs] ':' type [loc]
//   return    := 'return' [WORD '=' VALUEREF {',' WORD '=' VALUEREF}]
//   type      := WORD '[' [NUMBER {',' NUMBER}] ']'
//   attrs     := '{' [WORD '=' value {',' WORD '=' value}] '}'
//   value     := NUMBER | STRING | WORD | '[' [NUMBER {',' NUMBER}] ']'
//              | 'dense' '<' ('elided' | '[' [element {',' element}] ']') '>'
//   loc       := 'loc' '(' STRING ')'
//
// Every node is checked as it is read (operands defined, attributes against the op table,
// declared type against the op's type rule), so errors point at the offending token; the
// finished graph is verified as a whole.
#include "ir/parser.h"

#include <charconv>
#include <limits>
#include <map>
#include <set>

#include "ir/error.h"
#include "ir/lexer.h"
#include "ir/verifier.h"

namespace weft::ir {
namespace {

using text::SourcePos;
using text::Tok;
using text::Token;

/// The largest element count a type in IR text may have.
constexpr int64_t kMaxElements = int64_t{1} << 48;
/// The largest constant that `dense<elided>` is materialized for (as zeros).
constexpr size_t kMaxElidedBytes = size_t{1} << 30;

/// A `dense<...>` literal, kept as tokens until the node's declared type says how to read it.
struct DenseLiteral {
  SourcePos pos;
  bool elided = false;
  std::vector<Token> elements;
};

/// The attributes of one node; tensor attributes hold null until their literal is read.
struct AttrBlock {
  Attrs attrs;
  std::vector<std::pair<std::string, DenseLiteral>> dense;
};

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

class Parser {
 public:
  Parser(std::string_view source, const std::string& file) : lex_(source, file) { advance(); }

  Graph parse() {
    if (tok_.kind == Tok::End) fail(tok_.pos, "empty input: expected 'graph @name(...) { ... }'");
    SourcePos graphPos = tok_.pos;
    if (!atWord("graph")) unexpected("'graph'");
    advance();
    graph_.setName(expect(Tok::GraphName, "a graph name '@name'").text);
    expect(Tok::LParen, "'(' and the graph inputs");
    if (tok_.kind != Tok::RParen) {
      do parseInput();
      while (accept(Tok::Comma));
    }
    expect(Tok::RParen, "',' or ')'");
    expect(Tok::LBrace, "'{'");
    while (!atWord("return")) {
      if (atWord("param")) parseParam();
      else if (atWord("update")) parseUpdate();
      else if (tok_.kind == Tok::ValueRef) parseOp();
      else unexpected("a statement ('param', '%name = op(...)' or 'return')");
    }
    parseReturn();
    if (tok_.kind != Tok::End) fail(tok_.pos, "unexpected " + describe(tok_) + " after the end of the graph");
    try {
      verify(graph_);
    } catch (const Error& e) {
      fail(graphPos, e.what());
    }
    return std::move(graph_);
  }

 private:
  // ---- tokens ------------------------------------------------------------------------
  void advance() { tok_ = lex_.next(); }
  [[noreturn]] void fail(SourcePos pos, const std::string& message) const {
    text::failAt(lex_.file(), pos, message);
  }
  [[noreturn]] void unexpected(const std::string& what) const {
    fail(tok_.pos, "expected " + what + ", got " + describe(tok_));
  }
  Token expect(Tok kind, const std::string& what) {
    if (tok_.kind != kind) unexpected(what);
    Token t = std::move(tok_);
    advance();
    return t;
  }
  bool accept(Tok kind) {
    if (tok_.kind != kind) return false;
    advance();
    return true;
  }
  bool atWord(std::string_view w) const { return tok_.kind == Tok::Word && tok_.text == w; }

  // ---- numbers -----------------------------------------------------------------------
  /// A number token read as an int64; `what` names it in messages.
  int64_t intValue(const Token& t, const std::string& what) const {
    std::errc ec;
    if (auto v = fromChars<int64_t>(t.text, ec)) return *v;
    if (ec == std::errc::result_out_of_range) fail(t.pos, "number " + t.text + " is out of range");
    if (fromChars<double>(t.text, ec)) fail(t.pos, "expected an integer " + what + ", got " + t.text);
    fail(t.pos, "bad number '" + t.text + "'");
  }

  /// A number token (or `inf`/`nan`) read as a float of type F.
  template <class F>
  F floatValue(const Token& t, std::string_view dtype) const {
    std::errc ec;
    if (t.kind == Tok::Number || isFloatWord(t)) {
      if (auto v = fromChars<F>(t.text, ec)) return *v;
      if (ec == std::errc::result_out_of_range)
        fail(t.pos, "number " + t.text + " is out of range for " + std::string(dtype));
    }
    if (t.kind == Tok::Number) fail(t.pos, "bad number '" + t.text + "'");
    fail(t.pos, "expected a number, got " + describe(t));
  }

  // ---- types, values and names -------------------------------------------------------
  TensorType parseType() {
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

  std::string parseOptionalLoc() {
    if (!atWord("loc")) return "";
    advance();
    expect(Tok::LParen, "'(' after 'loc'");
    std::string loc = expect(Tok::String, "a location string").text;
    expect(Tok::RParen, "')' after the location");
    return loc;
  }

  ValueId lookup(const Token& ref) const {
    auto it = values_.find(ref.text);
    if (it == values_.end()) fail(ref.pos, "undefined value %" + ref.text);
    return it->second;
  }

  static bool isUnnamed(const Token& ref) { return ref.text[0] >= '0' && ref.text[0] <= '9'; }

  void define(const Token& ref, Node node) {
    auto [it, fresh] = values_.emplace(ref.text, graph_.size());
    if (!fresh) {
      SourcePos first = definedAt_[ref.text];
      fail(ref.pos, "redefinition of %" + ref.text + " (first defined at line " + std::to_string(first.line) + ")");
    }
    definedAt_[ref.text] = ref.pos;
    node.name = isUnnamed(ref) ? "" : ref.text;
    graph_.addNode(std::move(node));
  }

  void requireNamed(const Token& ref, const char* what) const {
    if (isUnnamed(ref)) fail(ref.pos, std::string(what) + " must be named, got %" + ref.text);
  }

  // ---- attributes --------------------------------------------------------------------
  AttrBlock parseAttrs(const OpInfo& info) {
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

  static std::string attrList(const OpInfo& info) {
    if (info.attrs.empty()) return " (it takes none)";
    std::string r = " (it takes ";
    for (size_t i = 0; i < info.attrs.size(); ++i) r += (i ? ", " : "") + info.attrs[i].name;
    return r + ")";
  }

  void checkMissing(const OpInfo& info, const Attrs& attrs, SourcePos pos) const {
    for (const auto& spec : info.attrs)
      if (!spec.optional && !attrs.count(spec.name))
        fail(pos, "op '" + std::string(info.name) + "' is missing attribute '" + spec.name + "'");
  }

  /// One attribute value of the kind `spec` declares; a tensor is recorded in `block.dense`.
  AttrValue parseAttrValue(const OpInfo& info, const AttrSpec& spec, AttrBlock& block) {
    Token start = tok_;
    auto mistyped = [&](const std::string& got) { failMistyped(start.pos, info, spec, got); };
    switch (tok_.kind) {
      case Tok::Number: {
        advance();
        std::errc ec;
        bool isInt = fromChars<int64_t>(start.text, ec).has_value() || ec == std::errc::result_out_of_range;
        if (isInt && spec.kind == AttrKind::Int) return intValue(start, "");
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

  [[noreturn]] void failMistyped(SourcePos pos, const OpInfo& info, const AttrSpec& spec,
                                 const std::string& got) const {
    std::string want(attrKindName(spec.kind));
    if (spec.kind == AttrKind::Tensor) want += " (dense<[...]>)";
    fail(pos, "attribute '" + spec.name + "' of op '" + std::string(info.name) + "' must be " + want + ", got " + got);
  }

  DenseLiteral parseDense() {
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

  /// The tensor a dense literal spells, read with the node's declared type.
  TensorDataPtr materialize(const DenseLiteral& d, const TensorType& type) const {
    if (d.elided) {
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

  void setElement(TensorData& data, int64_t i, const Token& t) const {
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

  // ---- statements --------------------------------------------------------------------
  void parseInput() {
    Token ref = expect(Tok::ValueRef, "a graph input '%name: TYPE'");
    requireNamed(ref, "graph inputs");
    expect(Tok::Colon, "':' and the input's type");
    Node n;
    n.op = OpKind::Input;
    n.type = parseType();
    n.loc = parseOptionalLoc();
    define(ref, std::move(n));
  }

  void parseParam() {
    advance();  // 'param'
    Token ref = expect(Tok::ValueRef, "a parameter name '%name'");
    requireNamed(ref, "parameters");
    expect(Tok::Colon, "':' and the parameter's type");
    Node n;
    n.op = OpKind::Param;
    n.type = parseType();
    const OpInfo& info = opInfo(OpKind::Param);
    AttrBlock block = tok_.kind == Tok::LBrace ? parseAttrs(info) : AttrBlock{};
    checkMissing(info, block.attrs, ref.pos);
    for (const auto& [name, literal] : block.dense) block.attrs[name] = materialize(literal, n.type);
    n.attrs = std::move(block.attrs);
    n.loc = parseOptionalLoc();
    define(ref, std::move(n));
  }

  void parseOp() {
    Token ref = expect(Tok::ValueRef, "a value");
    expect(Tok::Equals, "'=' after " + describe(ref));
    Token opTok = expect(Tok::Word, "an op name");
    auto kind = opByName(opTok.text);
    if (!kind) fail(opTok.pos, "unknown op '" + opTok.text + "'");
    if (*kind == OpKind::Input) fail(opTok.pos, "graph inputs are declared in the graph header");
    if (*kind == OpKind::Param) fail(opTok.pos, "parameters are declared as 'param %name: TYPE {attrs}'");
    const OpInfo& info = opInfo(*kind);

    Node n;
    n.op = *kind;
    expect(Tok::LParen, "'(' after the op name");
    if (tok_.kind != Tok::RParen) {
      do n.operands.push_back(lookup(expect(Tok::ValueRef, "an operand '%value'")));
      while (accept(Tok::Comma));
    }
    expect(Tok::RParen, "',' or ')' after the operands");
    checkOperandCount(info, n.operands.size(), opTok.pos);

    bool hasAttrs = tok_.kind == Tok::LBrace;
    AttrBlock block = hasAttrs ? parseAttrs(info) : AttrBlock{};
    checkMissing(info, block.attrs, opTok.pos);
    expect(Tok::Colon, hasAttrs ? "':' and the result type" : "attributes '{...}' or ':' and the result type");
    SourcePos typePos = tok_.pos;
    n.type = parseType();
    n.loc = parseOptionalLoc();
    for (const auto& [name, literal] : block.dense) block.attrs[name] = materialize(literal, n.type);
    n.attrs = std::move(block.attrs);

    std::vector<TensorType> operandTypes;
    for (ValueId v : n.operands) operandTypes.push_back(graph_.type(v));
    TensorType inferred;
    try {
      inferred = inferType(n.op, operandTypes, n.attrs);
    } catch (const Error& e) {
      fail(opTok.pos, e.what());
    }
    if (inferred != n.type)
      fail(typePos, "declared type " + n.type.str() + " but " + opTok.text + " gives " + inferred.str());
    define(ref, std::move(n));
  }

  void checkOperandCount(const OpInfo& info, size_t got, SourcePos pos) const {
    size_t want = info.operandNames.size();
    if (info.variadic ? got >= 1 : got == want) return;
    std::string expected;
    if (info.variadic) {
      expected = "at least 1 operand";
    } else {
      expected = std::to_string(want) + (want == 1 ? " operand" : " operands");
      if (want > 0) {
        expected += " (";
        for (size_t i = 0; i < want; ++i) expected += (i ? ", " : "") + info.operandNames[i];
        expected += ")";
      }
    }
    fail(pos, "op '" + std::string(info.name) + "' expects " + expected + ", got " + std::to_string(got));
  }

  /// `update %param = %value`: a state write-back; checked by the verifier.
  void parseUpdate() {
    advance();  // 'update'
    ValueId param = lookup(expect(Tok::ValueRef, "the parameter '%name' to update"));
    expect(Tok::Equals, "'=' after the updated parameter");
    graph_.addUpdate(param, lookup(expect(Tok::ValueRef, "the new value '%name'")));
  }

  void parseReturn() {
    advance();  // 'return'
    std::set<std::string> names;
    if (tok_.kind != Tok::RBrace) {
      do {
        Token name = expect(Tok::Word, names.empty() ? "an output 'name=%value' or '}'" : "an output 'name=%value'");
        if (!names.insert(name.text).second) fail(name.pos, "output '" + name.text + "' is defined twice");
        expect(Tok::Equals, "'=' after the output name");
        graph_.addOutput(name.text, lookup(expect(Tok::ValueRef, "a value '%name'")));
      } while (accept(Tok::Comma));
    }
    expect(Tok::RBrace, "',' or '}' after the outputs");
  }

  text::Lexer lex_;
  Token tok_;
  Graph graph_;
  std::map<std::string, ValueId> values_;  ///< by the text after '%'
  std::map<std::string, SourcePos> definedAt_;
};

}  // namespace

Graph parseGraph(std::string_view text, const std::string& file) { return Parser(text, file).parse(); }

}  // namespace weft::ir
