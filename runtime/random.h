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

}  // namespace weft::runtime
