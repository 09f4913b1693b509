// Randomized mutation of valid IR text: the parser must either succeed or throw weft::Error,
// never crash or throw anything else; whatever it accepts must print and reparse to the same text.
#include <gtest/gtest.h>

#include <random>

#include "ir/error.h"
#include "ir/parser.h"
#include "ir/printer.h"

using namespace weft::ir;

namespace {

const char* kSeedText = R"(// seed
graph @fuzz(%x: f32[2,3], %idx: i64[2], %m: bool[2,3]) {
  param %fc.weight: f32[3,4] {init="uniform", scale=0.5, seed=7} loc("m.cpp:4")
  %c = constant() {value=dense<[0.0, 1.0, -2.5, 1e-05]>} : f32[4]
  %k = constant() {value=dense<[1, -2]>} : i32[2]
  %b = constant() {value=dense<[true, false]>} : bool[2]
  %z = constant() {value=dense<elided>} : f64[40]
  %0 = matmul(%x, %fc.weight) {transpose_lhs=0} : f32[2,4]
  %1 = add(%0, %c) : f32[2,4] loc("m.cpp:9")
  %2 = reduce_sum(%1) {axes=[1], keepdims=0} : f32[2]
  %3 = concat(%2, %2, %2) {axis=0} : f32[6]
  %4 = cast(%3) {dtype=bf16} : bf16[6]
  %5 = pad(%x) {high=[1, 0], low=[0, 1], value=-inf} : f32[3,4]
  %6 = gather(%x, %idx) {axis=0} : f32[2,3]
  %7 = select(%m, %x, %6) : f32[2,3]
  %8 = iota() {axis=1, dtype=i32, shape=[2, 2]} : i32[2,2]
  %9 = random_normal() {dtype=f32, mean=0, seed=3, shape=[2], std=1.5} : f32[2]
  %10 = reshape(%5) {shape=[12]} : f32[12]
  %11 = slice(%10) {limit=[12], start=[2], stride=[3]} : f32[4]
  %12 = transpose(%1) {perm=[1, 0]} : f32[4,2]
  %13 = reshape(%x) {shape=[1, 2, 3]} : f32[1,2,3]
  %14 = reshape(%x) {shape=[3, 2, 1]} : f32[3,2,1]
  %15 = conv(%13, %14) {dilation=[1], groups=1, padding=[0], stride=[1]} : f32[1,3,3]
  %16 = layer_norm(%x, %x, %x) {axis=0, eps=1e-05} : f32[2,3]
  %loss = mse_loss(%6, %7) {reduce="mean"} : f32[]
  return loss=%loss, out=%4, i=%8
}
)";

const char* kSnippets[] = {"%",     "%0",     "%x",      "[",       "]",      "{",        "}",     "(",
                           ")",     ",",      ":",       "=",       "\"",     "-",        "1e999", "f32",
                           "bool",  "dense<", "elided",  "//",      "\n",     "loc(",     "0",     "-1",
                           "1.5",   "concat", "param",   "return",  "@",      "inf",      "nan",   "\\",
                           "99999999999999999999",     "%1 = add(%0, %0) : f32[2]", "graph", "<", ">", "\t"};

/// Parses `text`; anything other than success or weft::Error fails the test. On success the
/// graph must be a fixed point of print -> parse -> print. Returns whether it parsed.
bool checkOne(const std::string& text) {
  try {
    Graph g = parseGraph(text, "fuzz.weft");
    std::string printed = printGraph(g);
    EXPECT_EQ(printGraph(parseGraph(printed, "reprinted.weft")), printed) << "input:\n" << text;
    return true;
  } catch (const weft::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("fuzz.weft:", 0), 0u) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-weft exception " << e.what() << " for input:\n" << text;
  }
  return false;
}

}  // namespace

TEST(TextFuzz, SeedTextParsesAndRoundTrips) {
  Graph g = parseGraph(kSeedText, "seed.weft");
  EXPECT_EQ(g.size(), 26);
  std::string printed = printGraph(g);
  EXPECT_EQ(printGraph(parseGraph(printed)), printed);
}

TEST(TextFuzz, EveryTruncationFailsCleanly) {
  std::string seed = kSeedText;
  for (size_t n = 0; n < seed.size(); ++n) checkOne(seed.substr(0, n));
}

TEST(TextFuzz, EveryDeletedCharacterFailsCleanlyOrParses) {
  std::string seed = kSeedText;
  int parsed = 0;
  for (size_t i = 0; i < seed.size(); ++i) parsed += checkOne(seed.substr(0, i) + seed.substr(i + 1));
  // Deleting a character of a comment, of a name or of a number often leaves valid text.
  EXPECT_GT(parsed, 100);
}

TEST(TextFuzz, RandomMutationsFailCleanlyOrParse) {
  std::mt19937 rng(20240611);
  std::string seed = kSeedText;
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  const size_t numSnippets = sizeof(kSnippets) / sizeof(kSnippets[0]);
  int parsed = 0;
  for (int iteration = 0; iteration < 4000; ++iteration) {
    std::string text = seed;
    int mutations = 1 + static_cast<int>(pick(3));
    for (int m = 0; m < mutations && !text.empty(); ++m) {
      size_t at = pick(text.size());
      switch (pick(5)) {
        case 0: text[at] = static_cast<char>(pick(256)); break;  // any byte
        case 1: text.insert(at, kSnippets[pick(numSnippets)]); break;
        case 2: text.erase(at, 1 + pick(8)); break;
        case 3: {  // duplicate a span somewhere else
          std::string span = text.substr(at, 1 + pick(40));
          text.insert(pick(text.size()), span);
          break;
        }
        default: text[at] = "0123456789-.e"[pick(13)];  // perturb numbers and names
      }
    }
    parsed += checkOne(text);
  }
  EXPECT_GT(parsed, 20);  // so the round-trip check of accepted texts ran too
}
