// Writes an ahead-of-time bundle. The algorithm:
//  1. check the bundle's name (a C identifier), run the CPU pipeline (optimizeForCpu, which
//     verifies the graph) as the JIT does, and check the given state (each a parameter of
//     the right type);
//  2. print the optimized graph (constants in full) as the bundle's program, and check that it
//     parses back to the same text: the runtime rebuilds the graph from it;
//  3. check that the runtime alone can run every node of the parsed program: every fused
//     loop/reduce body must be generatable, and every other node must be taken by oneDNN or a
//     native step, since a bundle has no reference kernels. Building a cpu::Program with
//     placeholder kernels (and no host steps) performs exactly the runtime's own choice and
//     gives the memory plan's sizes;
//  4. emit the object (kernels + descriptor) for the target with KernelCompiler::emitBundle;
//  5. build NAME.safetensors (initial state overridden by the given one, with the bundle
//     metadata of runtime/bundle_format.h), NAME.h and NAME.md in memory;
//  6. only then create the directory and write each file atomically, so that any error
//     leaves nothing behind.
#include "backends/cpu/aot.h"

#include <chrono>
#include <filesystem>
#include <optional>

#include "backends/cpu/aot_text.h"
#include "backends/cpu/codegen/kernel_compiler.h"
#include "backends/cpu/executable.h"
#include "backends/cpu/shared_compiler.h"
#include "ir/error.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "runtime/bundle_format.h"
#include "runtime/cpu/blocked_layout.h"
#include "runtime/cpu/generated_steps.h"
#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/program.h"
#include "runtime/file_io.h"
#include "runtime/safetensors.h"
#include "runtime/weft.h"

#ifndef WEFT_VERSION
#define WEFT_VERSION "unknown"
#endif

