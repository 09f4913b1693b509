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
// ln and cos are this file's own (logOfPositive, cosOfTurns), within a few double ulps of the
// true values: rounded to f32, the draws are those of the formula with libm's ln and cos
// (random_test allows 5 differences in 200k and measured none). They have no branches, so
// the batched streams run them in vector lanes (target clones for x86-64-v4 and v3); the file
// is compiled without contracting multiply-adds into FMAs, so every clone and every CPU
// computes the same bits.
#include "runtime/random.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace weft::runtime {

namespace {

constexpr uint32_t kMultiplier0 = 0xD2511F53u;
constexpr uint32_t kMultiplier1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr int kRounds = 10;

/// XORed into the step so that the normal stream never shares blocks with the uniform one.
constexpr uint64_t kNormalSalt = 0x6E6F726D616C5F31ull;  // "normal_1"

/// ln(x) for a positive normal double x: x = 2^k (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)),
/// then ln(1 + f) = 2 atanh(s), s = f / (2 + f), by fdlibm's minimax polynomial in s^2 (its
/// published coefficients), with ln 2 split in two so that k ln 2 is nearly exact.
__attribute__((always_inline)) inline double logOfPositive(double x) {
  const auto bits = std::bit_cast<uint64_t>(x);
  // The exponent k of x / sqrt(1/2), so that the mantissa lands in [sqrt(1/2), sqrt(2)): the
  // arithmetic shift of bits - that constant, done as a logical one of it plus 2^63 (AVX2
  // shifts 64-bit lanes logically only), then k as a double through the bits of 2^52 + k
  // (AVX2 converts no 64-bit integers): the same numbers, in vector lanes.
  const uint64_t biased = ((bits - 0x3FE6A09E667F3BCDull) ^ 0x8000000000000000ull) >> 52;  // k + 2048
  const uint64_t k = biased - 2048;  // two's complement
  const double m = std::bit_cast<double>(bits - (k << 52));
  const double f = m - 1.0, s = f / (2.0 + f), z = s * s, w = z * z;
  const double even = w * (0.3999999999940941908 + w * (0.2222219843214978396 + w * 0.1531383769920937332));
  const double odd = z * (0.6666666666666735130 + w * (0.2857142874366239149 +
                                                       w * (0.1818357216161805012 + w * 0.1479819860511658591)));
  // 1.5 * 2^52 + k stays in [2^52, 2^53), where doubles are the integers: exact for |k| < 2^51.
  constexpr double kShift = 0x1.8p52;
  const double kd = std::bit_cast<double>(std::bit_cast<uint64_t>(kShift) + k) - kShift;
  const double r = even + odd, halfSquare = 0.5 * f * f;
  return kd * 6.93147180369123816490e-01 - ((halfSquare - (s * (halfSquare + r) + kd * 1.90821492927058770002e-10)) - f);
}

/// cos(2 pi u) for u in [0, 1): u = q / 4 + t with q = round(4u) and |t| <= 1/8 (exact), then
/// cos or -sin (by q) of x = 2 pi t, |x| <= pi / 4, by fdlibm's minimax polynomials.
__attribute__((always_inline)) inline double cosOfTurns(double u) {
  constexpr double kRound = 0x1.8p52;  // adding and subtracting it rounds to an integer (ties even)
  const double q = (4.0 * u + kRound) - kRound, t = u - 0.25 * q;
  const double x = t * 6.28318530717958623200;  // 2 pi t, rounded once
  const double z = x * x;
  const double sinPoly = -1.66666666666666324348e-01 +
      z * (8.33333333332248946124e-03 + z * (-1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 +
           z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10))));
  const double sine = x + x * z * sinPoly;
  const double cosPoly = z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 +
      z * (2.48015872894767294178e-05 + z * (-2.75573143513906633035e-07 + z * (2.08757232129817482790e-09 +
           z * -1.13596475577881948265e-11)))));
  const double half = 0.5 * z, w = 1.0 - half;
  const double cosine = w + (((1.0 - w) - half) + z * cosPoly);
  // cos(x + q pi / 2) = cos x, -sin x, -cos x, sin x for q = 0, 1, 2, 3 (and cos x for 4),
  // picked by comparisons of q and bit masks (no branch, no integer conversion: vector lanes).
  const uint64_t odd = 0 - static_cast<uint64_t>((q == 1.0) | (q == 3.0));  // all ones or none
  const uint64_t negative = static_cast<uint64_t>((q == 1.0) | (q == 2.0)) << 63;
  const uint64_t value = (std::bit_cast<uint64_t>(sine) & odd) | (std::bit_cast<uint64_t>(cosine) & ~odd);
  return std::bit_cast<double>(value ^ negative);
}

/// One standard normal from two uniforms in [0, 1) (Box-Muller).
__attribute__((always_inline)) inline double boxMuller(double u1, double u2) {
  return std::sqrt(-2.0 * logOfPositive(1.0 - u1)) * cosOfTurns(u2);  // 1 - u1 is in (0, 1]: no log(0)
}

