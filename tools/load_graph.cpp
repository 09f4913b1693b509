// Turns a command-line graph spec (model name, .weft file or stdin) into a graph.
#include "ir/parser.h"
#include "models/registry.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace weft::cli {

bool isGraphFile(const std::string& spec) {
  return spec == "-" || spec.find('/') != std::string::npos ||
         (spec.size() > 5 && spec.substr(spec.size() - 5) == ".weft");
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
