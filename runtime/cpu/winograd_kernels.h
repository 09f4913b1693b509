#pragma once
/// The pieces the native Winograd steps (native_winograd.cpp, native_winograd_weight_grad.cpp)
/// share: F(4x4, 3x3)'s transforms (over Lanes<W>: AVX2's eight channels or AVX-512's
/// sixteen at a time; the weight and kernel transforms AVX2's), the tiling of a result plane
/// into 4x4 tiles, the input patches' transform and the register kernel of the 36 matrix
/// products. With the points xi = 6a + b of a 6x6 patch d and a 3x3 kernel g:
///   forward   y = A^T [(G g G^T) . (B^T d B)] A      (4x4 results of a tile)
///   gradient  dg = G^T [(A e A^T) . (B^T d B)] G     (e: the tile's 4x4 result gradients),
/// the second the transpose of the first: e . y = g . dg for every e and g.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "runtime/cpu/host_isa.h"
#include "runtime/cpu/prefetch.h"
#include "runtime/cpu/native_winograd.h"

namespace weft::cpu::winograd {

inline constexpr int64_t kPoints = 36;  ///< the 6x6 transformed points of a tile
inline constexpr int64_t kTile = 4;     ///< results per tile along each axis

#define WEFT_WINOGRAD_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

/// Vectors of one width for the width-generic transforms: `Lanes<Eights>` holds AVX2's eight
/// floats, `Lanes<Sixteens>` AVX-512's sixteen. Each width's operations carry its target; a
/// transform written once over Lanes<W> runs in a step with W's target and `flatten`, which
/// inlines every operation into it (no calls: the vectors stay in registers). An unoptimized
/// build inlines nothing: the generic transforms, compiled for no target, call the operations.
/// A struct of one vector would cross those calls in vector registers on one side and in
/// memory on the other (the psABI passes it in a register only where the target has the
/// vector's width: garbage results in Debug builds until stop 48); the copy constructor of
/// Lanes makes it a type every target passes and returns through memory.
template <class W>
struct Lanes {
  typename W::Vector v;
  Lanes() = default;
  Lanes(const typename W::Vector& x) : v(x) {}  // NOLINT: implicit, as the operations return {vector}
  Lanes(const Lanes& other) : v(other.v) {}
  Lanes& operator=(const Lanes& other) = default;
};

/// AVX2's width: eight floats.
struct Eights {
  using Vector = __m256;
  using L = Lanes<Eights>;
  static constexpr int64_t kFloats = 8;
  [[gnu::target("avx2,fma")]] static L load(const float* at) { return {_mm256_loadu_ps(at)}; }
  [[gnu::target("avx2,fma")]] static void store(float* at, const L& x) { _mm256_storeu_ps(at, x.v); }
  [[gnu::target("avx2,fma")]] static L splat(float f) { return {_mm256_set1_ps(f)}; }
  [[gnu::target("avx2,fma")]] static L add(const L& a, const L& b) { return {_mm256_add_ps(a.v, b.v)}; }
  [[gnu::target("avx2,fma")]] static L sub(const L& a, const L& b) { return {_mm256_sub_ps(a.v, b.v)}; }
  /// a * b + c, one rounding.
  [[gnu::target("avx2,fma")]] static L fmadd(const L& a, const L& b, const L& c) {
    return {_mm256_fmadd_ps(a.v, b.v, c.v)};
  }
  /// c - a * b, one rounding.
  [[gnu::target("avx2,fma")]] static L fnmadd(const L& a, const L& b, const L& c) {
    return {_mm256_fnmadd_ps(a.v, b.v, c.v)};
  }
  /// a * b - c, one rounding.
  [[gnu::target("avx2,fma")]] static L fmsub(const L& a, const L& b, const L& c) {
    return {_mm256_fmsub_ps(a.v, b.v, c.v)};
  }
  [[gnu::target("avx2,fma")]] static L mul(const L& a, const L& b) { return {_mm256_mul_ps(a.v, b.v)}; }
  /// max(x, 0): 0 for a NaN.
  [[gnu::target("avx2,fma")]] static L relu(const L& x) { return {_mm256_max_ps(x.v, _mm256_setzero_ps())}; }
};

/// AVX-512's width: sixteen floats.
struct Sixteens {
  using Vector = __m512;
  using L = Lanes<Sixteens>;
  static constexpr int64_t kFloats = 16;
  [[gnu::target("avx512f")]] static L load(const float* at) { return {_mm512_loadu_ps(at)}; }
  [[gnu::target("avx512f")]] static void store(float* at, const L& x) { _mm512_storeu_ps(at, x.v); }
  [[gnu::target("avx512f")]] static L splat(float f) { return {_mm512_set1_ps(f)}; }
  [[gnu::target("avx512f")]] static L add(const L& a, const L& b) { return {_mm512_add_ps(a.v, b.v)}; }
  [[gnu::target("avx512f")]] static L sub(const L& a, const L& b) { return {_mm512_sub_ps(a.v, b.v)}; }
  [[gnu::target("avx512f")]] static L fmadd(const L& a, const L& b, const L& c) {
    return {_mm512_fmadd_ps(a.v, b.v, c.v)};
  }
  [[gnu::target("avx512f")]] static L fnmadd(const L& a, const L& b, const L& c) {
    return {_mm512_fnmadd_ps(a.v, b.v, c.v)};
  }
  [[gnu::target("avx512f")]] static L fmsub(const L& a, const L& b, const L& c) {
    return {_mm512_fmsub_ps(a.v, b.v, c.v)};
  }
  [[gnu::target("avx512f")]] static L mul(const L& a, const L& b) { return {_mm512_mul_ps(a.v, b.v)}; }
  [[gnu::target("avx512f")]] static L relu(const L& x) {
    return {_mm512_mask_max_ps(x.v, 0xFFFF, x.v, _mm512_setzero_ps())};
  }
};

/// Whether a step's transforms run AVX-512's sixteen of `channels` at a time rather than AVX2's
/// eight: the CPU runs AVX-512 kernels (WEFT_CPU_ISA allowing) and the channels are a multiple
/// of sixteen.
inline bool runsSixteens(int64_t channels) { return hostHasAvx512() && channels % Sixteens::kFloats == 0; }

template <class W>
Lanes<W> operator+(const Lanes<W>& a, const Lanes<W>& b) {
  return W::add(a, b);
}
template <class W>
Lanes<W> operator-(const Lanes<W>& a, const Lanes<W>& b) {
  return W::sub(a, b);
}

/// r = A^T m for six vectors m (one row or column of a tile's products), any width.
template <class W>
void outputTransform(const Lanes<W> (&m)[6], Lanes<W> (&r)[4]) {
  const Lanes<W> sum12 = m[1] + m[2], diff12 = m[1] - m[2];
  const Lanes<W> sum34 = m[3] + m[4], diff34 = m[3] - m[4];
  r[0] = (m[0] + sum12) + sum34;
  r[1] = W::fmadd(W::splat(2), diff34, diff12);
  r[2] = W::fmadd(W::splat(4), sum34, sum12);
  r[3] = W::fmadd(W::splat(8), diff34, diff12) + m[5];
}

/// The epilogue's bias for result channels k0.. (W's width; zeros without one).
template <class W>
Lanes<W> epilogueBiasOf(const WinogradEpilogue& e, int64_t k0) {
  return !e.bias ? W::splat(0) : e.singleBias ? W::splat(*e.bias) : W::load(e.bias + k0);
}
/// Stores `value` + `bias` (+ the residual at `index`, then max(0, .) with a ReLU) at y + index
/// (W's width).
template <class W>
void storeResultOf(const WinogradEpilogue& e, const Lanes<W>& value, const Lanes<W>& bias, int64_t index, float* y) {
  Lanes<W> result = value + bias;
  if (e.residual) result = result + W::load(e.residual + index);
  if (e.relu) result = W::relu(result);
  W::store(y + index, result);
}

/// F(4x4, 3x3)'s input transform, as transformPatch takes it.
struct F43 {
  /// r = B^T d for six vectors d (one row or column of a patch), any width.
  template <class W>
  static void input(const Lanes<W> (&d)[6], Lanes<W> (&r)[6]) {
    const Lanes<W> two = W::splat(2), four = W::splat(4), five = W::splat(5);
    r[0] = W::fmadd(four, d[0], W::fnmadd(five, d[2], d[4]));
    r[1] = W::fnmadd(four, d[1] + d[2], d[3] + d[4]);
    r[2] = W::fmadd(four, d[1] - d[2], d[4] - d[3]);
    r[3] = W::fmadd(two, d[3] - d[1], d[4] - d[2]);
    r[4] = W::fmadd(two, d[1] - d[3], d[4] - d[2]);
    r[5] = W::fmadd(four, d[1], W::fnmadd(five, d[3], d[5]));
  }
};

/// r = G g for three vectors g (one row or column of a 3x3 kernel).
WEFT_WINOGRAD_INLINE void weightTransform(const __m256 (&g)[3], __m256 (&r)[6]) {
  const __m256 outer = _mm256_add_ps(g[0], g[2]);
  const __m256 sixth = _mm256_set1_ps(-1.0f / 6);
  r[0] = _mm256_mul_ps(_mm256_set1_ps(0.25f), g[0]);
  r[1] = _mm256_mul_ps(sixth, _mm256_add_ps(outer, g[1]));
  r[2] = _mm256_mul_ps(sixth, _mm256_sub_ps(outer, g[1]));
  const __m256 even = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 24), g[0], _mm256_mul_ps(_mm256_set1_ps(1.0f / 6), g[2]));
  const __m256 odd = _mm256_mul_ps(_mm256_set1_ps(1.0f / 12), g[1]);
  r[3] = _mm256_add_ps(even, odd);
  r[4] = _mm256_sub_ps(even, odd);
  r[5] = g[2];
}

