// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) and
// the two streams that random ops and parameter initializers draw from.
//
// Every backend must reproduce these formulas bit for bit:
//   block(key, hi, lo) = Philox4x32-10 with counter words
//       c0 = lo & 0xffffffff, c1 = lo >> 32, c2 = hi & 0xffffffff, c3 = hi >> 32
//   and key words k0 = key & 0xffffffff, k1 = key >> 32.
//   unit(a, b) = (((uint64)b << 32 | a) >> 11) * 2^-53, a double in [0, 1).
//   uniformAt(seed, step, i) = unit(w0, w1) of block(seed, step, i).
//   normalAt(seed, step, i)  = with w = block(seed, step ^ kNormalSalt, i):
//       sqrt(-2 ln(1 - unit(w0, w1))) * cos(2 pi unit(w2, w3))   (Box-Muller, in double).
#include "runtime/random.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace weft::runtime {

namespace {

constexpr uint32_t kMultiplier0 = 0xD2511F53u;
constexpr uint32_t kMultiplier1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr int kRounds = 10;

/// XORed into the step so that the normal stream never shares blocks with the uniform one.
constexpr uint64_t kNormalSalt = 0x6E6F726D616C5F31ull;  // "normal_1"

/// A double in [0, 1) from the top 53 bits of the 64-bit word (b:a).
double unitInterval(uint32_t a, uint32_t b) {
  uint64_t bits = (static_cast<uint64_t>(b) << 32) | a;
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

/// One Philox round on the counter words c0..c3 with the round's key words k0, k1, in place.
inline void philoxRound(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kMultiplier0) * c0;
  const uint64_t p1 = static_cast<uint64_t>(kMultiplier1) * c2;
  c0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
  c1 = static_cast<uint32_t>(p1);
  c2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
  c3 = static_cast<uint32_t>(p0);
}

}  // namespace

std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counterHi, uint64_t counterLo) {
  std::array<uint32_t, 4> c = {static_cast<uint32_t>(counterLo), static_cast<uint32_t>(counterLo >> 32),
                               static_cast<uint32_t>(counterHi), static_cast<uint32_t>(counterHi >> 32)};
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0) k0 += kWeyl0, k1 += kWeyl1;
    philoxRound(c[0], c[1], c[2], c[3], k0, k1);
  }
  return c;
}

namespace {

/// Draws at a time in the batched streams.
constexpr int kBatch = 16;

/// The four words of Philox blocks (key, hi, first + j) for j < count <= kBatch, word w of
/// block j in words[w][j]: philox4x32 over independent lanes, so that the rounds of a batch
/// overlap (and vectorize) instead of waiting on each other.
void philoxBatch(uint64_t key, uint64_t counterHi, uint64_t first, int count, uint32_t (&words)[4][kBatch]) {
  uint32_t c0[kBatch], c1[kBatch], c2[kBatch], c3[kBatch];
  for (int j = 0; j < kBatch; ++j) {
    const uint64_t lo = first + static_cast<uint64_t>(j < count ? j : 0);
    c0[j] = static_cast<uint32_t>(lo), c1[j] = static_cast<uint32_t>(lo >> 32);
    c2[j] = static_cast<uint32_t>(counterHi), c3[j] = static_cast<uint32_t>(counterHi >> 32);
  }
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0) k0 += kWeyl0, k1 += kWeyl1;
    for (int j = 0; j < kBatch; ++j) philoxRound(c0[j], c1[j], c2[j], c3[j], k0, k1);
  }
  for (int j = 0; j < kBatch; ++j) words[0][j] = c0[j], words[1][j] = c1[j], words[2][j] = c2[j], words[3][j] = c3[j];
}

}  // namespace

double uniformAt(uint64_t seed, uint64_t step, uint64_t index) {
  auto w = philox4x32(seed, step, index);
  return unitInterval(w[0], w[1]);
}

double normalAt(uint64_t seed, uint64_t step, uint64_t index) {
  auto w = philox4x32(seed, step ^ kNormalSalt, index);
  double u1 = unitInterval(w[0], w[1]);
  double u2 = unitInterval(w[2], w[3]);
  double radius = std::sqrt(-2.0 * std::log(1.0 - u1));  // 1 - u1 is in (0, 1]: no log(0)
  return radius * std::cos(2.0 * std::numbers::pi * u2);
}

void uniformsAt(uint64_t seed, uint64_t step, uint64_t first, int64_t count, double* out) {
  uint32_t w[4][kBatch];
  for (int64_t done = 0; done < count; done += kBatch) {
    const int n = static_cast<int>(std::min<int64_t>(kBatch, count - done));
    philoxBatch(seed, step, first + static_cast<uint64_t>(done), n, w);
    for (int j = 0; j < n; ++j) out[done + j] = unitInterval(w[0][j], w[1][j]);
  }
}

void normalsAt(uint64_t seed, uint64_t step, uint64_t first, int64_t count, double* out) {
  uint32_t w[4][kBatch];
  double squaredRadius[kBatch], angle[kBatch];
  for (int64_t done = 0; done < count; done += kBatch) {
    const int n = static_cast<int>(std::min<int64_t>(kBatch, count - done));
    philoxBatch(seed, step ^ kNormalSalt, first + static_cast<uint64_t>(done), n, w);
    // The expressions of normalAt, each over the batch (independent calls overlap).
    for (int j = 0; j < n; ++j) squaredRadius[j] = -2.0 * std::log(1.0 - unitInterval(w[0][j], w[1][j]));
    for (int j = 0; j < n; ++j) angle[j] = std::cos(2.0 * std::numbers::pi * unitInterval(w[2][j], w[3][j]));
    for (int j = 0; j < n; ++j) out[done + j] = std::sqrt(squaredRadius[j]) * angle[j];
  }
}

}  // namespace weft::runtime
