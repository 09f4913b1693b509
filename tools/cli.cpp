#include "tools/cli.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "ir/error.h"
#include "runtime/cpu/program.h"
#include "runtime/file_io.h"

namespace weft::cli {

Args::Args(int argc, char** argv, int first, const std::set<std::string>& valued,
           const std::set<std::string>& flags) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" && flags.count("help")) a = "--help";
    if (a.size() < 2 || a.rfind("--", 0) != 0) {
      positional_.push_back(a);
      continue;
    }
    std::string key = a.substr(2), value;
    bool hasValue = false;
    if (auto eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
      hasValue = true;
    }
    if (flags.count(key)) {
      if (hasValue) throw Error("option --" + key + " takes no value");
      values_[key] = "";
    } else if (valued.count(key)) {
      if (!hasValue) {
        if (i + 1 >= argc) throw Error("option --" + key + " needs a value");
        value = argv[++i];
        if (value.rfind("--", 0) == 0 && value.size() > 2)  // `--out --seed=1`: a forgotten value
          throw Error("option --" + key + " needs a value, got the option " + value +
                      " (write --" + key + "=" + value + " if that is the value)");
      }
      values_[key] = value;
    } else {
      throw Error("unknown option --" + key + " (see --help)");
    }
  }
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::get(const std::string& name, const std::string& dflt) const {
  return get(name).value_or(dflt);
}

long long Args::getInt(const std::string& name, long long dflt) const {
  auto v = get(name);
  if (!v) return dflt;
  try {
    size_t used = 0;
    long long r = std::stoll(*v, &used);
    if (used == v->size()) return r;
  } catch (const std::exception&) {
  }
  throw Error("option --" + name + " needs an integer, got '" + *v + "'");
}

double Args::getDouble(const std::string& name, double dflt) const {
  auto v = get(name);
  if (!v) return dflt;
  try {
    size_t used = 0;
    double r = std::stod(*v, &used);
    if (used == v->size() && std::isfinite(r)) return r;
  } catch (const std::exception&) {
  }
  throw Error("option --" + name + " needs a number, got '" + *v + "'");
}

int applyThreadsOption(const Args& args) {
  if (args.has("threads")) {
    const int threads = cpu::checkedThreads(args.getInt("threads", 0), "--threads");
    setenv("WEFT_THREADS", std::to_string(threads).c_str(), 1);
  }
  return cpu::defaultThreads();
}

std::string threadCount(int threads) {
  return std::to_string(threads) + (threads == 1 ? " thread" : " threads");
}

std::vector<std::string> splitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string readFileOrStdin(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  return runtime::readFileBytes(path);  // a directory or an endless device is refused by name
}

}  // namespace weft::cli
