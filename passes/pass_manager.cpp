// The pass registry and the pipeline runner. The registry is a map from name to pass, filled
// with the built-in passes the first time it is touched (static libraries drop self-registering
// objects, so registration is an explicit list here); other libraries add theirs with
// registerPass. A pipeline runs its passes in order, and around each one optionally verifies,
// prints and dumps the graph.
#include "passes/pass_manager.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <system_error>

#include "ir/error.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/builtin_passes.h"

namespace weft::passes {
namespace {

std::map<std::string, PassInfo> builtinPasses() {
  std::map<std::string, PassInfo> passes;
  for (PassInfo info : {
           PassInfo{"decompose-composites", "replace composite ops by their primitive decompositions",
                    decomposeComposites},
           PassInfo{"canonicalize", "remove algebraic identities (x+0, x*1, neg(neg x), no-op reshapes)",
                    canonicalize},
           PassInfo{"fold-conv-affine", "fold per-channel scales after a conv into its weights, shifts into one add",
                    foldConvAffine},
           PassInfo{"cse", "merge nodes that compute the same value", eliminateCommonSubexpressions},
           PassInfo{"dce", "remove nodes that no output depends on", eliminateDeadCode},
           PassInfo{"fuse-elementwise", "group elementwise, movement and reduction chains into fused nodes",
                    fuseElementwise},
           PassInfo{"fuse-rows", "merge the kernels of a softmax or norm over the last axis into one rows kernel",
                    fuseRows},
           PassInfo{"precompute-derivatives",
                    "compute a backward kernel's activation-derivative factor in the forward pass",
                    precomputeDerivatives},
           PassInfo{"fuse-epilogues", "fold elementwise epilogues of matmul and conv into fused library calls",
                    fuseEpilogues},
           PassInfo{"fuse-epilogues-leaving-gelu",
                    "fuse-epilogues, but an erf GELU after a matmul stays a kernel of its own (AVX2 CPUs)",
                    fuseEpiloguesLeavingGelu},
           PassInfo{"fold-matmul-transposes", "fold views (transposes keeping the last dim, slices, reshapes) into the matmuls that read them",
                    foldMatmulTransposes},
           PassInfo{"pool-gradient-masks", "mask and sum max_pool_grad's incoming gradient instead of its result",
                    maskPoolGradients},
           PassInfo{"triangular-matmuls",
                    "mark the matmuls of causal attention whose blocks on one side of the diagonal can be skipped",
                    markTriangularMatmuls},
           PassInfo{"masked-contractions",
                    "contract, and compute the result columns of, only what constant masks leave nonzero and needed",
                    maskContractions},
           PassInfo{"strip-stop-gradient", "replace stop_gradient by its operand (after differentiation)",
                    stripStopGradients},
           PassInfo{"pointwise-convs-to-matmuls", "rewrite 1x1 convolutions and their gradients as matmuls",
                    lowerPointwiseConvs},
           PassInfo{"affine-grads-from-weight-grads",
                    "take a norm affine's scale and shift gradients from the next matmul's weight gradient when "
                    "nothing else reads its data gradient",
                    affineGradsFromWeightGrads},
           PassInfo{"split-long-contractions", "run matmuls over 1024+ transposed rows as two halves, added",
                    splitLongContractions},
           PassInfo{"channels-last", "store the activations around 2-D convolutions as [N, H, W, C]",
                    convertToChannelsLast},
           PassInfo{"schedule-memory", "reorder nodes so that fewer bytes are alive at once",
                    [](ir::Graph& g) { return scheduleForMemory(g); }},
       })
    passes.emplace(info.name, info);
  return passes;
}

std::map<std::string, PassInfo>& registry() {
  static std::map<std::string, PassInfo> passes = builtinPasses();
  return passes;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string knownPassList() {
  std::string list;
  for (const auto& [name, info] : registry()) list += (list.empty() ? "" : ", ") + name;
  return list;
}

void writeDump(const std::string& dir, size_t index, const std::string& stage, const ir::Graph& g) {
  char prefix[32];
  std::snprintf(prefix, sizeof prefix, "%02zu-", index);
  std::filesystem::path path = std::filesystem::path(dir) / (prefix + stage + ".weft");
  std::ofstream out(path, std::ios::binary);
  out << ir::printGraph(g);
  out.close();
  if (!out) throw Error("cannot write IR dump '" + path.string() + "'");
}


bool wantsPrint(const PipelineOptions& options, const std::string& pass) {
  const auto& names = options.printAfter;
  return std::find(names.begin(), names.end(), "all") != names.end() ||
         std::find(names.begin(), names.end(), pass) != names.end();
}

void verifyAround(const ir::Graph& g, const std::string& when) {
  try {
    ir::verify(g);
  } catch (const Error& e) {
    throw Error(when + ": " + e.what());
  }
}

/// Runs one pass, naming it in any error it raises.
bool runOne(const PassInfo& pass, ir::Graph& g) {
  try {
    return pass.run(g);
  } catch (const Error& e) {
    throw Error("pass '" + pass.name + "': " + e.what());
  } catch (const std::exception& e) {
    throw Error("internal error in pass '" + pass.name + "': " + e.what());
  }
}

}  // namespace

void createDumpDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    throw Error("cannot create dump directory '" + dir + "'" + (ec ? ": " + ec.message() : ""));
}

void registerPass(PassInfo info) {
  std::string name = info.name;
  registry()[name] = std::move(info);
}

const PassInfo* findPass(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<const PassInfo*> allPasses() {
  std::vector<const PassInfo*> r;
  for (const auto& [name, info] : registry()) r.push_back(&info);
  return r;
}

std::string defaultPipeline() { return "decompose-composites,canonicalize,cse,dce"; }

PassManager::PassManager(const std::string& pipeline) {
  if (trim(pipeline).empty()) return;
  size_t start = 0;
  while (true) {
    size_t comma = pipeline.find(',', start);
    std::string name = trim(pipeline.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (name.empty()) throw Error("pipeline '" + pipeline + "' has an empty pass name");
    if (!findPass(name)) throw Error("unknown pass '" + name + "'; known passes: " + knownPassList());
    names_.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
}

bool PassManager::run(ir::Graph& g, const PipelineOptions& options) const {
  for (const auto& name : options.printAfter)
    if (name != "all" && !findPass(name))
      throw Error("print-after: unknown pass '" + name + "'; known passes: " + knownPassList());
  std::ostream& print = options.printStream ? *options.printStream : std::cerr;
  if (!options.dumpDir.empty()) {
    createDumpDir(options.dumpDir);
    writeDump(options.dumpDir, 0, "input", g);
  }
  if (options.verifyEach && !names_.empty()) verifyAround(g, "before pass '" + names_.front() + "'");

  bool anyChanged = false;
  for (size_t i = 0; i < names_.size(); ++i) {
    const std::string& name = names_[i];
    const PassInfo* pass = findPass(name);
    if (!pass) throw Error("unknown pass '" + name + "'; known passes: " + knownPassList());
    bool changed = runOne(*pass, g);
    anyChanged |= changed;
    if (options.verifyEach) verifyAround(g, "after pass '" + name + "'");
    if (wantsPrint(options, name)) {
      std::string text = ir::printGraph(g);
      print << "// ----- IR after " << name << (changed ? " (changed)" : " (unchanged)") << " -----\n" << text;
      if (!text.empty() && text.back() != '\n') print << '\n';
    }
    if (!options.dumpDir.empty()) writeDump(options.dumpDir, i + 1, name, g);
  }
  return anyChanged;
}

}  // namespace weft::passes