/// r = A e for four vectors e (one row or column of a tile's result gradients).
WEFT_WINOGRAD_INLINE void gradientTransform(const __m256 (&e)[4], __m256 (&r)[6]) {
  const __m256 even = _mm256_add_ps(e[0], e[2]), odd = _mm256_add_ps(e[1], e[3]);
  const __m256 evenScaled = _mm256_fmadd_ps(_mm256_set1_ps(4), e[2], e[0]);
  const __m256 oddScaled = _mm256_fmadd_ps(_mm256_set1_ps(8), e[3], _mm256_mul_ps(_mm256_set1_ps(2), e[1]));
  r[0] = e[0];
  r[1] = _mm256_add_ps(even, odd);
  r[2] = _mm256_sub_ps(even, odd);
  r[3] = _mm256_add_ps(evenScaled, oddScaled);
  r[4] = _mm256_sub_ps(evenScaled, oddScaled);
  r[5] = e[3];
}

/// r = G^T w for six vectors w (one row or column of a kernel's transformed gradient).
WEFT_WINOGRAD_INLINE void kernelTransform(const __m256 (&w)[6], __m256 (&r)[3]) {
  const __m256 sixth = _mm256_set1_ps(1.0f / 6);
  const __m256 sum12 = _mm256_add_ps(w[1], w[2]), diff12 = _mm256_sub_ps(w[2], w[1]);
  const __m256 sum34 = _mm256_add_ps(w[3], w[4]), diff34 = _mm256_sub_ps(w[3], w[4]);
  // z0 = w0/4 - (w1+w2)/6 + (w3+w4)/24; z1 = (w2-w1)/6 + (w3-w4)/12; z2 = (w3+w4-w1-w2)/6 + w5
  r[0] = _mm256_fmadd_ps(
      _mm256_set1_ps(0.25f), w[0],
      _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 24), sum34, _mm256_mul_ps(_mm256_set1_ps(-1.0f / 6), sum12)));
  r[1] = _mm256_fmadd_ps(sixth, diff12, _mm256_mul_ps(_mm256_set1_ps(1.0f / 12), diff34));
  r[2] = _mm256_fmadd_ps(sixth, _mm256_sub_ps(sum34, sum12), w[5]);
}

