// KernelCompiler: the cache of generated kernels and the calling convention. Algorithm:
// each body is keyed by its printed text with every value name, location, the graph name
// and the output name dropped (so identical kernels from different places share one key);
// bodies missing from the cache are planned (kernel_plan.cpp), named, and compiled together
// as one batch by MlirJit (a large batch in parts, concurrently, one MlirJit each). invoke()
// packs the arguments as the packed entry point expects: args[i] points to argument i of
// `void(out, in..., begin, end)`. emitBundle dedups bodies by the same key and hands the
// distinct ones, with the weft_kernel table, to MlirJit.
// The disk cache: a batch part's key hashes kFormat, codeIdentity() and its body keys in
// order (not the kernel names, which depend on what the process compiled before); its
// entry HASH.wkc is: the magic "WEFTKC01", the 32-digit key, the kernel count, each
// kernel's symbol name (u64 length + bytes), the object (u64 length + bytes), and the
// XXH3-64 of everything before it (integers are u64 in host byte order). A hit links the
// object and looks its kernels up by the stored names.
#include "backends/cpu/codegen/kernel_compiler.h"

#include <dlfcn.h>
#include <link.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "backends/cpu/codegen/coalesce_dims.h"
#include "backends/cpu/codegen/kernel_plan.h"
#include "backends/cpu/codegen/mlir_jit.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "runtime/cpu/kernel_call.h"
#include "runtime/file_io.h"

namespace weft::cpu {
namespace {

/// The pointers a kernel of `body` takes after its output's: the body's inputs, then its
/// further outputs.
size_t pointersAfterOutput(const ir::Graph& body) { return body.inputs().size() + body.outputs().size() - 1; }

/// The cache key of a body: its full text (no elided constants) without names.
std::string cacheKey(const ir::Graph& body) {
  ir::Graph anonymous = body;
  anonymous.setName("kernel");
  for (ir::ValueId v = 0; v < anonymous.size(); ++v) {
    anonymous.node(v).name.clear();
    anonymous.node(v).loc.clear();
  }
  for (ir::Output& o : anonymous.outputs()) o.name = "out";
  ir::PrintOptions options;
  options.elideLargeConstants = false;
  return ir::printGraph(anonymous, options);
}

void writeFile(const std::string& dir, const std::string& file, const std::string& text) {
  std::filesystem::create_directories(dir);
  std::ofstream stream(std::filesystem::path(dir) / file);
  stream << text;
  if (!stream) throw Error("cannot write " + (std::filesystem::path(dir) / file).string());
}

namespace fs = std::filesystem;

/// Changes whenever the entry layout or the meaning of a key changes.
constexpr const char* kFormat = "weft kernel cache 1";
constexpr char kMagic[8] = {'W', 'E', 'F', 'T', 'K', 'C', '0', '1'};
constexpr const char* kEntrySuffix = ".wkc";

/// Prints `message` on stderr, once per process.
void warnOnce(const std::string& message) {
  static std::once_flag once;
  std::call_once(once, [&] { std::cerr << "weft: kernel cache: " << message << " (kernels are compiled, not cached)\n"; });
}

void appendU64(std::string& out, uint64_t value) { out.append(reinterpret_cast<const char*>(&value), sizeof value); }

void appendBytes(std::string& out, const std::string& bytes) {
  appendU64(out, bytes.size());
  out += bytes;
}

/// Reads an entry's fields in order; every read fails (returns false) past the end.
struct EntryReader {
  const std::string& data;
  size_t at = 0;
  bool u64(uint64_t& value) {
    if (data.size() - at < sizeof value) return false;
    std::memcpy(&value, data.data() + at, sizeof value);
    at += sizeof value;
    return true;
  }
  bool bytes(std::string& out) {
    uint64_t size = 0;
    if (!u64(size) || size > data.size() - at) return false;
    out.assign(data, at, size);
    at += size;
    return true;
  }
};

/// A cached batch: its kernels' symbol names and its object.
struct CachedBatch {
  std::vector<std::string> names;
  std::string object;
};

/// "PATH SIZE MTIME DEV:INODE" of the file at `path`, or "" when it cannot be read.
std::string fileIdentity(const std::string& path) {
  struct stat info {};
  if (path.empty() || ::stat(path.c_str(), &info) != 0) return "";
  char text[160];
  std::snprintf(text, sizeof text, " %lld %lld.%09ld %llu:%llu", static_cast<long long>(info.st_size),
                static_cast<long long>(info.st_mtim.tv_sec), info.st_mtim.tv_nsec,
                static_cast<unsigned long long>(info.st_dev), static_cast<unsigned long long>(info.st_ino));
  return path + text;
}

/// The loaded file that holds `address`: the program itself or a shared library.
std::string fileHolding(const void* address) {
  Dl_info info{};
  link_map* map = nullptr;
  if (dladdr1(address, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) && map && map->l_name &&
      map->l_name[0] != '\0')
    return map->l_name;
  return "/proc/self/exe";
}

/// What generated code depends on besides its bodies: the JIT's target, and the binaries
/// holding this code generator and the loaded libLLVM and libMLIR (by size, modification
/// time and inode), so that a rebuilt weft or an updated LLVM never reuses another build's
/// objects. Computed once per process.
const std::string& codeIdentity() {
  static const std::string identity = [] {
    std::vector<std::string> files = {fileIdentity(fileHolding(reinterpret_cast<const void*>(&fileHolding)))};
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
          std::string path = info->dlpi_name ? info->dlpi_name : "";
          std::string leaf = fs::path(path).filename().string();
          if (leaf.rfind("libLLVM", 0) == 0 || leaf.rfind("libMLIR", 0) == 0)
            static_cast<std::vector<std::string>*>(data)->push_back(fileIdentity(path));
          return 0;
        },
        &files);
    std::sort(files.begin() + 1, files.end());
    std::string text = jitTargetIdentity();
    for (const std::string& file : files) text += "file " + file + "\n";
    return text;
  }();
  return identity;
}

