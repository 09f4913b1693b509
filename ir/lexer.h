#pragma once
/// The tokenizer of weft's IR text format (used by ir/parser.cpp).
#include <string>
#include <string_view>

namespace weft::ir::text {

/// A 1-based line and column (in bytes) of the source text.
struct SourcePos {
  int line = 1;
  int col = 1;
};

/// The kinds of tokens of IR text.
enum class Tok {
  End,        ///< end of input
  Word,       ///< bare word: keywords, op, attribute, dtype and output names
  ValueRef,   ///< `%name` or `%N`; text holds what follows the `%`
  GraphName,  ///< `@name`; text holds what follows the `@`
  Number,     ///< integer or float literal, `-inf` and `-nan` included; text is its spelling
  String,     ///< `"..."`; text holds the unescaped contents
  LParen,
  RParen,
  LBrace,
  RBrace,
  LBracket,
  RBracket,
  Less,
  Greater,
  Comma,
  Colon,
  Equals,
};

/// One token with the position of its first character.
struct Token {
  Tok kind = Tok::End;
  std::string text;
  SourcePos pos;
};

/// How a token is named in error messages, e.g. `'foo'`, `'%x'` or `end of input`.
std::string describe(const Token& t);

/// Throws weft::Error with the message `FILE:LINE:COL: message`.
[[noreturn]] void failAt(const std::string& file, SourcePos pos, const std::string& message);

/// Splits IR text into tokens on demand, skipping whitespace and `//` comments. Malformed
/// tokens (an unterminated string, a stray character, a bad value name) throw weft::Error.
class Lexer {
 public:
  /// Tokenizes `source`; `file` names it in error messages. `source` must outlive the lexer.
  /// A leading UTF-8 byte order mark (which some editors write) is skipped.
  Lexer(std::string_view source, std::string file) : src_(source), file_(std::move(file)) {
    if (src_.substr(0, 3) == "\xEF\xBB\xBF") src_.remove_prefix(3);
  }
  /// The next token; returns Tok::End tokens forever once the input is consumed.
  Token next();
  /// The name of the source, as used in error messages.
  const std::string& file() const { return file_; }

 private:
  char peek(size_t ahead = 0) const { return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0'; }
  bool atEnd() const { return pos_ >= src_.size(); }
  void bump();
  void skipSpaceAndComments();
  std::string takeWhile(bool (*pred)(char));
  Token lexString(SourcePos start);
  Token lexNumber(SourcePos start);
  Token lexValueRef(SourcePos start);

  std::string_view src_;
  std::string file_;
  size_t pos_ = 0;
  SourcePos here_;
};

}  // namespace weft::ir::text
