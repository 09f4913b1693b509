// The benchmark harness: FLOP counts against hand counts, medians, inputs, the graphs each
// mode times, the peer's JSON and the JSON rows. Timings themselves are never checked.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <optional>
#include <filesystem>
#include <thread>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/harness.h"
#include "bench/peer.h"
#include "bench/report.h"
#include "bench/suite.h"
#include "frontend/weft.h"
#include "ir/error.h"

using namespace weft;

namespace {

/// A graph whose output `out` is what `body` returns, built with the DSL.
template <class Body>
ir::Graph graphOf(Body body) {
  GraphBuilder builder("g");
  BuildScope scope(builder);
  output("out", body());
  return builder.finish();
}

}  // namespace

namespace {

/// A row timed at `ms` with nothing else set.
bench::Row timedRow(const std::string& model, const std::string& mode, double ms) {
  bench::Row row;
  row.model = model;
  row.mode = mode;
  row.weftMs = ms;
  return row;
}

}  // namespace

TEST(BenchFlops, Contractions) {
  // [4,8] x [8,3]: 4*3 outputs of 8 multiply-adds.
  EXPECT_EQ(bench::countFlops(graphOf([] { return matmul(input("a", {4, 8}), input("b", {8, 3})); })), 2 * 4 * 3 * 8);
  // Transposed lhs [8,4]^T and a batch of 5.
  EXPECT_EQ(bench::countFlops(graphOf([] { return matmul(input("a", {5, 8, 4}), input("b", {5, 8, 3}), true); })),
            2 * 5 * 4 * 3 * 8);
  // conv 3->5, 3x3, padding 1 on [2,3,8,8]: 2*5*8*8 outputs of 3*9 multiply-adds.
  EXPECT_EQ(bench::countFlops(graphOf([] {
              return conv2d(input("x", {2, 3, 8, 8}), input("w", {5, 3, 3, 3}), {.padding = 1});
            })),
            2 * (2 * 5 * 8 * 8) * 27);
  // Grouped: groups 3 on 6 channels, weight [6, 2, 1, 1].
  EXPECT_EQ(bench::countFlops(graphOf([] {
              return conv2d(input("x", {1, 6, 4, 4}), input("w", {6, 2, 1, 1}), {.groups = 3});
            })),
            2 * (6 * 4 * 4) * 2);
  // conv_transpose 4->2, 4x4 stride 2 on [1,4,3,3]: each of 36 inputs feeds 2*16 outputs.
  EXPECT_EQ(bench::countFlops(graphOf([] {
              return conv_transpose2d(input("x", {1, 4, 3, 3}), input("w", {4, 2, 4, 4}), {.stride = 2, .padding = 1});
            })),
            2 * 36 * 32);
  // attention: q [2,4,5,8], k [2,4,6,8], v [2,4,6,7]: 2*4*5*6 scores of 8, then of 7.
  EXPECT_EQ(bench::countFlops(graphOf([] {
              return attention(input("q", {2, 4, 5, 8}), input("k", {2, 4, 6, 8}), input("v", {2, 4, 6, 7}));
            })),
            2 * (2 * 4 * 5 * 6) * (8 + 7));
  // Elementwise work counts nothing; dead contractions count nothing.
  EXPECT_EQ(bench::countFlops(graphOf([] {
              Tensor a = input("a", {4, 4});
              matmul(a, a);  // unused
              return relu(a) + 1.0;
            })),
            0);
}

TEST(BenchFlops, MlpForwardAndTrainingStep) {
  // mlp: 128 x (784*512 + 512*256 + 256*10) multiply-adds; the loss is not part of inference.
  EXPECT_EQ(bench::countFlops(bench::inferenceGraph("mlp")), 2.0 * 128 * (784 * 512 + 512 * 256 + 256 * 10));
  // mlp_tiny (4 x 16-12-8-5): the step is the forward, every weight gradient (as much again)
  // and the input gradients of layers 2 and 3 (the input x needs none).
  double forward = 2.0 * 4 * (16 * 12 + 12 * 8 + 8 * 5);
  EXPECT_EQ(bench::countFlops(bench::trainStepGraph("mlp_tiny")), 2 * forward + 2.0 * 4 * (12 * 8 + 8 * 5));
}