/// The disk cache key of a batch of bodies with these (in-process) keys, as 32 hex digits.
std::string batchKey(const std::vector<std::string>& bodyKeys) {
  std::string text = kFormat;
  text += '\n';
  text += codeIdentity();
  appendU64(text, bodyKeys.size());
  for (const std::string& key : bodyKeys) appendBytes(text, key);
  return hash128Hex(text);
}

std::string encodeEntry(const std::string& key, const std::vector<std::string>& names, const std::string& object) {
  std::string data(kMagic, sizeof kMagic);
  data += key;
  appendU64(data, names.size());
  for (const std::string& name : names) appendBytes(data, name);
  appendBytes(data, object);
  appendU64(data, hash64(data));
  return data;
}

/// The entry in `data` if it is complete, intact, of `key` and holds `count` kernels.
std::optional<CachedBatch> decodeEntry(const std::string& data, const std::string& key, size_t count) {
  const size_t header = sizeof kMagic + key.size();
  if (data.size() < header + 8 || data.compare(0, sizeof kMagic, kMagic, sizeof kMagic) != 0 ||
      data.compare(sizeof kMagic, key.size(), key) != 0)
    return std::nullopt;
  uint64_t checksum = 0;
  std::memcpy(&checksum, data.data() + data.size() - 8, 8);
  if (checksum != hash64(std::string_view(data).substr(0, data.size() - 8))) return std::nullopt;
  EntryReader reader{data, header};
  uint64_t names = 0;
  if (!reader.u64(names) || names != count) return std::nullopt;
  CachedBatch batch;
  batch.names.resize(count);
  for (std::string& name : batch.names)
    if (!reader.bytes(name) || name.empty()) return std::nullopt;
  if (!reader.bytes(batch.object) || reader.at + 8 != data.size()) return std::nullopt;
  return batch;
}

/// The whole file at `path`, or nullopt when it cannot be read (absent, a directory, ...).
std::optional<std::string> readWholeFile(const fs::path& path) {
  try {
    return runtime::readFileBytes(path.string());
  } catch (const Error&) {
    return std::nullopt;
  }
}

