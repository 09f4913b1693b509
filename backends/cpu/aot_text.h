#pragma once
/// The text files of an ahead-of-time bundle (backends/cpu/aot.h): NAME.h, the C header a
/// program includes, and NAME.md, how to build against the bundle. Internal to weft_cpu.
#include <cstdint>
#include <string>
#include <vector>

#include "ir/types.h"

namespace weft::cpu::aot {

/// One input, output or parameter of a bundle as its header lists it.
struct BundleTensor {
  std::string name;     ///< the name the runtime knows it by (weft_model_set_input, ...)
  ir::TensorType type;  ///< its dtype and shape
};

/// What the header and the readme say about a bundle.
struct BundleFacts {
  std::string name;       ///< the bundle's name (a C identifier): NAME_bundle, NAME.o
  std::string graphName;  ///< the compiled graph's name
  std::string cpu;        ///< the LLVM CPU name the code was generated for
  std::string triple;     ///< the target triple
  std::string version;    ///< the weft version that wrote it
  int64_t arenaBytes = 0;
  int64_t stateBytes = 0;
  int steps = 0;           ///< steps that run code
  int kernels = 0;         ///< generated kernel entries
  bool hasUpdates = false; ///< a training step (weft_model_step applies its updates)
  std::vector<BundleTensor> inputs, outputs, params;
};

/// The macro identifiers of `names`, in order: each upper-cased with every character that
/// is not a letter or digit replaced by '_', and "_2", "_3", ... appended to later names
/// whose identifier an earlier one took.
std::vector<std::string> macroIds(const std::vector<std::string>& names);

/// NAME.h: a C99/C++ header (warning-free under -Wall -Wextra -pedantic) with the ABI check,
/// `extern const weft_bundle NAME_bundle;`, the sizes, and NAME_{INPUT,OUTPUT,PARAM}_ID_*
/// macros (_NAME, _DTYPE, _RANK, _SHAPE, _ELEMENTS, _BYTES) for every tensor.
std::string headerText(const BundleFacts& facts);

/// NAME.md: what the files are, the target, the inputs and outputs, the sizes, how to build
/// (cc with pkg-config, CMake with find_package(weft)) and a short C usage sketch.
std::string readmeText(const BundleFacts& facts, int64_t objectBytes, int64_t weightsBytes);

}  // namespace weft::cpu::aot