TEST(BenchHarness, MedianAndRunCounts) {
  EXPECT_EQ(bench::median({3, 1, 2}), 2);
  EXPECT_EQ(bench::median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(bench::median({}), 0);
  int calls = 0;
  bench::Timing t = bench::timeRuns([&] { ++calls; }, 2, 5);
  EXPECT_EQ(calls, 7);
  EXPECT_EQ(t.runs, 5);
  EXPECT_LE(t.minMs, t.medianMs);
  EXPECT_LE(t.medianMs, t.maxMs);
  // Warm-up runs past the count until the time has passed (a sleep of 1 ms per run).
  calls = 0;
  bench::timeRuns([&] { ++calls; std::this_thread::sleep_for(std::chrono::milliseconds(1)); }, 2, 3, 0.02);
  EXPECT_GE(calls, 3 + 10);
  EXPECT_THROW(bench::timeRuns([] {}, 0, 0), Error);
  EXPECT_THROW(bench::timeRuns([] {}, -1, 1), Error);
}

TEST(BenchHarness, InputsCoverEveryInput) {
  ir::Graph step = bench::trainStepGraph("mlp_tiny");
  reference::TensorMap in = bench::benchmarkInputs(step);
  ASSERT_EQ(in.size(), 3u);  // x, y, lr
  EXPECT_FLOAT_EQ(static_cast<float>(in.at("lr").get(0)), 1e-3f);
  const ir::TensorData& y = in.at("y");
  for (int64_t i = 0; i < y.numel(); ++i) {
    EXPECT_GE(y.get(i), 0);
    EXPECT_LT(y.get(i), 5);  // mlp_tiny has 5 classes
  }
  const ir::TensorData& x = in.at("x");
  for (int64_t i = 0; i < x.numel(); ++i) {
    EXPECT_GE(x.get(i), 0);
    EXPECT_LT(x.get(i), 1);
  }
}

TEST(BenchSuite, InferenceGraphsKeepWhatTorchComputes) {
  auto outputNames = [](const ir::Graph& g) {
    std::vector<std::string> names;
    for (const auto& o : g.outputs()) names.push_back(o.name);
    return names;
  };
  EXPECT_EQ(outputNames(bench::inferenceGraph("resnet_tiny")), std::vector<std::string>{"logits"});
  EXPECT_EQ(outputNames(bench::inferenceGraph("ddpm_tiny")), std::vector<std::string>{"eps_pred"});
  EXPECT_EQ(outputNames(bench::inferenceGraph("dcgan_tiny")), std::vector<std::string>{"images"});
  EXPECT_EQ(outputNames(bench::inferenceGraph("realnvp_tiny")), (std::vector<std::string>{"z", "loss"}));
  EXPECT_EQ(outputNames(bench::inferenceGraph("vae_tiny")), (std::vector<std::string>{"logits", "loss"}));
  EXPECT_THROW(bench::inferenceGraph("nosuchmodel"), Error);
  EXPECT_EQ(bench::benchmarkModels().size(), 8u);
}

TEST(BenchSuite, ReferenceRowsRun) {
  bench::SuiteOptions options;
  options.backend = training::Backend::reference;
  options.warmup = 0;
  options.repeat = 2;
  for (const char* mode : {"infer", "train"}) {
    SCOPED_TRACE(mode);
    bench::RowResult r = bench::runRow("realnvp_tiny", mode, options);
    ASSERT_TRUE(r.row) << r.error;
    EXPECT_EQ(r.row->model, "realnvp_tiny");
    EXPECT_EQ(r.row->mode, mode);
    EXPECT_GT(r.row->flops, 0);
  }
  bench::RowResult bad = bench::runRow("nosuchmodel", "infer", options);
  EXPECT_FALSE(bad.row);
  EXPECT_NE(bad.error.find("unknown model"), std::string::npos);
}

TEST(BenchReport, ParsesTorchModelsJson) {
  bench::PeerTimes t = bench::parsePeerJson(R"([
 {"model": "mlp", "mode": "infer", "median_ms": 1.5, "min_ms": 1.2, "max_ms": 2.0},
 {"model": "mlp", "mode": "train", "median_ms": 11, "min_ms": 10.0, "max_ms": 12.0}])",
                                            "t.json");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.at({"mlp", "infer"}), 1.5);
  EXPECT_EQ(t.at({"mlp", "train"}), 11.0);
  EXPECT_THROW(bench::parsePeerJson("{", "t.json"), Error);
  EXPECT_THROW(bench::parsePeerJson(R"({"model": "mlp"})", "t.json"), Error);
  try {
    bench::parsePeerJson(R"([{"model": "mlp", "mode": "infer"}])", "t.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.json: row 0 has no number 'median_ms'"), std::string::npos) << e.what();
  }
}