/// When the entries of `dir` (and stale temporaries) take more than `limit` bytes, deletes
/// the least recently used down to 3/4 of it. Other files are left alone; errors are ignored.
void trimCache(const fs::path& dir, uintmax_t limit) {
  struct File {
    fs::file_time_type time;
    uintmax_t size;
    fs::path path;
  };
  std::vector<File> files;
  uintmax_t total = 0;
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const fs::path& path = it->path();
    if (path.filename().string().find(kEntrySuffix) == std::string::npos) continue;  // not ours
    std::error_code ignored;
    uintmax_t size = it->file_size(ignored);
    if (ignored) continue;
    fs::file_time_type time = it->last_write_time(ignored);
    if (ignored) continue;
    files.push_back({time, size, path});
    total += size;
  }
  if (total <= limit) return;
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.time < b.time; });
  for (const File& file : files) {
    if (total <= limit / 4 * 3) break;
    std::error_code ignored;
    if (fs::remove(file.path, ignored)) total -= file.size;
  }
}

/// Stores an entry as `dir`/KEY.wkc through a temporary file and a rename; false on failure.
bool storeEntry(const fs::path& dir, const std::string& key, const std::string& data) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    warnOnce("cannot create " + dir.string() + ": " + error.message());
    return false;
  }
  try {
    runtime::writeFileAtomically((dir / (key + kEntrySuffix)).string(), data);
  } catch (const Error& e) {
    warnOnce(e.what());
    return false;
  }
  return true;
}

/// The cached batch of `key` in `dir`, or nullopt (absent, unreadable or invalid). A hit
/// refreshes the file's time, which the trimming orders by.
std::optional<CachedBatch> lookupEntry(const fs::path& dir, const std::string& key, size_t count) {
  const fs::path path = dir / (key + kEntrySuffix);
  std::optional<std::string> data = readWholeFile(path);
  if (!data) return std::nullopt;
  std::optional<CachedBatch> batch = decodeEntry(*data, key, count);
  if (batch) {
    std::error_code ignored;
    fs::last_write_time(path, fs::file_time_type::clock::now(), ignored);
  }
  return batch;
}

}  // namespace

std::string KernelCompiler::defaultCacheDir() {
  auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value ? value : "");
  };
  std::string explicitDir = env("WEFT_CACHE_DIR");
  if (explicitDir == "off") return "";
  if (!explicitDir.empty()) return explicitDir;
  std::string xdg = env("XDG_CACHE_HOME");
  if (!xdg.empty() && fs::path(xdg).is_absolute()) return (fs::path(xdg) / "weft" / "kernels").string();
  std::string home = env("HOME");
  if (!home.empty()) return (fs::path(home) / ".cache" / "weft" / "kernels").string();
  return "";
}

KernelCompiler::KernelCompiler() : KernelCompiler(Options{}) {}

KernelCompiler::KernelCompiler(Options options)
    : options_(std::move(options)), jit_(std::make_unique<MlirJit>(options_.dumpAsmDir)) {
  cacheDir_ = options_.cacheDir.empty() ? defaultCacheDir() : options_.cacheDir == "off" ? "" : options_.cacheDir;
}

KernelCompiler::~KernelCompiler() = default;

KernelRequest makeKernelRequest(const ir::Graph& body, std::string name) {
  KernelRequest request;
  // Support is checked on the body itself, so that errors name its own values and shapes.
  if (auto problem = codegen::unsupportedReason(body)) throw Error(*problem);
  if (auto merged = codegen::coalesceDims(body)) request.coalesced = std::make_shared<const ir::Graph>(std::move(*merged));
  request.body = request.coalesced ? request.coalesced.get() : &body;
  request.plan = codegen::planKernel(*request.body);
  request.name = std::move(name);
  return request;
}

std::optional<std::string> KernelCompiler::unsupported(const ir::Graph& body) {
  return codegen::unsupportedReason(body);
}

