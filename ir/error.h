#pragma once
/// The one exception type of weft: a user-facing message that names what and where.
#include <stdexcept>
#include <string>

namespace weft {

/// An error caused by bad input (model code, IR text, files, options). Its message is
/// complete and meant for the user; tools print it and exit non-zero.
class Error : public std::runtime_error {
 public:
  /// Creates an error with a complete, user-facing message.
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace weft
