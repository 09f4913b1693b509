// The pass registry, pipeline parsing, verification between passes, print-after and dumps.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>

#include "ir/error.h"
#include "ir/printer.h"
#include "passes/pass_manager.h"
#include "pass_test_util.h"

using namespace weft;
using namespace weft::ir;
using namespace weft::passes;
using namespace weft::passes::testing;

namespace {

/// exp(x) computed twice plus a dead log: cse and dce both have work to do.
Graph redundantGraph() {
  Graph g("g");
  auto x = g.addInput("x", {DType::f32, {4}});
  auto a = g.addOp(OpKind::Exp, {x});
  auto b = g.addOp(OpKind::Exp, {x});
  g.addOp(OpKind::Log, {x});
  g.addOutput("out", g.addOp(OpKind::Add, {a, b}));
  return g;
}

std::string expectError(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a weft::Error";
  return "";
}

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A fresh empty directory under the system temp dir for one test.
std::filesystem::path scratchDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("weft_passes_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace

TEST(PassRegistry, BuiltinPassesAreRegisteredSortedByName) {
  std::vector<std::string> names;
  for (const auto* p : allPasses()) names.push_back(p->name);
  for (const char* want : {"canonicalize", "cse", "dce", "decompose-composites"}) {
    const PassInfo* p = findPass(want);
    ASSERT_NE(p, nullptr) << want;
    EXPECT_EQ(p->name, want);
    EXPECT_FALSE(p->description.empty());
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(findPass("frobnicate"), nullptr);
  EXPECT_EQ(defaultPipeline(), "decompose-composites,canonicalize,cse,dce");
  EXPECT_NO_THROW(PassManager pm(defaultPipeline()));
}

TEST(PassRegistry, RegisteringTheSameNameReplacesThePass) {
  registerPass({"test-replaced", "first", [](Graph&) { return false; }});
  registerPass({"test-replaced", "second", [](Graph&) { return true; }});
  const PassInfo* p = findPass("test-replaced");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->description, "second");
  Graph g;
  EXPECT_TRUE(p->run(g));
  int count = 0;
  for (const auto* q : allPasses()) count += q->name == "test-replaced";
  EXPECT_EQ(count, 1);
}

TEST(PassPipeline, ParsesNamesWithWhitespace) {
  EXPECT_EQ(PassManager(" cse ,dce,\tcanonicalize ").names(), (std::vector<std::string>{"cse", "dce", "canonicalize"}));
  EXPECT_EQ(PassManager("cse,cse").names(), (std::vector<std::string>{"cse", "cse"}));
  EXPECT_TRUE(PassManager("").names().empty());
  EXPECT_TRUE(PassManager("   ").names().empty());
}

TEST(PassPipeline, EmptyPipelineLeavesTheGraphAlone) {
  Graph g = redundantGraph(), before = g;
  EXPECT_FALSE(PassManager("").run(g));
  expectSameGraph(g, before);
}

TEST(PassPipeline, UnknownPassListsKnownOnes) {
  std::string msg = expectError([] { PassManager("cse,frobnicate"); });
  EXPECT_NE(msg.find("unknown pass 'frobnicate'; known passes: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("canonicalize, channels-last, cse, dce, decompose-composites"), std::string::npos) << msg;
  msg = expectError([] { PassManager("cse,,dce"); });
  EXPECT_NE(msg.find("empty pass name"), std::string::npos) << msg;
}

TEST(PassPipeline, RunsPassesInOrderAndReportsChange) {
  Graph g = redundantGraph();
  EXPECT_TRUE(PassManager("cse,dce").run(g));
  EXPECT_EQ(opNames(g), (std::vector<std::string>{"input", "exp", "add"}));
  EXPECT_EQ(g.node(2).operands, (std::vector<ValueId>{1, 1}));
  EXPECT_FALSE(PassManager(defaultPipeline()).run(g));
}

TEST(PassPipeline, VerifierFailureNamesThePass) {
  registerPass({"test-break-types", "sets a wrong type on the last node", [](Graph& g) {
                  g.node(g.size() - 1).type = {DType::f32, {99}};
                  return true;
                }});
  Graph g = redundantGraph();
  std::string msg = expectError([&] { PassManager("cse,test-break-types,dce").run(g); });
  EXPECT_EQ(msg.rfind("after pass 'test-break-types': graph @g is invalid:", 0), 0u) << msg;
  EXPECT_NE(msg.find("declared type f32[99]"), std::string::npos) << msg;

  Graph h = redundantGraph();
  PipelineOptions noVerify;
  noVerify.verifyEach = false;
  EXPECT_NO_THROW(PassManager("test-break-types").run(h, noVerify));
}

TEST(PassPipeline, InvalidInputIsReportedBeforeTheFirstPass) {
  Graph g = redundantGraph();
  g.node(1).type = {DType::f64, {4}};
  std::string msg = expectError([&] { PassManager("dce").run(g); });
  EXPECT_EQ(msg.rfind("before pass 'dce': graph @g is invalid:", 0), 0u) << msg;
}

TEST(PassPipeline, ErrorsThrownByAPassNameIt) {
  registerPass({"test-throws", "always fails", [](Graph&) -> bool { throw Error("something is wrong"); }});
  Graph g = redundantGraph();
  EXPECT_EQ(expectError([&] { PassManager("test-throws").run(g); }), "pass 'test-throws': something is wrong");
}

TEST(PassPipeline, PrintAfterNamedPassesAndAll) {
  Graph g = redundantGraph();
  std::ostringstream out;
  PipelineOptions opts;
  opts.printStream = &out;
  opts.printAfter = {"cse"};
  PassManager("cse,dce").run(g, opts);
  std::string text = out.str();
  std::string cseHeader = "// ----- IR after cse (changed) -----\n";
  ASSERT_EQ(text.rfind(cseHeader, 0), 0u) << text;
  EXPECT_EQ(text.find("IR after dce"), std::string::npos) << text;
  EXPECT_NE(text.find("log("), std::string::npos) << "cse leaves the dead log for dce:\n" << text;

  std::ostringstream all;
  opts.printStream = &all;
  opts.printAfter = {"all"};
  PassManager("cse,dce").run(g, opts);  // g is already clean: both passes are no-ops
  std::string expected = "// ----- IR after cse (unchanged) -----\n" + printGraph(g) +
                         "// ----- IR after dce (unchanged) -----\n" + printGraph(g);
  EXPECT_EQ(all.str(), expected);
}

TEST(PassPipeline, PrintAfterRejectsUnknownPassNames) {
  Graph g = redundantGraph();
  PipelineOptions opts;
  std::ostringstream out;
  opts.printStream = &out;
  opts.printAfter = {"nope"};
  std::string msg = expectError([&] { PassManager("cse").run(g, opts); });
  EXPECT_NE(msg.find("unknown pass 'nope'"), std::string::npos) << msg;
}

TEST(PassPipeline, DumpDirGetsOneFilePerStage) {
  auto dir = scratchDir("dump") / "nested";
  Graph g = redundantGraph(), input = g;
  PipelineOptions opts;
  opts.dumpDir = dir.string();
  PassManager("cse,dce").run(g, opts);
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files.push_back(entry.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"00-input.weft", "01-cse.weft", "02-dce.weft"}));
  EXPECT_EQ(readFile(dir / "00-input.weft"), printGraph(input));
  EXPECT_EQ(readFile(dir / "02-dce.weft"), printGraph(g));
  std::string afterCse = readFile(dir / "01-cse.weft");
  EXPECT_NE(afterCse.find("log("), std::string::npos);
  EXPECT_EQ(afterCse.find("log("), afterCse.rfind("log("));
  std::filesystem::remove_all(dir.parent_path());
}

TEST(PassPipeline, UnwritableDumpDirIsAnErrorNamingThePath) {
  auto dir = scratchDir("dump_file");
  std::filesystem::create_directories(dir);
  auto blocker = dir / "not_a_dir";
  std::ofstream(blocker) << "x";
  Graph g = redundantGraph();
  PipelineOptions opts;
  opts.dumpDir = (blocker / "sub").string();
  std::string msg = expectError([&] { PassManager("cse").run(g, opts); });
  EXPECT_NE(msg.find("cannot create dump directory '" + opts.dumpDir + "'"), std::string::npos) << msg;
  opts.dumpDir = blocker.string();
  msg = expectError([&] { PassManager("cse").run(g, opts); });
  EXPECT_NE(msg.find(blocker.string()), std::string::npos) << msg;
  std::filesystem::remove_all(dir);
}