std::string KernelCompiler::nextName(const ir::Graph& body) {
  std::string name = "weft_";
  for (char c : body.name()) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name + "_" + std::to_string(nameCounter_++);
}

std::vector<const GeneratedKernel*> KernelCompiler::compile(const std::vector<const ir::Graph*>& bodies) {
  std::vector<std::string> keys;
  std::vector<KernelRequest> requests;
  std::vector<std::string> requestKeys;
  int hits = 0;
  for (const ir::Graph* body : bodies) {
    if (!body) throw Error("KernelCompiler::compile: null body");
    std::string key = cacheKey(*body);
    bool queued = std::find(requestKeys.begin(), requestKeys.end(), key) != requestKeys.end();
    if (cache_.count(key) || queued) {
      ++hits;
    } else {
      requests.push_back(makeKernelRequest(*body, nextName(*body)));
      requestKeys.push_back(key);
    }
    keys.push_back(std::move(key));
  }
  std::vector<CompiledBatch> parts = compileInParts(requests, requestKeys);
  CompiledBatch batch;
  for (CompiledBatch& part : parts) {
    batch.entries.insert(batch.entries.end(), part.entries.begin(), part.entries.end());
    batch.mlirTexts.insert(batch.mlirTexts.end(), part.mlirTexts.begin(), part.mlirTexts.end());
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    auto kernel = std::make_unique<GeneratedKernel>();
    kernel->name = requests[i].name;
    if (i < batch.mlirTexts.size()) kernel->mlir = batch.mlirTexts[i];
    kernel->parallelExtent = requests[i].plan.parallelExtent;
    kernel->work = requests[i].plan.work;
    kernel->partialSums = requests[i].plan.partialSums;
    kernel->numInputs = static_cast<int>(pointersAfterOutput(*requests[i].body));
    kernel->entry = batch.entries[i];
    if (!options_.dumpMlirDir.empty()) writeFile(options_.dumpMlirDir, kernel->name + ".mlir", kernel->mlir);
    cache_[requestKeys[i]] = std::move(kernel);
  }
  kernelsCompiled_ += static_cast<int>(requests.size());
  cacheHits_ += hits;
  std::vector<const GeneratedKernel*> result;
  for (const std::string& key : keys) result.push_back(cache_.at(key).get());
  return result;
}