/// columns[b] = Transform down column b of a tile's Side x Side points, eight channels each:
/// point a * Side + b at at + (a * Side + b) * pointStride. Loops unrolled: the vectors stay
/// in registers.
template <int Side, int Out, void (*Transform)(const __m256 (&)[Side], __m256 (&)[Out])>
WEFT_WINOGRAD_INLINE void transformPointColumns(const float* at, int64_t pointStride,
                                                __m256 (&columns)[Side][Out]) {
#pragma GCC unroll 8
  for (int b = 0; b < Side; ++b) {
    __m256 column[Side];
#pragma GCC unroll 8
    for (int a = 0; a < Side; ++a) column[a] = _mm256_loadu_ps(at + (a * Side + b) * pointStride);
    Transform(column, columns[b]);
  }
}

/// The epilogue's bias for result channels k0..k0 + 8 (zeros without one).
WEFT_WINOGRAD_INLINE __m256 epilogueBias(const WinogradEpilogue& e, int64_t k0) {
  return !e.bias ? _mm256_setzero_ps() : e.singleBias ? _mm256_broadcast_ss(e.bias) : _mm256_loadu_ps(e.bias + k0);
}

/// Stores `value` + `bias` (+ the residual at `index`, then max(0, .) with a ReLU) at y + index.
WEFT_WINOGRAD_INLINE void storeResult(const WinogradEpilogue& e, __m256 value, __m256 bias, int64_t index, float* y) {
  value = _mm256_add_ps(value, bias);
  if (e.residual) value = _mm256_add_ps(value, _mm256_loadu_ps(e.residual + index));
  if (e.relu) value = _mm256_max_ps(value, _mm256_setzero_ps());
  _mm256_storeu_ps(y + index, value);
}

