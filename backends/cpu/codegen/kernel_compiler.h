#pragma once
/// Kernels generated through MLIR for the bodies of fused nodes: each body (an ir::Graph of
/// elementwise, broadcast and movement ops, optionally ending in one reduction) becomes a
/// loop nest in MLIR, lowered to LLVM and JIT-compiled for the host CPU (vectorized by
/// LLVM's O3 pipeline for the host's vector width). Compiled batches are also kept in an
/// on-disk cache shared by every process of this build on this host (KernelCompiler::Options
/// ::cacheDir). This header includes no MLIR or LLVM.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"
#include "runtime/cpu/kernel_call.h"

namespace weft::cpu {

/// A kernel generated through MLIR for the body of one fused node.
struct GeneratedKernel {
  std::string name;                 ///< symbol name (from the disk cache, the code's own symbol may be another process's name)
  std::string mlir;                 ///< the MLIR module text of this kernel as generated (before lowering); empty when the kernel came from the disk cache
  int64_t parallelExtent = 1;       ///< parallel loop iterations; callers split [0, parallelExtent) across threads
  int64_t work = 0;                 ///< elements evaluated over the whole range (KernelEntry::work)
  bool partialSums = false;         ///< calls write partial sums of the whole output (KernelEntry::partialSums)
  int numInputs = 0;                ///< pointers after the output's: the body's inputs, then its further outputs (see invoke)
  void (*entry)(void**) = nullptr;  ///< packed entry point: args[i] points to argument i (see invoke)
};

/// How the runtime calls `kernel` (which must outlive the entry's use).
KernelEntry entryOf(const GeneratedKernel& kernel);

/// Object code of a batch of kernels, for ahead-of-time bundles. Each symbol is a C function
/// `void NAME(void* out, const void* in0, ..., void* out1, ..., int64_t begin, int64_t end)`
/// (the body's inputs, then its further outputs) with the
/// semantics of `invoke`; the object may call libm (tanh, erf and the f64 math functions).
struct KernelObject {
  std::string elf;                       ///< an ELF relocatable object (.o), position independent
  std::vector<std::string> symbols;      ///< one per body, in order
  std::vector<int64_t> parallelExtents;  ///< one per body, in order
  std::vector<bool> partialSums;         ///< one per body: whether calls write partial sums (KernelEntry::partialSums)
};

/// Where object code runs: empty fields mean this host (its triple, CPU name and features).
struct ObjectTarget {
  std::string triple;  ///< e.g. "x86_64-pc-linux-gnu"
  std::string cpu;     ///< an LLVM CPU name, e.g. "x86-64-v3", "skylake-avx512", "znver3" (its default features)
};

/// What a bundle's object holds besides its kernels.
struct BundleSymbols {
  std::string name;     ///< a C identifier; the object's only global symbol is NAME_bundle
  std::string program;  ///< the compiled graph's text, stored NUL-terminated as weft_bundle::program
  int64_t channelBlock = 0;  ///< weft_bundle::channel_block: 16 when data are stored channel-blocked
};

/// A bundle's object code.
struct BundleObject {
  std::string elf;          ///< ELF relocatable object, position independent (links into PIE programs and shared libraries)
  int distinctKernels = 0;  ///< functions generated (bodies with identical text share one)
};

/// Internal (mlir_jit.h): the MLIR context and the JIT code of every compiled batch.
class MlirJit;
struct KernelRequest;
struct CompiledBatch;

/// Generates, lowers and JIT-compiles kernels, keeping every kernel it made (and the JIT code
/// behind it) alive for its own lifetime. Not thread-safe; the kernels it returns may run
/// on any number of threads at once.
///
/// The disk cache: the object code of each compiled batch (or part of one, Options::threads) is
/// stored in the cache folder as HASH.wkc, where HASH (XXH3, 128 bits) covers a format version,
/// the LLVM version, the host CPU name and features, the identity (size, modification time,
/// inode) of the binary holding weft's code generator and of libLLVM and libMLIR (a rebuilt
/// weft starts a fresh set of entries), and the part's ordered body keys. A later part with the
/// same key, in any process, links the stored object instead of compiling. The file also
/// holds the kernels' symbol names and an XXH3 checksum; a missing, truncated or corrupt
/// entry, or any I/O error, only means compiling as without
/// the cache (and rewriting the entry); at most one warning per process goes to stderr.
/// Files are written to a temporary name and renamed, so concurrent processes are safe.
/// After its first store, a compiler trims the folder: when its entries take more than
/// Options::cacheBytesLimit, the least recently used (loaded or stored) are deleted.
class KernelCompiler {
 public:
  /// Where to write dumps (empty strings write nothing) and where the disk cache lives.
  struct Options {
    std::string dumpMlirDir;  ///< one NAME.mlir per kernel, as generated
    std::string dumpAsmDir;   ///< the host assembly of each compiled batch, named after its first kernel (NAME.s)
    /// The disk cache's folder (created when needed): "" = defaultCacheDir(), "off" = no
    /// disk cache. With a dump folder set, batches are always compiled (so that the dumps
    /// are written) and then stored.
    std::string cacheDir = {};
    /// Past this many bytes of entries, the least recently used are deleted down to 3/4 of it.
    uint64_t cacheBytesLimit = uint64_t{1} << 30;
    /// A batch of at least 2 * kMinPartKernels new kernels is split into up to this many
    /// parts, generated, optimized and compiled concurrently (each on its own thread, MLIR
    /// context and LLVM target machine); each part is its own disk cache entry.
    int threads = 2;
  };

