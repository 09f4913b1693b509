// Benchmark rows: the peer's JSON in, BENCH.md's JSON and the printed table out.
#include "bench/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>

#include "ir/error.h"

namespace weft::bench {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

/// `value` printed with `format`, or "-" when absent.
std::string orDash(const std::optional<double>& value, const char* format) {
  if (!value) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, *value);
  return buf;
}

}  // namespace

std::optional<double> Row::speedup() const {
  if (!peerMs || weftMs <= 0) return std::nullopt;
  return *peerMs / weftMs;
}

std::optional<double> Row::ortSpeedup() const {
  if (!ortMs || weftMs <= 0) return std::nullopt;
  return *ortMs / weftMs;
}

double Row::gflops() const { return weftMs > 0 ? flops / (weftMs * 1e6) : 0; }

double Row::gemmFraction() const { return gemmGflops > 0 ? gflops() / gemmGflops : 0; }

namespace {

/// Parses `text` as a JSON list of objects and hands each to `read` with its name for
/// messages ("WHAT: row I"). Throws weft::Error naming `what` for anything else.
void forEachRow(const std::string& text, const std::string& what,
                const std::function<void(const Json& row, const std::string& where)>& read) {
  Json doc;
  try {
    doc = Json::parse(text);
  } catch (const Json::exception& e) {
    throw Error(what + ": invalid JSON: " + printableText(e.what()));
  }
  if (!doc.is_array()) throw Error(what + ": expected a list of rows");
  for (size_t i = 0; i < doc.size(); ++i) {
    std::string where = what + ": row " + std::to_string(i);
    if (!doc[i].is_object()) throw Error(where + " is not an object");
    read(doc[i], where);
  }
}

/// Row field `key` of `row`, a string or (with `number`) a number; throws naming `where`.
const Json& field(const Json& row, const char* key, bool number, const std::string& where) {
  if (!row.contains(key) || !(number ? row[key].is_number() : row[key].is_string()))
    throw Error(where + " has no " + (number ? "number" : "string") + " '" + key + "'");
  return row[key];
}

}  // namespace

PeerTimes parsePeerJson(const std::string& text, const std::string& what) {
  PeerTimes times;
  forEachRow(text, what, [&](const Json& row, const std::string& where) {
    std::string model = field(row, "model", false, where), mode = field(row, "mode", false, where);
    times[{model, mode}] = field(row, "median_ms", true, where).get<double>();
  });
  return times;
}

PeerMemory parsePeerMemoryJson(const std::string& text, const std::string& what) {
  PeerMemory peaks;
  forEachRow(text, what, [&](const Json& row, const std::string& where) {
    std::string model = field(row, "model", false, where);
    peaks[model] = field(row, "peak_bytes", true, where).get<double>();
  });
  return peaks;
}

std::string rowsToJson(const std::vector<Row>& rows) {
  OrderedJson out = OrderedJson::array();
  for (const Row& r : rows) {
    OrderedJson j;
    j["model"] = r.model;
    j["mode"] = r.mode;
    j["weft_ms"] = r.weftMs;
    j["peer_ms"] = r.peerMs ? OrderedJson(*r.peerMs) : OrderedJson(nullptr);
    j["speedup"] = r.speedup() ? OrderedJson(*r.speedup()) : OrderedJson(nullptr);
    j["gflops"] = r.gflops();
    j["gemm_fraction"] = r.gemmFraction();
    if (r.weftPeakBytes) {
      j["weft_peak_bytes"] = *r.weftPeakBytes;
      j["peer_peak_bytes"] = r.peerPeakBytes ? OrderedJson(*r.peerPeakBytes) : OrderedJson(nullptr);
    }
    if (r.ortMs) {
      j["ort_ms"] = *r.ortMs;
      j["ort_speedup"] = *r.ortSpeedup();
    }
    if (r.lowestSpeedup && r.highestSpeedup) j["speedup_range"] = {*r.lowestSpeedup, *r.highestSpeedup};
    out.push_back(std::move(j));
  }
  return out.dump(1) + "\n";
}

namespace {

/// The median of `values` (the mean of the middle two for an even count); nullopt when empty.
std::optional<double> median(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  const size_t half = values.size() / 2;
  return values.size() % 2 ? values[half] : (values[half - 1] + values[half]) / 2;
}

}  // namespace

std::vector<Row> medianRows(const std::vector<std::vector<Row>>& rounds) {
  std::vector<Row> rows;
  if (rounds.empty()) return rows;
  for (const Row& first : rounds.front()) {
    std::vector<double> weft, peer, ort, peerPeak, speedups;
    for (const std::vector<Row>& round : rounds)
      for (const Row& r : round)
        if (r.model == first.model && r.mode == first.mode) {
          weft.push_back(r.weftMs);
          if (r.speedup()) speedups.push_back(*r.speedup());
          if (r.peerMs) peer.push_back(*r.peerMs);
          if (r.ortMs) ort.push_back(*r.ortMs);
          if (r.peerPeakBytes) peerPeak.push_back(*r.peerPeakBytes);
        }
    Row row = first;
    row.weftMs = *median(weft);
    row.peerMs = median(peer);
    row.ortMs = median(ort);
    row.peerPeakBytes = median(peerPeak);
    if (speedups.size() >= 2) {
      row.lowestSpeedup = *std::min_element(speedups.begin(), speedups.end());
      row.highestSpeedup = *std::max_element(speedups.begin(), speedups.end());
    }
    rows.push_back(row);
  }
  return rows;
}