/// Floats from one point's part of the transformed weights (or of their gradient's sums) to
/// the next: C x K and a cache line more (at a power-of-two stride all 36 parts began in one
/// set of the L1 cache, and the weight transform's 36 stores missed it).
inline int64_t weightPointStride(const WinogradShape& s) { return s.channels * s.outChannels + 16; }

/// Floats from one point's part of a block's transformed tiles (V, P or M: `tiles` rows of
/// `channels`) to the next: a cache line more than they fill, for the same reason (resnet's
/// blocks of 16 tiles of 128 channels, or 32 of 64, are 8 KiB a point).
inline int64_t tilePointStride(int64_t tiles, int64_t channels) { return tiles * channels + 16; }

/// Whether a plane of `extent` results along an axis ends in a line that a row (column) of
/// 4x4 tiles would hold alone: one more than a multiple of four, from 9 on.
inline bool lastLineAlone(int64_t extent) { return extent > kTile * 2 && extent % kTile == 1; }

/// `images` result planes of `down` x `across` results in tiles of `tile` x `tile`: tile t of
/// image n at row t / tilesAcross, column t % tilesAcross (of tiles).
struct TileGrid {
  int64_t tile = 0, tilesDown = 0, tilesAcross = 0, tiles = 0;  ///< per column and row of an image; in all

  TileGrid(int64_t images, int64_t down, int64_t across, int64_t size)
      : tile(size),
        tilesDown((down + size - 1) / size),
        tilesAcross((across + size - 1) / size),
        tiles(images * tilesDown * tilesAcross) {}
  /// Tile `t`'s image and its first result row and column.
  void locate(int64_t t, int64_t& image, int64_t& top, int64_t& left) const {
    const int64_t perImage = tilesDown * tilesAcross, inImage = t % perImage;
    image = t / perImage;
    top = inImage / tilesAcross * tile;
    left = inImage % tilesAcross * tile;
  }
};

/// How many tiles ahead of its transform a step asks the cache for a tile's data
/// (prefetchPatch). A weight gradient reads x long after the forward pass wrote it: on the AMD
/// EPYC Zen 4 of stop 48 resnet's 32-channel ones spent 1.85 Mcycles a worker in their
/// transforms in the training step against 0.9 with the data in the cache; 2, 4 or 8 tiles
/// ahead, 1.25-1.33.
constexpr int64_t kPrefetchTiles = 4;

