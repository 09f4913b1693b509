#pragma once
/// The one exception type of weft: a user-facing message that names what and where.
#include <stdexcept>
#include <string>
#include <string_view>

namespace weft {

/// An error caused by bad input (model code, IR text, files, options). Its message is
/// complete and meant for the user; tools print it and exit non-zero.
class Error : public std::runtime_error {
 public:
  /// Creates an error with a complete, user-facing message.
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// `text` as an error message quotes it: control characters and bytes outside ASCII as
/// escapes (\n, \xNN) and backslashes doubled, so that damaged input quoted in a message
/// (a file's header, a parser's report of it) stays one line of ASCII text.
inline std::string printableText(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += {'\\', 'x', kHex[u >> 4], kHex[u & 15]};
    }
  }
  return out;
}

}  // namespace weft
