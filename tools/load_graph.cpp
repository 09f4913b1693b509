// Turns a command-line graph spec (model name, .weft file or stdin) into a graph.
#include <filesystem>

#include "ir/parser.h"
#include "models/registry.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace weft::cli {

bool isGraphFile(const std::string& spec) {
  if (spec == "-" || spec.find('/') != std::string::npos || (spec.size() > 5 && spec.substr(spec.size() - 5) == ".weft"))
    return true;
  std::error_code ec;  // an existing file by any other name is text too (a model name is never a file's)
  return !models::findModel(spec) && std::filesystem::is_regular_file(spec, ec);
}

ir::Graph loadGraph(const std::string& spec, bool evaluation, bool allowElidedConstants) {
  if (!isGraphFile(spec)) {
    models::BuildOptions options;
    options.training = !evaluation;
    return models::buildModel(spec, options);
  }
  ir::ParseOptions options;
  options.allowElidedConstants = allowElidedConstants;
  return ir::parseGraph(readFileOrStdin(spec), spec == "-" ? "<stdin>" : spec, options);
}

}  // namespace weft::cli
