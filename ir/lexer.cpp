#include "ir/lexer.h"

#include <cstdio>

#include "ir/error.h"

namespace weft::ir::text {
namespace {

bool isLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
/// Characters that may continue a word, a value name or a graph name.
bool isNameChar(char c) { return isLetter(c) || isDigit(c) || c == '.' || c == '-'; }

/// A character as it is shown in messages: printable ones quoted, others as hex.
std::string showChar(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  char buf[16];
  std::snprintf(buf, sizeof buf, "byte 0x%02x", u);
  return buf;
}

}  // namespace

void failAt(const std::string& file, SourcePos pos, const std::string& message) {
  throw Error(file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col) + ": " + message);
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::End: return "end of input";
    case Tok::ValueRef: return "'%" + t.text + "'";
    case Tok::GraphName: return "'@" + t.text + "'";
    case Tok::String: return "string \"" + t.text + "\"";
    default: return "'" + t.text + "'";
  }
}

void Lexer::bump() {
  if (src_[pos_] == '\n') {
    ++here_.line;
    here_.col = 1;
  } else {
    ++here_.col;
  }
  ++pos_;
}

void Lexer::skipSpaceAndComments() {
  while (!atEnd()) {
    char c = peek();
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      bump();
    } else if (c == '/' && peek(1) == '/') {
      while (!atEnd() && peek() != '\n') bump();
    } else {
      return;
    }
  }
}

std::string Lexer::takeWhile(bool (*pred)(char)) {
  size_t begin = pos_;
  while (!atEnd() && pred(peek())) bump();
  return std::string(src_.substr(begin, pos_ - begin));
}

Token Lexer::lexString(SourcePos start) {
  bump();  // the opening quote
  std::string value;
  while (true) {
    if (atEnd() || peek() == '\n') failAt(file_, start, "unterminated string");
    char c = peek();
    if (c == '"') {
      bump();
      return {Tok::String, value, start};
    }
    if (c != '\\') {
      value += c;
      bump();
      continue;
    }
    SourcePos escapePos = here_;
    bump();
    if (atEnd()) failAt(file_, start, "unterminated string");
    char e = peek();
    switch (e) {
      case '"': value += '"'; break;
      case '\\': value += '\\'; break;
      case 'n': value += '\n'; break;
      case 't': value += '\t'; break;
      default: failAt(file_, escapePos, "unknown escape sequence '\\" + std::string(1, e) + "' in string");
    }
    bump();
  }
}

Token Lexer::lexNumber(SourcePos start) {
  size_t begin = pos_;
  if (peek() == '-') bump();
  bool decimal = isDigit(peek());  // an exponent sign may follow 'e' only in decimal literals
  while (!atEnd()) {
    char c = peek();
    char prev = pos_ > begin ? src_[pos_ - 1] : '\0';
    bool exponentSign = decimal && (c == '+' || c == '-') && (prev == 'e' || prev == 'E');
    if (isLetter(c) || isDigit(c) || c == '.' || exponentSign) bump();
    else break;
  }
  return {Tok::Number, std::string(src_.substr(begin, pos_ - begin)), start};
}

Token Lexer::lexValueRef(SourcePos start) {
  bump();  // '%'
  std::string name = takeWhile(isNameChar);
  if (name.empty()) failAt(file_, start, "expected a value name after '%'");
  bool allDigits = true;
  for (char c : name) allDigits = allDigits && isDigit(c);
  if (!allDigits && !isLetter(name[0]))
    failAt(file_, start, "invalid value name '%" + name +
                             "': names start with a letter or '_', unnamed values are all digits");
  return {Tok::ValueRef, name, start};
}

Token Lexer::next() {
  skipSpaceAndComments();
  SourcePos start = here_;
  if (atEnd()) return {Tok::End, "", start};
  char c = peek();
  if (c == '"') return lexString(start);
  if (isDigit(c) || c == '-') return lexNumber(start);
  if (c == '%') return lexValueRef(start);
  if (isLetter(c)) return {Tok::Word, takeWhile(isNameChar), start};
  if (c == '@') {
    bump();
    std::string name = takeWhile(isNameChar);
    if (name.empty()) failAt(file_, start, "expected a graph name after '@'");
    return {Tok::GraphName, name, start};
  }
  static const struct {
    char ch;
    Tok kind;
  } punctuation[] = {{'(', Tok::LParen},   {')', Tok::RParen}, {'{', Tok::LBrace},  {'}', Tok::RBrace},
                     {'[', Tok::LBracket}, {']', Tok::RBracket}, {'<', Tok::Less}, {'>', Tok::Greater},
                     {',', Tok::Comma},    {':', Tok::Colon},  {'=', Tok::Equals}};
  for (const auto& p : punctuation)
    if (p.ch == c) {
      bump();
      return {p.kind, std::string(1, c), start};
    }
  failAt(file_, start, "unexpected character " + showChar(c));
}

}  // namespace weft::ir::text
