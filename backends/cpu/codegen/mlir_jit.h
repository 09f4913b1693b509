#pragma once
/// Internal to weft_codegen: turns planned bodies into MLIR, lowers them to LLVM and compiles
/// them (JIT or object file). Implemented in mlir_jit.cpp, one of the two translation units
/// that include MLIR/LLVM headers; this header includes none.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/cpu/codegen/kernel_compiler.h"
#include "backends/cpu/codegen/kernel_plan.h"

namespace weft::cpu {

/// One kernel to generate.
struct KernelRequest {
  const ir::Graph* body = nullptr;  ///< what the kernel computes: the fused body or `coalesced`
  std::shared_ptr<const ir::Graph> coalesced;  ///< the body with dimensions merged (coalesceDims), if any
  codegen::KernelPlan plan;  ///< the plan of *body
  std::string name;  ///< symbol name, unique within a batch
};

/// The request for fused body `body` (which must outlive it): its dimensions coalesced where
/// they merge, then planned.
KernelRequest makeKernelRequest(const ir::Graph& body, std::string name);

/// A packed entry point: args[i] points to argument i of `void(out, in..., begin, end)`.
using PackedEntry = void (*)(void**);

/// What compiling a batch gives back, one entry per request in order.
struct CompiledBatch {
  std::vector<std::string> mlirTexts;  ///< each kernel's MLIR module as generated
  std::vector<PackedEntry> entries;    ///< packed entry points (live as long as the MlirJit)
  std::string object;                  ///< the ELF object the JIT loaded, for MlirJit::load in a later process
};

/// One weft_kernel entry of a bundle.
struct BundleEntry {
  int kernel = 0;  ///< index of its function in the bundle's requests
  int64_t numInputs = 0;
  int64_t parallelExtent = 1;
  int64_t work = 0;          ///< elements evaluated over the whole range
  bool partialSums = false;  ///< calls write partial sums of the whole output
};

/// A bundle to emit: distinct kernels, one entry per body, and the descriptor's contents.
struct BundleRequest {
  std::vector<KernelRequest> kernels;  ///< each generated once, with a packed wrapper
  std::vector<BundleEntry> entries;    ///< the weft_kernel table, in order
  BundleSymbols symbols;
};

/// The host's LLVM triple and CPU name (as the JIT targets them).
std::string llvmHostTriple();
std::string llvmHostCpu();

/// The target of the JIT's object code as text: the LLVM version (of the headers), the host
/// triple, CPU name and sorted feature list. Computed once per process.
const std::string& jitTargetIdentity();

/// 128 bits of XXH3 of `data`, as 32 lowercase hex digits.
std::string hash128Hex(std::string_view data);
/// 64 bits of XXH3 of `data`.
uint64_t hash64(std::string_view data);

/// An MLIR context plus the JIT engines of every batch compiled with it.
class MlirJit {
 public:
  /// `dumpAsmDir`: where each batch's assembly is written (empty: nowhere).
  explicit MlirJit(std::string dumpAsmDir);
  ~MlirJit();
  /// Generates one module for `requests`, lowers it, compiles it to an object for the host
  /// CPU (returned in CompiledBatch::object) and loads that object into a new JIT. Throws
  /// weft::Error with MLIR's diagnostics when verification or lowering fails.
  CompiledBatch compile(const std::vector<KernelRequest>& requests);
  /// Loads `object` (a CompiledBatch::object of this host and build) into a new JIT and
  /// returns the packed entry point NAME_packed of each of `names`, in order; nullopt (and
  /// nothing kept) when the object does not parse, does not load or lacks a symbol.
  std::optional<std::vector<PackedEntry>> load(const std::string& object, const std::vector<std::string>& names);
  /// Generates and lowers `requests` into one ELF relocatable object for the host CPU.
  std::string emitObject(const std::vector<KernelRequest>& requests);
  /// Generates and lowers `bundle`'s kernels with packed wrappers, adds the weft_kernel table
  /// and the weft_bundle descriptor, and emits one ELF relocatable object for `target` in
  /// which only SYMBOLS.name + "_bundle" is global. Throws weft::Error for a bad target.
  std::string emitBundle(const BundleRequest& bundle, const ObjectTarget& target);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft::cpu
