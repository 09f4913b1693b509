#pragma once
/// The token-level half of the IR text parser (ir/parser.cpp): one token of lookahead over
/// the lexer, and readers of the values statements hold (types, locations, attribute blocks,
/// dense tensor literals), each failing with `FILE:LINE:COL: message`.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ir/attrs.h"
#include "ir/lexer.h"
#include "ir/ops.h"
#include "ir/tensor_data.h"
#include "ir/types.h"

namespace weft::ir::text {

/// A `dense<...>` literal, kept as tokens until the node's declared type says how to read it.
struct DenseLiteral {
  SourcePos pos;
  bool elided = false;
  std::vector<Token> elements;
};

/// The attributes of one node; tensor attributes hold null until their literal is read.
struct AttrBlock {
  Attrs attrs;
  std::vector<std::pair<std::string, DenseLiteral>> dense;  ///< by attribute name
};

/// Reads tokens and values of IR text; the parser builds graphs on top of it.
class ValueReader {
 public:
  /// Starts reading `source` (which must outlive the reader); `file` names it in messages.
  ValueReader(std::string_view source, const std::string& file) : lex_(source, file) { advance(); }

 protected:
  // ---- tokens ------------------------------------------------------------------------
  /// Moves to the next token.
  void advance() { tok_ = lex_.next(); }
  /// Throws weft::Error `FILE:LINE:COL: message` at `pos`.
  [[noreturn]] void fail(SourcePos pos, const std::string& message) const { failAt(lex_.file(), pos, message); }
  /// Fails at the current token: "expected WHAT, got TOKEN".
  [[noreturn]] void unexpected(const std::string& what) const {
    fail(tok_.pos, "expected " + what + ", got " + describe(tok_));
  }
  /// Takes the current token, which must be of `kind` (`what` describes it otherwise).
  Token expect(Tok kind, const std::string& what) {
    if (tok_.kind != kind) unexpected(what);
    Token t = std::move(tok_);
    advance();
    return t;
  }
  /// Takes the current token when it is of `kind`.
  bool accept(Tok kind) {
    if (tok_.kind != kind) return false;
    advance();
    return true;
  }
  /// True when the current token is the word `w`.
  bool atWord(std::string_view w) const { return tok_.kind == Tok::Word && tok_.text == w; }

  // ---- values ------------------------------------------------------------------------
  /// A number token read as an int64; `what` names it in messages.
  int64_t intValue(const Token& t, const std::string& what) const;
  /// `f32[4,8]`: a dtype and a bracketed shape.
  TensorType parseType();
  /// `loc("...")` when present, else "".
  std::string parseOptionalLoc();
  /// `{name=value, ...}` checked against the attributes `info` declares.
  AttrBlock parseAttrs(const OpInfo& info);
  /// Fails at `pos` when a required attribute of `info` is missing from `attrs`.
  void checkMissing(const OpInfo& info, const Attrs& attrs, SourcePos pos) const;
  /// The tensor a dense literal spells, read with the node's declared type; `dense<elided>`
  /// gives zeros when allowElided_, else fails.
  TensorDataPtr materialize(const DenseLiteral& d, const TensorType& type) const;

  Lexer lex_;
  Token tok_;
  bool allowElided_ = true;  ///< whether `dense<elided>` reads as zeros (else an error)

 private:
  template <class F>
  F floatValue(const Token& t, std::string_view dtype) const;
  static std::string attrList(const OpInfo& info);
  AttrValue parseAttrValue(const OpInfo& info, const AttrSpec& spec, AttrBlock& block);
  [[noreturn]] void failMistyped(SourcePos pos, const OpInfo& info, const AttrSpec& spec, const std::string& got) const;
  DenseLiteral parseDense();
  void setElement(TensorData& data, int64_t i, const Token& t) const;
};

}  // namespace weft::ir::text