std::vector<CompiledBatch> KernelCompiler::compileInParts(const std::vector<KernelRequest>& requests,
                                                          const std::vector<std::string>& keys) {
  size_t count = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(options_.threads, 1)),
                                                      requests.size() / kMinPartKernels));
  std::vector<CompiledBatch> batches(count);
  std::vector<PartOutcome> outcomes(count);
  std::vector<std::exception_ptr> errors(count);
  while (partJits_.size() + 1 < count) partJits_.push_back(nullptr);
  auto runPart = [&](size_t p) {
    try {
      size_t begin = requests.size() * p / count, end = requests.size() * (p + 1) / count;
      std::vector<KernelRequest> part(requests.begin() + static_cast<std::ptrdiff_t>(begin),
                                      requests.begin() + static_cast<std::ptrdiff_t>(end));
      std::vector<std::string> partKeys(keys.begin() + static_cast<std::ptrdiff_t>(begin),
                                        keys.begin() + static_cast<std::ptrdiff_t>(end));
      std::unique_ptr<MlirJit>& jit = p == 0 ? jit_ : partJits_[p - 1];
      if (!jit) jit = std::make_unique<MlirJit>(options_.dumpAsmDir);  // on the part's own thread
      batches[p] = compileOrLoad(*jit, part, partKeys, outcomes[p]);
    } catch (...) {
      errors[p] = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  for (size_t p = 1; p < count; ++p) workers.emplace_back(runPart, p);
  runPart(0);
  for (std::thread& worker : workers) worker.join();
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
  bool stored = false;
  for (const PartOutcome& outcome : outcomes) {
    diskHits_ += outcome.hit;
    diskMisses_ += outcome.miss;
    stored = stored || outcome.stored;
  }
  if (stored && !trimmed_) {
    trimmed_ = true;  // one look at the folder's size per compiler
    try {
      trimCache(cacheDir_, options_.cacheBytesLimit);
    } catch (const std::exception& error) {
      warnOnce(std::string("cannot trim ") + cacheDir_ + ": " + error.what());
    }
  }
  return batches;
}

CompiledBatch KernelCompiler::compileOrLoad(MlirJit& jit, const std::vector<KernelRequest>& requests,
                                            const std::vector<std::string>& keys, PartOutcome& outcome) const {
  if (requests.empty() || cacheDir_.empty()) return jit.compile(requests);
  const std::string key = batchKey(keys);
  const bool dumping = !options_.dumpMlirDir.empty() || !options_.dumpAsmDir.empty();
  if (!dumping) {
    std::optional<CachedBatch> cached;
    try {
      cached = lookupEntry(cacheDir_, key, requests.size());
    } catch (const std::exception&) {  // a cache that cannot be read is a miss
    }
    if (cached) {
      if (auto entries = jit.load(cached->object, cached->names)) {
        outcome.hit = true;
        CompiledBatch batch;
        batch.entries = std::move(*entries);
        return batch;
      }
    }
  }
  outcome.miss = true;
  CompiledBatch batch = jit.compile(requests);
  std::vector<std::string> names;
  for (const KernelRequest& request : requests) names.push_back(request.name);
  try {
    outcome.stored = storeEntry(cacheDir_, key, encodeEntry(key, names, batch.object));
  } catch (const std::exception& error) {
    warnOnce(std::string("cannot store an entry in ") + cacheDir_ + ": " + error.what());
  }
  return batch;
}

KernelObject KernelCompiler::emitObject(const std::vector<const ir::Graph*>& bodies) {
  KernelObject object;
  std::vector<KernelRequest> requests;
  for (const ir::Graph* body : bodies) {
    if (!body) throw Error("KernelCompiler::emitObject: null body");
    requests.push_back(makeKernelRequest(*body, nextName(*body)));
    object.symbols.push_back(requests.back().name);
    object.parallelExtents.push_back(requests.back().plan.parallelExtent);
    object.partialSums.push_back(requests.back().plan.partialSums);
  }
  object.elf = jit_->emitObject(requests);
  return object;
}

BundleObject KernelCompiler::emitBundle(const std::vector<const ir::Graph*>& bodies, const BundleSymbols& symbols,
                                        const ObjectTarget& target) {
  BundleRequest bundle;
  bundle.symbols = symbols;
  std::vector<std::string> distinctKeys;
  for (const ir::Graph* body : bodies) {
    if (!body) throw Error("KernelCompiler::emitBundle: null body");
    std::string key = cacheKey(*body);
    auto found = std::find(distinctKeys.begin(), distinctKeys.end(), key);
    int index = static_cast<int>(found - distinctKeys.begin());
    if (found == distinctKeys.end()) {
      bundle.kernels.push_back(makeKernelRequest(*body, nextName(*body)));
      distinctKeys.push_back(std::move(key));
    }
    const KernelRequest& request = bundle.kernels[static_cast<size_t>(index)];
    bundle.entries.push_back({index, static_cast<int64_t>(pointersAfterOutput(*body)), request.plan.parallelExtent,
                              request.plan.work, request.plan.partialSums});
  }
  BundleObject object;
  object.elf = jit_->emitBundle(bundle, target);
  object.distinctKernels = static_cast<int>(bundle.kernels.size());
  return object;
}

std::string KernelCompiler::hostCpuName() { return llvmHostCpu(); }

std::string KernelCompiler::hostTriple() { return llvmHostTriple(); }

void invoke(const GeneratedKernel& kernel, void* out, const std::vector<const void*>& inputs, int64_t begin,
            int64_t end) {
  invoke(entryOf(kernel), out, inputs, begin, end);
}

KernelEntry entryOf(const GeneratedKernel& kernel) {
  return KernelEntry{kernel.name, kernel.entry, kernel.numInputs, kernel.parallelExtent, kernel.work,
                     kernel.partialSums};
}

}  // namespace weft::cpu
