#pragma once
/// Counter-based random numbers (Philox4x32-10), keyed by seed and step, so that every
/// backend draws the same numbers for the same op.
#include <array>
#include <cstdint>

namespace weft::runtime {

/// One Philox4x32-10 block: four 32-bit words from a 64-bit key and a 128-bit counter.
std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counterHi, uint64_t counterLo);

/// Element `index` of the uniform stream [0, 1) of a random op with `seed`, at `step`.
double uniformAt(uint64_t seed, uint64_t step, uint64_t index);
/// Element `index` of the standard-normal stream of a random op with `seed`, at `step`.
double normalAt(uint64_t seed, uint64_t step, uint64_t index);

/// Elements `first` to `first + count - 1` of the uniform stream, into `out`: uniformAt's
/// numbers bit for bit, drawn a batch at a time (independent Philox blocks side by side, in
/// vector lanes: 4 ns a draw on AVX-512 against 6 one block at a time).
void uniformsAt(uint64_t seed, uint64_t step, uint64_t first, int64_t count, double* out);
/// Elements `first` to `first + count - 1` of the standard-normal stream, into `out`:
/// normalAt's numbers bit for bit, in vector lanes like uniformsAt, the logarithms and
/// cosines included: 7.8 ns a draw on AVX-512 (Intel Xeon, stop 26), where normalAt's
/// formula with the C library's log and cos took 30 one at a time and 22 in batches; on AVX2
/// too (no 64-bit integer conversions or arithmetic shifts there: random.cpp forms them from
/// bit patterns), 25088 draws 0.53 -> 0.22 ms on 2 threads of the AMD EPYC.
void normalsAt(uint64_t seed, uint64_t step, uint64_t first, int64_t count, double* out);

}  // namespace weft::runtime
