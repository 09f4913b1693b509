// `weft dump` and `weft opt`: print graphs, before and after pipelines of passes.
#include <iostream>

#include "ir/dot.h"
#include "ir/error.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "passes/pass_manager.h"
#include "runtime/file_io.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace weft::cli {
namespace {

const char* kDumpHelp = R"(usage: weft dump MODEL|FILE.weft [options]

Prints a graph's IR. With --after, runs a pipeline and prints the IR after the named pass
(or after every pass, and the input first, with --after=all).

options:
  --after=PASS|all       print after this pass of the pipeline (or after each)
  --passes=P1,P2,...     the pipeline (default for --after: the default pipeline)
  --format=text|dot      output format of the final graph (default text)
  --dump-dir=DIR         also write every stage to DIR/NN-PASS.weft
  --print-constants      print large constants in full instead of eliding them
  --print-locations      print the model source line of each node
)";

const char* kOptHelp = R"(usage: weft opt FILE.weft|- --passes=P1,P2,... [options]

Parses IR text (a file, or stdin for -), runs the passes in order, verifying after each,
and prints the result. With no --passes (or --passes=) the text is printed back unchanged.

options:
  --passes=P1,P2,...     the pipeline; `weft opt --list-passes` shows the passes
  --print-after=P|all    print the IR after the named passes (comma-separated) or all
  --dump-dir=DIR         write every stage to DIR/NN-PASS.weft
  -o FILE / --out=FILE   write the result to FILE instead of stdout
  --print-constants      print large constants in full
  --print-locations      print the source location of each node
  --list-passes          list the registered passes
)";

ir::PrintOptions printOptions(const Args& args) {
  ir::PrintOptions p;
  p.elideLargeConstants = !args.has("print-constants");
  p.printLocations = args.has("print-locations");
  return p;
}

void listPasses() {
  for (const auto* p : passes::allPasses()) std::cout << p->name << "  " << p->description << "\n";
}

}  // namespace

int cmdDump(int argc, char** argv) {
  Args args(argc, argv, 2, {"after", "passes", "format", "dump-dir"},
            {"help", "print-constants", "print-locations"});
  if (args.has("help")) {
    std::cout << kDumpHelp;
    return 0;
  }
  if (args.positional().size() != 1) throw Error("weft dump needs one MODEL or FILE.weft (see --help)");
  std::string format = args.get("format", "text");
  if (format != "text" && format != "dot") throw Error("--format must be text or dot, got '" + format + "'");
  ir::Graph g = loadGraph(args.positional()[0], /*evaluation=*/false, /*allowElidedConstants=*/true);
  ir::PrintOptions print = printOptions(args);

  auto after = args.get("after");
  if (after || args.has("passes") || args.has("dump-dir")) {
    passes::PassManager pm(args.get("passes", after ? passes::defaultPipeline() : ""));
    passes::PipelineOptions opts;
    opts.dumpDir = args.get("dump-dir", "");
    opts.printStream = &std::cout;
    if (!opts.dumpDir.empty()) passes::createDumpDir(opts.dumpDir);  // before anything is printed
    if (after) {
      if (*after == "all") {
        std::cout << "// ----- IR as built -----\n" << ir::printGraph(g, print);
        opts.printAfter = {"all"};
      } else {
        bool found = false;
        for (const auto& n : pm.names()) found |= n == *after;
        if (!found) throw Error("--after=" + *after + ": pass '" + *after + "' is not in the pipeline");
        opts.printAfter = {*after};
      }
    }
    pm.run(g, opts);
    if (after) return 0;
  }
  std::cout << (format == "dot" ? ir::toDot(g) : ir::printGraph(g, print));
  return 0;
}

int cmdOpt(int argc, char** argv) {
  // `-o FILE` is accepted as a spelling of --out=FILE.
  std::vector<char*> rewritten(argv, argv + argc);
  for (auto& a : rewritten)
    if (std::string(a) == "-o") a = const_cast<char*>("--out");
  Args args(static_cast<int>(rewritten.size()), rewritten.data(), 2,
            {"passes", "print-after", "dump-dir", "out"},
            {"help", "print-constants", "print-locations", "list-passes"});
  if (args.has("help")) {
    std::cout << kOptHelp;
    return 0;
  }
  if (args.has("list-passes")) {
    listPasses();
    return 0;
  }
  if (args.positional().size() != 1) throw Error("weft opt needs one FILE.weft or - (see --help)");
  const std::string& path = args.positional()[0];
  ir::Graph g = ir::parseGraph(readFileOrStdin(path), path == "-" ? "<stdin>" : path);
  passes::PassManager pm(args.get("passes", ""));
  passes::PipelineOptions opts;
  opts.dumpDir = args.get("dump-dir", "");
  opts.printStream = &std::cout;
  opts.printAfter = splitCommas(args.get("print-after", ""));
  pm.run(g, opts);
  std::string text = ir::printGraph(g, printOptions(args));
  if (auto out = args.get("out")) runtime::writeFileAtomically(*out, text);
  else std::cout << text;
  return 0;
}

}  // namespace weft::cli
