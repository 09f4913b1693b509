// AlignedBuffer: vector-aligned heap buffers, huge-page aligned from 2 MiB on.
#include <gtest/gtest.h>

#include <cstdint>

#include "runtime/cpu/aligned_buffer.h"

using namespace weft;

TEST(AlignedBuffer, LargeBuffersAlignToHugePages) {
  cpu::AlignedBuffer small(1000), large(cpu::AlignedBuffer::kHugePage + 1, /*zeroed=*/false);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data()) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(large.data()) % cpu::AlignedBuffer::kHugePage, 0u);
  EXPECT_EQ(large.size(), cpu::AlignedBuffer::kHugePage + 1);
  large.data()[large.size() - 1] = 7;  // the last byte is ours
  EXPECT_EQ(small.data()[999], 0);
}
