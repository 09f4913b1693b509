#pragma once
/// Software prefetches for steps whose data was written long before they run (a training
/// step's backward pass reading its forward pass's activations): issued a little ahead of
/// the loads, they overlap memory's latency with the arithmetic before them.
#include <cstdint>

namespace weft::cpu {

/// Asks the L2 cache for the line holding `at`. (An asm statement: GCC deletes a loop of
/// __builtin_prefetch calls as one without effects, and with it the prefetches. The address
/// goes in a register, not as a memory operand: with one, GCC 12 kept a 12 x 2 register tile
/// of accumulators in memory around the statement, stores each iteration (stop 49's sketch
/// of a weight gradient prefetching as it sums).)
inline void prefetchLine(const void* at) { asm volatile("prefetcht1 (%0)" : : "r"(at)); }

/// Asks the L2 cache for `rows` rows of `floats` floats, `stride` floats apart, from `at`.
inline void prefetchRows(const float* at, int64_t rows, int64_t floats, int64_t stride) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t f = 0; f < floats; f += 16) prefetchLine(at + r * stride + f);
}

}  // namespace weft::cpu
