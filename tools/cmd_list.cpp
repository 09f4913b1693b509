// `weft list`: prints the registered models with a one-line description each.
#include <cstdio>
#include <iostream>

#include "ir/error.h"
#include "models/registry.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace weft::cli {

int cmdList(int argc, char** argv) {
  Args args(argc, argv, 2, {}, {"help"});
  if (args.has("help")) {
    std::cout << "usage: weft list\n\nLists the registered models (NAME and NAME_tiny sizes).\n";
    return 0;
  }
  if (!args.positional().empty()) throw Error("weft list takes no arguments, got '" + args.positional()[0] + "'");
  for (const auto& m : models::allModels()) std::printf("%-14s %s\n", m.name.c_str(), m.description.c_str());
  return 0;
}

}  // namespace weft::cli
