// Splitting a batch's assembly by kernel (see assembly_split.h). Lines collect in a pending
// text; a function's label line hands the pending text (its section, alignment and type
// directives, its constant pools) to that function's kernel, and the function's `.size`
// directive hands over its body.
#include "backends/cpu/codegen/assembly_split.h"

#include <set>
#include <sstream>

namespace weft::cpu::codegen {
namespace {

/// The label `line` defines at its start (`name:` with nothing after it), or "" for any
/// other line (instructions, directives, local labels such as .LBB0_1 and .LCPI0_0).
std::string functionLabel(const std::string& line) {
  if (line.empty() || line.back() != ':' || line[0] == '.' || line[0] == '\t' || line[0] == ' ') return "";
  return line.substr(0, line.size() - 1);
}

}  // namespace

std::map<std::string, std::string> splitAssemblyByKernel(const std::string& assembly,
                                                         const std::vector<std::string>& names) {
  const std::set<std::string> kernels(names.begin(), names.end());
  auto kernelOf = [&](const std::string& label) {
    const std::string suffix = "_packed";
    if (label.size() > suffix.size() && label.ends_with(suffix)) {
      std::string base = label.substr(0, label.size() - suffix.size());
      if (kernels.count(base)) return base;
    }
    return label;
  };
  std::map<std::string, std::string> texts;
  std::string pending, current, function;
  std::istringstream in(assembly);
  for (std::string line; std::getline(in, line);) {
    pending += line + '\n';
    if (std::string label = functionLabel(line); !label.empty()) {
      function = label;
      current = kernelOf(label);
      texts[current] += pending;
      pending.clear();
    } else if (!function.empty() && line.starts_with("\t.size\t" + function + ",")) {
      texts[current] += pending;
      pending.clear();
      function.clear();
    }
  }
  if (!pending.empty() && !current.empty()) texts[current] += pending;  // the module's trailer
  return texts;
}

}  // namespace weft::cpu::codegen
