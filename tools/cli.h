#pragma once
/// Command-line parsing shared by the `weft` subcommands.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace weft::cli {

/// The parsed arguments of one subcommand: positionals and `--key=value` / `--key value`
/// options. Options must be declared, so a misspelt flag is an error, not ignored.
class Args {
 public:
  /// Parses argv[first..]; `valued` are options that take a value, `flags` those that do not.
  /// Throws weft::Error naming an unknown option or a missing value.
  Args(int argc, char** argv, int first, const std::set<std::string>& valued,
       const std::set<std::string>& flags);
  /// Positional arguments in order.
  const std::vector<std::string>& positional() const { return positional_; }
  /// The value of option `name`, if given.
  std::optional<std::string> get(const std::string& name) const;
  /// The value of option `name`, or `dflt`.
  std::string get(const std::string& name, const std::string& dflt) const;
  /// True if flag or option `name` was given.
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  /// Integer option `name`, or `dflt`; throws weft::Error when not an integer.
  long long getInt(const std::string& name, long long dflt) const;
  /// Number option `name`, or `dflt`; throws weft::Error when not a finite number.
  double getDouble(const std::string& name, double dflt) const;

 private:
  std::vector<std::string> positional_;
  std::map<std::string, std::string> values_;
};

/// Applies option --threads N of `args`, when given: the compiled CPU executables this
/// process makes use N worker threads (it sets WEFT_THREADS, which they read). Throws
/// weft::Error unless N >= 1. Returns the threads they will use (WEFT_THREADS, else 2).
int applyThreadsOption(const Args& args);
/// "1 thread" or "N threads".
std::string threadCount(int threads);

/// Splits "a,b,c" on commas, dropping empty pieces.
std::vector<std::string> splitCommas(const std::string& s);
/// Reads a whole file, or stdin for "-"; throws weft::Error naming the path on failure.
std::string readFileOrStdin(const std::string& path);

}  // namespace weft::cli