  /// The fewest kernels a part of a split batch holds.
  static constexpr size_t kMinPartKernels = 8;

  /// A compiler with its own MLIR context and default options (no dumps, the default disk cache).
  KernelCompiler();
  /// A compiler with its own MLIR context.
  explicit KernelCompiler(Options options);
  ~KernelCompiler();
  KernelCompiler(const KernelCompiler&) = delete;
  KernelCompiler& operator=(const KernelCompiler&) = delete;

  /// Why `body` cannot be generated (an unsupported op or dtype, naming it), or nullopt.
  static std::optional<std::string> unsupported(const ir::Graph& body);

  /// Compiles every body not already in the cache (keyed by the body's printed text with
  /// value names dropped, so identical kernels compile once) into one MLIR module per part
  /// of the batch (Options::threads), lowers and JITs them; returns the kernels in order. Throws weft::Error for an unsupported body or
  /// a failed lowering (with MLIR's diagnostics).
  std::vector<const GeneratedKernel*> compile(const std::vector<const ir::Graph*>& bodies);

  /// Generates and lowers `bodies` (no cache, no JIT) to one relocatable object for the host.
  KernelObject emitObject(const std::vector<const ir::Graph*>& bodies);

  /// Generates `bodies` (one weft_kernel per body, in order; identical bodies, compared as
  /// the JIT cache compares them, share one function) with packed entry points, plus the
  /// weft_kernel table and the weft_bundle descriptor NAME_bundle (abi_version =
  /// WEFT_ABI_VERSION of runtime/weft.h), into one object for `target`. Every function and
  /// constant is local to the object, so bundles of different names link into one program;
  /// the object may call libm (tanh, erf, f64 math) and memset/memcpy. For the host target
  /// the code is the JIT's (same O3 pipeline, CPU name and features), so results are bitwise
  /// equal. Throws weft::Error for an unsupported body, a name that is not a C identifier, an
  /// unknown triple or CPU name, or a triple of another architecture.
  BundleObject emitBundle(const std::vector<const ir::Graph*>& bodies, const BundleSymbols& symbols,
                          const ObjectTarget& target = {});

  /// The LLVM CPU name of this host (e.g. "znver4"), which host objects and the JIT target.
  static std::string hostCpuName();
  /// The LLVM triple of this process (e.g. "x86_64-pc-linux-gnu").
  static std::string hostTriple();

  /// The disk cache folder from the environment: $WEFT_CACHE_DIR if set and not empty
  /// ("off" disables the cache: returns ""), else $XDG_CACHE_HOME/weft/kernels (when
  /// absolute), else $HOME/.cache/weft/kernels, else "" (no disk cache).
  static std::string defaultCacheDir();
  /// The disk cache folder this compiler uses, "" when it has none.
  const std::string& cacheDir() const { return cacheDir_; }

  /// Kernels this compiler made (generated, or loaded from the disk cache).
  int kernelsCompiled() const { return kernelsCompiled_; }
  /// Bodies answered from the in-process cache (including repeats within one compile call).
  int cacheHits() const { return cacheHits_; }
  /// Batch parts (of compile calls with bodies not in the in-process cache) loaded from the disk cache.
  int diskHits() const { return diskHits_; }
  /// Batch parts compiled while the disk cache was enabled (no valid entry, or dumps requested).
  int diskMisses() const { return diskMisses_; }

 private:
  std::string nextName(const ir::Graph& body);
  /// What compiling or loading one part did with the disk cache.
  struct PartOutcome {
    bool hit = false;     ///< loaded from the disk cache
    bool miss = false;    ///< compiled with the disk cache enabled
    bool stored = false;  ///< a new entry was written
  };
  /// `requests` (whose in-process keys are `keys`) from the disk cache, or compiled by `jit`
  /// (and stored). Touches no member but options_ and cacheDir_, so parts run concurrently.
  CompiledBatch compileOrLoad(MlirJit& jit, const std::vector<KernelRequest>& requests,
                              const std::vector<std::string>& keys, PartOutcome& outcome) const;
  /// compileOrLoad of `requests` in parts, concurrently; the parts' batches in order.
  std::vector<CompiledBatch> compileInParts(const std::vector<KernelRequest>& requests,
                                            const std::vector<std::string>& keys);

  Options options_;
  std::string cacheDir_;  ///< "" when the disk cache is off
  std::unique_ptr<MlirJit> jit_;
  std::vector<std::unique_ptr<MlirJit>> partJits_;  ///< the JITs of parts after the first, made when first needed
  std::unordered_map<std::string, std::unique_ptr<GeneratedKernel>> cache_;
  int kernelsCompiled_ = 0;
  int cacheHits_ = 0;
  int diskHits_ = 0;
  int diskMisses_ = 0;
  bool trimmed_ = false;  ///< whether the cache folder was trimmed (after the first store)
  int nameCounter_ = 0;
};

/// Runs `kernel`: reads `inputs` (the body's inputs in order, dense row-major), writes the
/// body's output into `out` (dense row-major, not overlapping any input) for the parallel
/// iterations [begin, end) of [0, kernel.parallelExtent); calls on disjoint ranges write
/// disjoint parts of `out` and may run concurrently, except for a partialSums kernel, whose
/// calls each write all of `out` (the sum over their range). A further output that is a side
/// sum (KernelPlan::sideSums) is likewise all written by each call, as the sum over its range. Throws weft::Error on a wrong input
/// count or range.
void invoke(const GeneratedKernel& kernel, void* out, const std::vector<const void*>& inputs, int64_t begin,
            int64_t end);

}  // namespace weft::cpu