/// Asks the L2 cache for the part inside the plane of a `side` x `side` patch of NHWC data
/// (`height` x `width` pixels of `channels` floats) whose first row and column lie `padTop`
/// and `padLeft` before those of tile `tile` of `grid`: of a tile after the first of its row,
/// only the columns the tile before it did not read.
inline void prefetchPatch(const TileGrid& grid, int64_t tile, const float* data, int64_t height, int64_t width,
                          int64_t channels, int64_t side, int64_t padTop, int64_t padLeft) {
  int64_t image, top, left;
  grid.locate(tile, image, top, left);
  const int64_t seen = left == 0 ? 0 : std::max<int64_t>(0, side - grid.tile);  // columns the tile before read
  top -= padTop, left -= padLeft;
  const int64_t aFirst = std::max<int64_t>(0, -top), aEnd = std::min(side, height - top);
  const int64_t bFirst = std::max({int64_t{0}, -left, seen}), bEnd = std::min(side, width - left);
  if (aEnd > aFirst && bEnd > bFirst)
    prefetchRows(data + ((image * height + top + aFirst) * width + left + bFirst) * channels, aEnd - aFirst,
                 (bEnd - bFirst) * channels, width * channels);
}

/// A result plane in 4x4 tiles.
struct Tiling : TileGrid {
  WinogradShape s;

  /// The tiles of `shape`'s result planes; with `leaveLoneLines`, those of a last row and
  /// column that a row (column) of tiles would hold alone (lastLineAlone) are left out.
  explicit Tiling(const WinogradShape& shape, bool leaveLoneLines = false)
      : TileGrid(shape.images, shape.outHeight - (leaveLoneLines && lastLineAlone(shape.outHeight)),
                 shape.outWidth - (leaveLoneLines && lastLineAlone(shape.outWidth)), kTile),
        s(shape) {}
};

/// V's points for one vector of channels (W's width) of one Side x Side patch: B^T d B
/// (F::input applying B^T to one row or column) of the vectors `load(a, b)` gives, stored at
/// out + (a * Side + b) * pointStride. Every loop is unrolled: the patch's vectors stay in
/// registers (a runtime-indexed array of vectors lives on the stack), or where they do not fit
/// (F(7x7, 2x2)'s 64) the compiler spills them. Runs inside a step with W's target and
/// gnu::flatten (Lanes).
template <class W, int Side, class F, typename Load>
void transformPatch(Load load, float* out, int64_t pointStride) {
  Lanes<W> columns[Side][Side];  // B^T applied down each column of the patch
#pragma GCC unroll 8
  for (int b = 0; b < Side; ++b) {
    Lanes<W> d[Side];
#pragma GCC unroll 8
    for (int a = 0; a < Side; ++a) d[a] = load(a, b);
    F::template input<W>(d, columns[b]);
  }
#pragma GCC unroll 8
  for (int a = 0; a < Side; ++a) {
    Lanes<W> d[Side], r[Side];
#pragma GCC unroll 8
    for (int b = 0; b < Side; ++b) d[b] = columns[b][a];
    F::template input<W>(d, r);
#pragma GCC unroll 8
    for (int b = 0; b < Side; ++b) W::store(out + (a * Side + b) * pointStride, r[b]);
  }
}

/// One vector of channels (W's width) of a patch's row a, column b, all inside the image.
template <class W>
struct InteriorLoad {
  const float* at;
  int64_t rowStride, columnStride;
  Lanes<W> operator()(int a, int b) const { return W::load(at + a * rowStride + b * columnStride); }
};

/// One vector of channels of a patch's row a, column b: zeros outside rows aFirst..aEnd,
/// columns bFirst..bEnd.
template <class W>
struct BorderLoad {
  InteriorLoad<W> inside;
  int64_t aFirst, aEnd, bFirst, bEnd;
  Lanes<W> operator()(int a, int b) const {
    return a >= aFirst && a < aEnd && b >= bFirst && b < bEnd ? inside(a, b) : W::splat(0);
  }
};