/// A double in [0, 1) from the top 53 bits of the 64-bit word (b:a): (bits >> 11) * 2^-53,
/// formed as the top 52 bits in a mantissa (1.m - 1 = m 2^-52, exact) plus the 53rd times
/// 2^-53 (exact: the sum has 53 significant bits), since AVX2 converts no 64-bit integers.
double unitInterval(uint32_t a, uint32_t b) {
  const uint64_t bits = (static_cast<uint64_t>(b) << 32) | a;
  const double top = std::bit_cast<double>((bits >> 12) | 0x3FF0000000000000ull) - 1.0;
  const uint64_t lowest = 0 - ((bits >> 11) & 1);  // the 53rd bit as all ones or none
  return top + std::bit_cast<double>(lowest & std::bit_cast<uint64_t>(0x1.0p-53));
}

/// Eight 64-bit lanes (GCC's vector extension: one AVX-512 register, four SSE2 pairs).
using Lanes = uint64_t __attribute__((vector_size(64)));
constexpr int kLanes = 8;

/// Philox4x32-10's rounds on counter words c0..c3 (each in the low 32 bits of a uint64_t, or
/// of every lane of Lanes: eight blocks at once) with key `key`, in place. The products are
/// exact in 64 bits, both factors being below 2^32.
template <class Words>
__attribute__((always_inline)) inline void philoxRounds(Words& c0, Words& c1, Words& c2, Words& c3, uint64_t key) {
  uint64_t k0 = static_cast<uint32_t>(key), k1 = key >> 32;
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0) k0 = static_cast<uint32_t>(k0 + kWeyl0), k1 = static_cast<uint32_t>(k1 + kWeyl1);
    const Words p0 = c0 * uint64_t{kMultiplier0}, p1 = c2 * uint64_t{kMultiplier1};
    c0 = (p1 >> 32) ^ c1 ^ k0;
    c1 = p1 & uint64_t{0xffffffff};
    c2 = (p0 >> 32) ^ c3 ^ k1;
    c3 = p0 & uint64_t{0xffffffff};
  }
}

}  // namespace

std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counterHi, uint64_t counterLo) {
  uint64_t c0 = counterLo & 0xffffffff, c1 = counterLo >> 32, c2 = counterHi & 0xffffffff, c3 = counterHi >> 32;
  philoxRounds(c0, c1, c2, c3, key);
  return {static_cast<uint32_t>(c0), static_cast<uint32_t>(c1), static_cast<uint32_t>(c2), static_cast<uint32_t>(c3)};
}

namespace {

/// Draws at a time in the batched streams.
constexpr int kBatch = 16;

/// The four words of Philox blocks (key, hi, first + j) for j < count <= kBatch, word w of
/// block j in words[w][j]: philox4x32 over independent lanes, so that the rounds of a batch
/// overlap (and vectorize) instead of waiting on each other.
__attribute__((always_inline)) inline void philoxBatch(uint64_t key, uint64_t counterHi, uint64_t first, int count,
                                                      uint32_t (&words)[4][kBatch]) {
  static_assert(kBatch % kLanes == 0);
  for (int half = 0; half < kBatch; half += kLanes) {
    Lanes c0, c1, c2, c3;
    for (int j = 0; j < kLanes; ++j) {
      const uint64_t lo = first + static_cast<uint64_t>(half + j < count ? half + j : 0);
      c0[j] = lo & 0xffffffff, c1[j] = lo >> 32, c2[j] = counterHi & 0xffffffff, c3[j] = counterHi >> 32;
    }
    philoxRounds(c0, c1, c2, c3, key);
    for (int j = 0; j < kLanes; ++j) {
      words[0][half + j] = static_cast<uint32_t>(c0[j]), words[1][half + j] = static_cast<uint32_t>(c1[j]);
      words[2][half + j] = static_cast<uint32_t>(c2[j]), words[3][half + j] = static_cast<uint32_t>(c3[j]);
    }
  }
}

}  // namespace

double uniformAt(uint64_t seed, uint64_t step, uint64_t index) {
  auto w = philox4x32(seed, step, index);
  return unitInterval(w[0], w[1]);
}

double normalAt(uint64_t seed, uint64_t step, uint64_t index) {
  auto w = philox4x32(seed, step ^ kNormalSalt, index);
  return boxMuller(unitInterval(w[0], w[1]), unitInterval(w[2], w[3]));
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void uniformsAt(uint64_t seed, uint64_t step, uint64_t first, int64_t count, double* out) {
  uint32_t w[4][kBatch];
  for (int64_t done = 0; done < count; done += kBatch) {
    const int n = static_cast<int>(std::min<int64_t>(kBatch, count - done));
    philoxBatch(seed, step, first + static_cast<uint64_t>(done), n, w);
    for (int j = 0; j < n; ++j) out[done + j] = unitInterval(w[0][j], w[1][j]);
  }
}

// The clones compute several draws per instruction; without contraction into FMAs (see the
// top) their numbers are the default clone's and normalAt's.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void normalsAt(uint64_t seed, uint64_t step, uint64_t first, int64_t count, double* out) {
  uint32_t w[4][kBatch];
  for (int64_t done = 0; done < count; done += kBatch) {
    const int n = static_cast<int>(std::min<int64_t>(kBatch, count - done));
    philoxBatch(seed, step ^ kNormalSalt, first + static_cast<uint64_t>(done), n, w);
    double draws[kBatch];
    for (int j = 0; j < kBatch; ++j) draws[j] = boxMuller(unitInterval(w[0][j], w[1][j]), unitInterval(w[2][j], w[3][j]));
    std::copy_n(draws, n, out + done);
  }
}

}  // namespace weft::runtime
