#pragma once
/// The assembly of a batch of generated kernels (one LLVM module) split into one text per
/// kernel, for `weft compile --dump-asm DIR`: DIR/NAME.s beside --dump-mlir's NAME.mlir.
#include <map>
#include <string>
#include <vector>

namespace weft::cpu::codegen {

/// `assembly` (LLVM's x86 AT&T text of one module) cut at its functions: each kernel of
/// `names` gets the lines of its own function and of its packed entry (NAME_packed), each
/// with the directives and constant pools emitted before it. The module's header goes with
/// the first function, its trailer with the last; a function of another name gets a text of
/// its own under that name.
std::map<std::string, std::string> splitAssemblyByKernel(const std::string& assembly,
                                                         const std::vector<std::string>& names);

}  // namespace weft::cpu::codegen