TEST(BenchReport, RowsAsJson) {
  bench::Row withPeer = timedRow("mlp", "infer", 2);
  withPeer.peerMs = 3;
  withPeer.flops = 4e6;
  withPeer.gemmGflops = 100;
  bench::Row alone = timedRow("gpt", "train", 4);
  nlohmann::json j = nlohmann::json::parse(bench::rowsToJson({withPeer, alone}));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["model"], "mlp");
  EXPECT_EQ(j[0]["mode"], "infer");
  EXPECT_EQ(j[0]["weft_ms"], 2.0);
  EXPECT_EQ(j[0]["peer_ms"], 3.0);
  EXPECT_EQ(j[0]["speedup"], 1.5);
  EXPECT_EQ(j[0]["gflops"], 2.0);  // 4e6 FLOPs in 2 ms
  EXPECT_EQ(j[0]["gemm_fraction"], 0.02);
  EXPECT_TRUE(j[1]["peer_ms"].is_null());
  EXPECT_TRUE(j[1]["speedup"].is_null());
  EXPECT_EQ(j[1]["gemm_fraction"], 0.0);
  EXPECT_NE(bench::tableLine(alone).find(" - "), std::string::npos);
}

TEST(BenchReport, ParsesTorchMemoryJson) {
  bench::PeerMemory m = bench::parsePeerMemoryJson(R"([
 {"model": "mlp", "held_bytes": 8, "step_bytes": 2, "peak_bytes": 10},
 {"model": "gpt", "held_bytes": 80, "step_bytes": 20, "peak_bytes": 100.5}])",
                                                   "m.json");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m.at("mlp"), 10.0);
  EXPECT_EQ(m.at("gpt"), 100.5);
  EXPECT_THROW(bench::parsePeerMemoryJson("[", "m.json"), Error);
  try {
    bench::parsePeerMemoryJson(R"([{"model": "mlp", "held_bytes": 8}])", "m.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m.json: row 0 has no number 'peak_bytes'"), std::string::npos) << e.what();
  }
}

TEST(BenchReport, MemoryLinesAndJson) {
  bench::Row both = timedRow("mlp", "train", 1);
  both.weftPeakBytes = 3.0 * (1 << 20);
  both.peerPeakBytes = 4.0 * (1 << 20);
  bench::Row alone = timedRow("gpt", "train", 1);
  alone.weftPeakBytes = 2.0 * (1 << 20);
  EXPECT_NE(bench::memoryLine(both).find("3.00"), std::string::npos) << bench::memoryLine(both);
  EXPECT_NE(bench::memoryLine(both).find("4.00"), std::string::npos);
  EXPECT_NE(bench::memoryLine(both).find("0.75x"), std::string::npos);
  EXPECT_NE(bench::memoryLine(alone).find(" - "), std::string::npos) << bench::memoryLine(alone);
  bench::Row timed = timedRow("vae", "infer", 1);
  nlohmann::json j = nlohmann::json::parse(bench::rowsToJson({both, alone, timed}));
  EXPECT_EQ(j[0]["weft_peak_bytes"], 3.0 * (1 << 20));
  EXPECT_EQ(j[0]["peer_peak_bytes"], 4.0 * (1 << 20));
  EXPECT_TRUE(j[1]["peer_peak_bytes"].is_null());
  EXPECT_FALSE(j[2].contains("weft_peak_bytes"));  // rows without --memory keep BENCH.md's fields
}


TEST(BenchReport, GeomeanOfEachModesSpeedups) {
  bench::Row a = timedRow("mlp", "infer", 1), b = timedRow("gpt", "infer", 1), c = timedRow("mlp", "train", 1);
  a.peerMs = 2 * a.weftMs;  // 2x
  b.peerMs = 8 * b.weftMs;  // 8x: the geometric mean of 2 and 8 is 4
  bench::Row alone = timedRow("vae", "train", 1);
  EXPECT_EQ(bench::geomeanLine({a, b, c, alone}), "geomean speedup: infer 4.00x (2 rows)");
  c.peerMs = 3 * c.weftMs;
  EXPECT_EQ(bench::geomeanLine({a, b, c}), "geomean speedup: infer 4.00x (2 rows), train 3.00x (1 row)");
  EXPECT_EQ(bench::geomeanLine({alone}), "");
}

