#pragma once
/// What the writer of ahead-of-time bundles (backends/cpu/aot.h) and the runtime that loads
/// them (runtime/weft.h) agree on besides the structs of runtime/weft.h.
namespace weft::runtime {

/// Metadata key of a bundle's weights file: the ABI version ("1"), checked when weights load.
inline constexpr const char* kBundleAbiKey = "weft.abi";
/// Metadata key: the name of the graph the weights belong to (e.g. "mlp" or "mlp_train").
inline constexpr const char* kBundleGraphKey = "weft.graph";
/// Metadata key: the bundle's name (NAME of NAME.o).
inline constexpr const char* kBundleNameKey = "weft.bundle";
/// Metadata key: the weft version that wrote the file.
inline constexpr const char* kBundleVersionKey = "weft.version";

}  // namespace weft::runtime
