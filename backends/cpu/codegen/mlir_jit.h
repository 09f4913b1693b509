#pragma once
/// Internal to weft_codegen: turns planned bodies into MLIR, lowers them to LLVM and compiles
/// them (JIT or object file). Implemented in mlir_jit.cpp, one of the two translation units
/// that include MLIR/LLVM headers; this header includes none.
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/codegen/kernel_compiler.h"
#include "backends/cpu/codegen/kernel_plan.h"

namespace weft::cpu {

/// One kernel to generate.
struct KernelRequest {
  const ir::Graph* body = nullptr;
  codegen::KernelPlan plan;
  std::string name;  ///< symbol name, unique within a batch
};

/// What compiling a batch gives back, one entry per request in order.
struct CompiledBatch {
  std::vector<std::string> mlirTexts;           ///< each kernel's MLIR module as generated
  std::vector<void (*)(void**)> entries;        ///< packed entry points (live as long as the MlirJit)
};

/// One weft_kernel entry of a bundle.
struct BundleEntry {
  int kernel = 0;  ///< index of its function in the bundle's requests
  int64_t numInputs = 0;
  int64_t parallelExtent = 1;
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

/// An MLIR context plus the JIT engines of every batch compiled with it.
class MlirJit {
 public:
  /// `dumpAsmDir`: where each batch's assembly is written (empty: nowhere).
  explicit MlirJit(std::string dumpAsmDir);
  ~MlirJit();
  /// Generates one module for `requests`, lowers it and JIT-compiles it for the host CPU.
  /// Throws weft::Error with MLIR's diagnostics when verification or lowering fails.
  CompiledBatch compile(const std::vector<KernelRequest>& requests);
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