std::string tableHeader(bool ranges) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-14s %-5s %10s %10s %8s %9s %8s%s", "model", "mode", "weft ms", "peer ms", "speedup",
                "GFLOP/s", "of GEMM", ranges ? "   rounds' speedups" : "");
  return buf;
}

std::string tableLine(const Row& r) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%-14s %-5s %10.3f %10s %8s %9.2f %7.1f%%", r.model.c_str(), r.mode.c_str(), r.weftMs,
                orDash(r.peerMs, "%.3f").c_str(), orDash(r.speedup(), "%.2fx").c_str(), r.gflops(),
                100 * r.gemmFraction());
  std::string line = buf;
  if (r.lowestSpeedup && r.highestSpeedup) {
    std::snprintf(buf, sizeof buf, "   %.2f-%.2fx", *r.lowestSpeedup, *r.highestSpeedup);
    line += buf;
  }
  return line;
}

namespace {

/// One mode's geometric mean speedup over the rows that have a peer time.
struct ModeGeomean {
  std::string mode;
  double speedup = 0;
  int rows = 0;
};

/// The geometric mean speedup of each mode of `rows`, in the order the modes first appear.
std::vector<ModeGeomean> geomeansByMode(const std::vector<Row>& rows) {
  std::vector<ModeGeomean> means;  // speedup holds the sum of log speedups until the end
  for (const Row& r : rows)
    if (auto s = r.speedup(); s && *s > 0) {
      auto it = std::find_if(means.begin(), means.end(), [&](const ModeGeomean& m) { return m.mode == r.mode; });
      if (it == means.end()) it = means.insert(means.end(), ModeGeomean{r.mode});
      it->speedup += std::log(*s);
      ++it->rows;
    }
  for (ModeGeomean& m : means) m.speedup = std::exp(m.speedup / m.rows);
  return means;
}

}  // namespace

std::string geomeanLine(const std::vector<Row>& rows) {
  std::string line;
  for (const ModeGeomean& m : geomeansByMode(rows)) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s %.2fx (%d row%s)", line.empty() ? "geomean speedup: " : ", ", m.mode.c_str(),
                  m.speedup, m.rows, m.rows == 1 ? "" : "s");
    line += buf;
  }
  return line;
}

std::string roundsGeomeanLine(const std::vector<std::vector<Row>>& rounds) {
  std::vector<std::string> modes;
  std::map<std::string, std::string> speedups;  // mode -> " 4.27x 4.08x ..."
  for (const std::vector<Row>& round : rounds)
    for (const ModeGeomean& m : geomeansByMode(round)) {
      if (std::find(modes.begin(), modes.end(), m.mode) == modes.end()) modes.push_back(m.mode);
      char buf[32];
      std::snprintf(buf, sizeof buf, " %.2fx", m.speedup);
      speedups[m.mode] += buf;
    }
  std::string line;
  for (const std::string& mode : modes)
    line += (line.empty() ? "rounds' geomean speedups: " : ", ") + mode + speedups[mode];
  return line;
}

std::string ortHeader() {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-14s %10s %10s %8s", "model", "weft ms", "ort ms", "speedup");
  return buf;
}

std::string ortLine(const Row& r) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-14s %10.3f %10s %8s", r.model.c_str(), r.weftMs, orDash(r.ortMs, "%.3f").c_str(),
                orDash(r.ortSpeedup(), "%.2fx").c_str());
  return buf;
}

std::string ortGeomeanLine(const std::vector<Row>& rows) {
  double logSum = 0;
  int count = 0, ahead = 0;
  for (const Row& r : rows)
    if (auto s = r.ortSpeedup(); s && *s > 0) {
      logSum += std::log(*s);
      ++count;
      ahead += *s > 1 ? 1 : 0;
    }
  if (count == 0) return "";
  char buf[128];
  std::snprintf(buf, sizeof buf, "geomean speedup over ONNX Runtime: %.2fx (%d row%s, %d ahead)", std::exp(logSum / count),
                count, count == 1 ? "" : "s", ahead);
  return buf;
}

std::string memoryHeader() {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-14s %10s %10s %11s", "model", "weft MiB", "peer MiB", "weft/peer");
  return buf;
}

std::string memoryLine(const Row& r) {
  constexpr double kMiB = 1024.0 * 1024.0;
  std::optional<double> peer, ratio;
  if (r.peerPeakBytes) peer = *r.peerPeakBytes / kMiB;
  if (r.peerPeakBytes && *r.peerPeakBytes > 0 && r.weftPeakBytes) ratio = *r.weftPeakBytes / *r.peerPeakBytes;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-14s %10.2f %10s %11s", r.model.c_str(), r.weftPeakBytes.value_or(0) / kMiB,
                orDash(peer, "%.2f").c_str(), orDash(ratio, "%.2fx").c_str());
  return buf;
}

}  // namespace weft::bench