namespace weft::cpu {

using ir::OpKind;
using ir::ValueId;

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool isCIdentifier(const std::string& s) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (s.empty() || !letter(s[0])) return false;
  for (char c : s)
    if (!letter(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

/// The parameter named `name` of `g`, if any.
std::optional<ValueId> paramNamed(const ir::Graph& g, const std::string& name) {
  auto v = g.find(name);
  if (v && g.node(*v).op == OpKind::Param) return v;
  return std::nullopt;
}

/// The parameters' values to store: initial values of `g2`, overridden by `given`. A name of
/// `given` must be a parameter of `original` (the graph as given); those the CPU pipeline
/// removed are dropped. Throws weft::Error for any other name or a type mismatch.
reference::TensorMap bundleState(const ir::Graph& original, const ir::Graph& g2, const reference::TensorMap& given,
                                 const std::string& what) {
  reference::TensorMap state = reference::initialState(g2);
  for (const auto& [name, tensor] : given) {
    auto p = paramNamed(original, name);
    if (!p) throw Error(what + ": state tensor '" + name + "' is not a parameter of graph @" + original.name());
    const ir::TensorType& want = original.type(*p);
    if (tensor.type != want || tensor.bytes.size() != want.byteSize())
      throw Error(what + ": state tensor '" + name + "' has type " + tensor.type.str() + ", the parameter is " +
                  want.str());
    if (paramNamed(g2, name)) state[name] = tensor;
  }
  return state;
}

/// The generated steps of `g` (see generatedSteps, which the runtime's loader repeats on the
/// parsed program), over the `blocked` data the loader chooses alike, in node order; throws
/// weft::Error for a body the kernel compiler cannot generate.
std::vector<GeneratedStep> generatedKernels(const ir::Graph& g, const std::vector<bool>& blocked,
                                            const std::string& what) {
  std::vector<GeneratedStep> steps = generatedSteps(g, planMemory(g), blocked);
  for (const GeneratedStep& step : steps)
    if (auto why = KernelCompiler::unsupported(*step.body))
      throw Error(what + ": fused " + ir::valueRef(g, step.value) + " cannot be generated: " + *why +
                  "; bundles have no reference fallback");
  return steps;
}

/// Builds the runtime's Program for `g` with placeholder kernels and no host steps: throws
/// (prefixed with `what`) when the runtime cannot run a node; returns its step counts and plan sizes.
struct ProgramFacts {
  StepCounts counts;
  int64_t arenaBytes = 0;
  int64_t stateBytes = 0;
};
ProgramFacts checkRuntimeRunsAll(const ir::Graph& g, const std::vector<GeneratedStep>& generated,
                                 std::vector<bool> blocked, const std::string& what) {
  std::vector<KernelEntry> placeholders(static_cast<size_t>(g.size()));
  for (const GeneratedStep& step : generated)
    placeholders[static_cast<size_t>(step.value)] = KernelEntry{
        "kernel_" + std::to_string(step.value), nullptr,
        static_cast<int>(step.operands.size() + step.extraOutputs.size() + step.sideSums.size()), 1};
  ProgramOptions options;
  options.threads = 1;
  options.kernelFor = [&](ValueId v) { return &placeholders[static_cast<size_t>(v)]; };
  options.blocked = std::move(blocked);
  try {
    Program program(g, std::move(options));
    return {program.counts(), program.plan().arenaBytes, program.plan().persistentBytes};
  } catch (const Error& e) {
    throw Error(what + ": " + e.what() + "; bundles have no reference fallback");
  }
}

std::vector<aot::BundleTensor> tensorsOf(const ir::Graph& g, const std::vector<ValueId>& values) {
  std::vector<aot::BundleTensor> out;
  for (ValueId v : values) out.push_back({g.node(v).name, g.type(v)});
  return out;
}

}  // namespace

AotResult writeBundle(const ir::Graph& g, const AotOptions& options) {
  checkCpuIsaEnvironment();
  const std::string name = options.name.empty() ? g.name() : options.name;
  if (!isCIdentifier(name))
    throw Error("bundle name '" + name + "' is not a C identifier (letters, digits and '_', not starting with a digit)" +
                (options.name.empty() ? std::string(": pass another name (--name)") : std::string()));
  const std::string what = "bundle " + name;
  if (options.outDir.empty()) throw Error(what + ": no output directory");

  AotResult result;
  result.name = name;
  result.cpu = options.cpu.empty() ? KernelCompiler::hostCpuName() : options.cpu;
  const std::string triple = options.triple.empty() ? KernelCompiler::hostTriple() : options.triple;

  auto start = std::chrono::steady_clock::now();
  const bool forThisCpu = result.cpu == KernelCompiler::hostCpuName();
  ir::Graph g2 = optimizeForCpu(g, forThisCpu);
  reference::TensorMap state = bundleState(g, g2, options.state, what);
  // Matmul implementations measured here hold for a bundle run on this host's kind of CPU.
  if (forThisCpu && tuneMatmulsFromEnvironment())
    tuneMatmuls(g2, defaultThreads(), sharedMatmulChoices(), /*holdConstants=*/true);
  result.stageSeconds.emplace_back("optimize", secondsSince(start));

  // The program text, and the graph the runtime will rebuild from it.
  start = std::chrono::steady_clock::now();
  ir::PrintOptions full;
  full.elideLargeConstants = false;
  result.program = ir::printGraph(g2, full);
  ir::Graph parsed = ir::parseGraph(result.program, what + " program");
  if (ir::printGraph(parsed, full) != result.program)
    throw Error(what + ": the compiled graph @" + g2.name() + " does not print back identically after parsing");
  // Data blocked as this host's oneDNN computes: for this CPU only (as fuse-attention).
  result.channelBlock = forThisCpu && channelBlocksFit() ? kChannelBlock : 0;
  const std::vector<bool> blocked = blockedValues(parsed, planMemory(parsed), nullptr, result.channelBlock != 0);
  const std::vector<GeneratedStep> generated = generatedKernels(parsed, blocked, what);
  std::vector<const ir::Graph*> bodies;
  for (const GeneratedStep& step : generated) bodies.push_back(step.body.get());
  ProgramFacts facts = checkRuntimeRunsAll(parsed, generated, blocked, what);
  result.steps = facts.counts.total();
  result.kernels = static_cast<int>(bodies.size());
  result.arenaBytes = facts.arenaBytes;
  result.stateBytes = facts.stateBytes;
  result.stageSeconds.emplace_back("plan", secondsSince(start));

  start = std::chrono::steady_clock::now();
  KernelCompiler compiler;
  BundleObject object;
  try {
    object = compiler.emitBundle(bodies, {name, result.program, result.channelBlock}, {options.triple, options.cpu});
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  result.distinctKernels = object.distinctKernels;
  result.stageSeconds.emplace_back("codegen", secondsSince(start));

  start = std::chrono::steady_clock::now();
  runtime::MetadataMap metadata{{runtime::kBundleAbiKey, std::to_string(WEFT_ABI_VERSION)},
                                {runtime::kBundleGraphKey, g2.name()},
                                {runtime::kBundleNameKey, name},
                                {runtime::kBundleVersionKey, WEFT_VERSION}};
  std::string weights = runtime::serializeSafetensors(state, metadata);

  aot::BundleFacts text;
  text.name = name;
  text.graphName = g2.name();
  text.cpu = result.cpu;
  text.triple = triple;
  text.version = WEFT_VERSION;
  text.arenaBytes = result.arenaBytes;
  text.stateBytes = result.stateBytes;
  text.steps = result.steps;
  text.kernels = result.kernels;
  text.hasUpdates = !g2.updates().empty();
  text.inputs = tensorsOf(g2, g2.inputs());
  for (const ir::Output& out : g2.outputs()) text.outputs.push_back({out.name, g2.type(out.value)});
  text.params = tensorsOf(g2, g2.params());

  namespace fs = std::filesystem;
  const fs::path dir(options.outDir);
  std::vector<std::pair<fs::path, std::string>> files = {
      {dir / (name + ".o"), object.elf},
      {dir / (name + ".h"), aot::headerText(text)},
      {dir / (name + ".safetensors"), weights},
      {dir / (name + ".md"),
       aot::readmeText(text, static_cast<int64_t>(object.elf.size()), static_cast<int64_t>(weights.size()))},
  };
  std::error_code ec;
  runtime::NewDirectories made;
  made.add(dir.string());
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error(what + ": cannot create directory " + dir.string() + (ec ? ": " + ec.message() : std::string()));
  std::vector<std::pair<std::string, std::string>> contents;
  for (const auto& [path, bytes] : files) contents.emplace_back(path.string(), bytes);
  runtime::writeFilesAtomically(contents);  // all four or none: never a new .o beside an old .h
  made.keep();
  for (const auto& [path, bytes] : contents) result.files.emplace_back(path, static_cast<int64_t>(bytes.size()));
  result.stageSeconds.emplace_back("write", secondsSince(start));
  return result;
}

}  // namespace weft::cpu