TEST(BenchReport, RoundsGiveEachRowsMedians) {
  auto round = [](double weft, std::optional<double> peer, std::optional<double> ort) {
    bench::Row infer = timedRow("mlp", "infer", weft), train = timedRow("mlp", "train", 10 * weft);
    infer.peerMs = peer;
    infer.ortMs = ort;
    return std::vector<bench::Row>{infer, train};
  };
  // Three rounds: the medians are the middle values, each over the rounds that have one.
  std::vector<bench::Row> rows = bench::medianRows({round(1, 4, std::nullopt), round(3, 2, 5), round(2, std::nullopt, 7)});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].model, "mlp");
  EXPECT_EQ(rows[0].mode, "infer");
  EXPECT_DOUBLE_EQ(rows[0].weftMs, 2);
  ASSERT_TRUE(rows[0].peerMs);
  EXPECT_DOUBLE_EQ(*rows[0].peerMs, 3);  // two rounds with a peer: the mean of the middle two
  ASSERT_TRUE(rows[0].ortMs);
  EXPECT_DOUBLE_EQ(*rows[0].ortMs, 6);
  EXPECT_EQ(rows[1].mode, "train");
  EXPECT_DOUBLE_EQ(rows[1].weftMs, 20);
  EXPECT_FALSE(rows[1].peerMs);  // no round had one
  EXPECT_DOUBLE_EQ(*rows[0].speedup(), 1.5);
  // The rounds' own speedups (4 / 1 and 2 / 3) bound the row's; a row without two has none.
  ASSERT_TRUE(rows[0].lowestSpeedup && rows[0].highestSpeedup);
  EXPECT_DOUBLE_EQ(*rows[0].lowestSpeedup, 2.0 / 3);
  EXPECT_DOUBLE_EQ(*rows[0].highestSpeedup, 4);
  EXPECT_FALSE(rows[1].lowestSpeedup || rows[1].highestSpeedup);
  const std::string line = bench::tableLine(rows[0]);
  EXPECT_EQ(line.substr(line.size() - 13), "   0.67-4.00x") << line;
  EXPECT_EQ(bench::tableLine(rows[1]).back(), '%');  // no range: the line ends with "of GEMM"
  EXPECT_NE(bench::tableHeader(true).find("rounds' speedups"), std::string::npos);
  EXPECT_EQ(bench::tableHeader().find("rounds"), std::string::npos);
  const nlohmann::json json = nlohmann::json::parse(bench::rowsToJson(rows));
  ASSERT_TRUE(json[0].contains("speedup_range"));
  EXPECT_DOUBLE_EQ(json[0]["speedup_range"][0].get<double>(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(json[0]["speedup_range"][1].get<double>(), 4);
  EXPECT_FALSE(json[1].contains("speedup_range"));
  // One round is itself, with no range.
  std::vector<bench::Row> one = bench::medianRows({round(1, 4, std::nullopt)});
  ASSERT_EQ(one.size(), 2u);
  EXPECT_DOUBLE_EQ(one[0].weftMs, 1);
  EXPECT_DOUBLE_EQ(*one[0].peerMs, 4);
  EXPECT_FALSE(one[0].lowestSpeedup);
  EXPECT_EQ(bench::tableLine(one[0]).back(), '%');
  EXPECT_TRUE(bench::medianRows({}).empty());
}

TEST(BenchReport, RoundsGeomeanLineListsEachRoundsGeomeanByMode) {
  auto row = [](const char* mode, double weft, std::optional<double> peer) {
    bench::Row r = timedRow("mlp", mode, weft);
    r.peerMs = peer;
    return r;
  };
  // Round 1: infer 4x and 1x (geomean 2x), train 3x; round 2: infer 0.5x, no train peer.
  std::vector<std::vector<bench::Row>> rounds = {{row("infer", 1, 4), row("infer", 2, 2), row("train", 1, 3)},
                                                 {row("infer", 2, 1), row("train", 1, std::nullopt)}};
  EXPECT_EQ(bench::roundsGeomeanLine(rounds), "rounds' geomean speedups: infer 2.00x 0.50x, train 3.00x");
  EXPECT_EQ(bench::roundsGeomeanLine({{row("infer", 1, std::nullopt)}}), "");
  EXPECT_EQ(bench::roundsGeomeanLine({}), "");
}

TEST(BenchReport, OrtLinesGeomeanAndJson) {
  bench::Row ahead = timedRow("mlp", "infer", 1), behind = timedRow("resnet", "infer", 4);
  ahead.ortMs = 2;   // 2x
  behind.ortMs = 2;  // 0.5x: the geometric mean is 1
  bench::Row none = timedRow("vae", "infer", 1);
  EXPECT_NE(bench::ortLine(ahead).find("2.00x"), std::string::npos) << bench::ortLine(ahead);
  EXPECT_NE(bench::ortLine(none).find(" - "), std::string::npos) << bench::ortLine(none);
  EXPECT_EQ(bench::ortGeomeanLine({ahead, behind, none}), "geomean speedup over ONNX Runtime: 1.00x (2 rows, 1 ahead)");
  EXPECT_EQ(bench::ortGeomeanLine({none}), "");
  nlohmann::json j = nlohmann::json::parse(bench::rowsToJson({ahead, none}));
  EXPECT_EQ(j[0]["ort_ms"], 2.0);
  EXPECT_EQ(j[0]["ort_speedup"], 2.0);
  EXPECT_FALSE(j[1].contains("ort_ms"));  // rows without ONNX Runtime keep BENCH.md's fields
}

TEST(BenchPeer, OrtPeerPreparesItsCacheOnceThenTimesOneModelAtATime) {
  // A stand-in for ort_peer.sh with its interface: WORKDIR gets the package and the exports
  // when missing, then ort_cpu.json with a row for each export present there.
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("weft-ort-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path script = dir / "ort_peer.sh", calls = dir / "calls";
  std::ofstream(script) << "set -eu\nw=$1; mkdir -p \"$w\"; cd \"$w\"; echo \"$w\" >> " << calls << "\n"
                        << "[ -d node_modules/onnxruntime-node ] || mkdir -p node_modules/onnxruntime-node\n"
                        << "ls ./*.onnx >/dev/null 2>&1 || for m in mlp lenet; do echo x > $m.onnx; done\n"
                        << "rows=''; for f in *.onnx; do rows=\"$rows${rows:+,}{\\\"model\\\": \\\"${f%.onnx}\\\", "
                        << "\\\"mode\\\": \\\"infer\\\", \\\"median_ms\\\": 1.5}\"; done\n"
                        << "echo \"[$rows]\" > ort_cpu.json\n";
  bench::OrtOptions options;
  options.script = script.string();
  options.cacheDir = (dir / "cache").string();
  auto lines = [&] {
    std::ifstream in(calls);
    int n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  };
  bench::PeerResult lenet = bench::runOrtPeer(options, "lenet");
  ASSERT_TRUE(lenet.times) << lenet.message;
  EXPECT_EQ(*lenet.times, (bench::PeerTimes{{{"lenet", "infer"}, 1.5}}));  // lenet alone
  EXPECT_EQ(lines(), 2);  // the cache prepared, then lenet timed
  bench::PeerResult mlp = bench::runOrtPeer(options, "mlp");
  ASSERT_TRUE(mlp.times) << mlp.message;
  EXPECT_EQ(mlp.times->count({"mlp", "infer"}), 1u);
  EXPECT_EQ(lines(), 3);  // the cache kept

  options.script = (dir / "missing.sh").string();
  bench::PeerResult missing = bench::runOrtPeer(options, "mlp");
  EXPECT_FALSE(missing.times);
  EXPECT_NE(missing.message.find("ort_peer.sh not found at"), std::string::npos) << missing.message;
  std::ofstream(dir / "failing.sh") << "echo no registry reachable >&2; exit 3\n";
  options.script = (dir / "failing.sh").string();
  bench::PeerResult failing = bench::runOrtPeer(options, "gpt");  // not in the cache: prepared again, and fails
  EXPECT_FALSE(failing.times);
  EXPECT_NE(failing.message.find("no registry reachable"), std::string::npos) << failing.message;
  fs::remove_all(dir);
}

TEST(BenchPeer, WarnsWhenPyTorchsBlasIsTheReferenceOne) {
  // Debian's alternatives: libblas.so.3 links to blas/libblas.so.3 (reference) or to an
  // optimized library's directory (openblas-pthread/libblas.so.3).
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("weft-blas-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (const char* lib : {"blas", "openblas-pthread"}) {
    fs::create_directories(dir / lib);
    std::ofstream(dir / lib / "libblas.so.3") << "x";
  }
  fs::create_symlink(dir / "blas" / "libblas.so.3", dir / "alternative");
  fs::create_symlink(dir / "alternative", dir / "libblas.so.3");
  std::optional<std::string> warning = bench::referenceBlasWarning((dir / "libblas.so.3").string());
  ASSERT_TRUE(warning);
  EXPECT_NE(warning->find("libopenblas0-pthread"), std::string::npos) << *warning;
  fs::remove(dir / "alternative");
  fs::create_symlink(dir / "openblas-pthread" / "libblas.so.3", dir / "alternative");
  EXPECT_FALSE(bench::referenceBlasWarning((dir / "libblas.so.3").string()));
  EXPECT_FALSE(bench::referenceBlasWarning((dir / "missing.so.3").string()));
  fs::remove_all(dir);
}
