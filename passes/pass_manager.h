#pragma once
/// Passes by name, pipelines as strings, verification and dumps between passes.
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace weft::passes {

/// A pass transforms a graph in place and returns whether it changed anything.
using PassFn = std::function<bool(ir::Graph&)>;

/// A registered pass.
struct PassInfo {
  std::string name;         ///< as written in pipelines, e.g. `cse`
  std::string description;  ///< one line for `--help`
  PassFn run;
};

/// Registers a pass; a second pass of the same name replaces the first.
void registerPass(PassInfo info);
/// The pass called `name`, or nullptr.
const PassInfo* findPass(const std::string& name);
/// Every registered pass, sorted by name.
std::vector<const PassInfo*> allPasses();
/// The default optimization pipeline, e.g. "decompose-composites,canonicalize,cse,dce".
std::string defaultPipeline();

/// What to do around each pass.
struct PipelineOptions {
  bool verifyEach = true;                ///< run the verifier after every pass
  std::vector<std::string> printAfter;   ///< pass names, or "all"
  std::ostream* printStream = nullptr;   ///< where --print-after goes
  std::string dumpDir;                   ///< when set, write NN-pass.weft after every pass
};

/// Creates directory `dir` (and its parents) for IR dumps; throws weft::Error naming it when
/// that fails or a file of that name is in the way.
void createDumpDir(const std::string& dir);

/// A parsed pipeline of registered passes.
class PassManager {
 public:
  /// Parses "a,b,c" (empty for no passes). Throws weft::Error for an unknown pass name.
  explicit PassManager(const std::string& pipeline);
  /// Runs the passes in order; returns whether any changed the graph. A verifier failure
  /// throws weft::Error naming the pass after which it happened.
  bool run(ir::Graph& g, const PipelineOptions& options = {}) const;
  /// The pass names in order.
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
};

}  // namespace weft::passes