/// V[xi][row][c] = B^T d B for the input patch of tile `tile`, every channel (AVX2's eight at a
/// time); a point's rows lie pointStride floats apart. (One call a tile: the tile's place,
/// two divisions, is found once for all its channels.) A patch inside the image loads
/// without bounds checks.
[[gnu::target("avx2,fma"), gnu::flatten]] inline void transformInput(const Tiling& tiling, const float* x,
                                                                      int64_t tile, float* v, int64_t row,
                                                                      int64_t pointStride) {
  const WinogradShape& s = tiling.s;
  int64_t image, top, left;
  tiling.locate(tile, image, top, left);
  top -= s.padTop, left -= s.padLeft;
  // The patch's rows aFirst..aEnd and columns bFirst..bEnd lie in the image; the rest are zeros.
  const int64_t aFirst = std::max<int64_t>(0, -top), aEnd = std::min<int64_t>(6, s.height - top);
  const int64_t bFirst = std::max<int64_t>(0, -left), bEnd = std::min<int64_t>(6, s.width - left);
  const float* patch = x + ((image * s.height + top) * s.width + left) * s.channels;  // may lie before x's image
  const int64_t rowStride = s.width * s.channels, C = s.channels;
  float* out = v + row * s.channels;
  if (aFirst == 0 && aEnd == 6 && bFirst == 0 && bEnd == 6) {
    for (int64_t c0 = 0; c0 < C; c0 += Eights::kFloats)
      transformPatch<Eights, 6, F43>(InteriorLoad<Eights>{patch + c0, rowStride, C}, out + c0, pointStride);
    return;
  }
  for (int64_t c0 = 0; c0 < C; c0 += Eights::kFloats)
    transformPatch<Eights, 6, F43>(BorderLoad<Eights>{{patch + c0, rowStride, C}, aFirst, aEnd, bFirst, bEnd},
                                   out + c0, pointStride);
}

/// c[rows x columns] (+)= a[rows x depth] * b[depth x columns], the register kernel of every
/// native Winograd step (winograd_multiply.cpp): a's element (r, i) at a[r * rowStride + i *
/// depthStride], b's rows ldb apart, c's ldc; Accumulate adds to c instead of storing. `rows`
/// from 1 to multiplyRowsAtATime(), `columns` 16 or 32 (32 only where multiplyColumns() is).
template <bool Accumulate>
void multiplySomeRows(int64_t rows, int64_t columns, const float* a, int64_t rowStride, int64_t depthStride,
                      const float* b, int64_t ldb, int64_t depth, float* c, int64_t ldc);
extern template void multiplySomeRows<false>(int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t,
                                             int64_t, float*, int64_t);
extern template void multiplySomeRows<true>(int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t,
                                            int64_t, float*, int64_t);

/// How many columns the callers of multiplySomeRows hand it at a time: 32 where its AVX-512
/// kernels run, 16 (the AVX2 kernels' width) elsewhere.
inline int64_t multiplyColumns() { return hostHasAvx512() ? 32 : 16; }

/// The most rows multiplySomeRows takes: 12 where its AVX-512 kernels run (24 sums of 32
/// registers), 6 with AVX2 (12 of 16).
inline int64_t multiplyRowsAtATime() { return hostHasAvx512() ? 12 : 6; }

/// Calls fn(first, rows) for groups of rows covering 0..total, multiplyRowsAtATime() (R) at a
/// time but for the last two, evened out where a group of fewer than R / 2 would remain (with
/// R = 6: 7 -> 4 + 3, 8 -> 4 + 4, 9 -> 5 + 4): few rows hold too few sums to keep both FMA
/// pipes busy. On the AMD EPYC resnet's blocks of 32 tiles ran their last two rows at half
/// the rate of the rest.
template <typename Fn>
inline void forEachRowGroup(int64_t total, Fn fn) {
  const int64_t most = multiplyRowsAtATime();
  for (int64_t first = 0; first < total;) {
    const int64_t left = total - first;
    const int64_t rows = left > most + most / 2 || left <= most ? std::min(most, left) : (left + 1) / 2;
    fn(first, rows);
    first += rows;
  }
}

}  // namespace weft::cpu::winograd
