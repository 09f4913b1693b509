// Splitting a batch's assembly into one text per kernel (--dump-asm): each kernel gets its
// function and its packed entry with the directives and constant pools before each; the
// module's header and trailer stay in the texts; local labels never start a function.
#include "backends/cpu/codegen/assembly_split.h"

#include <gtest/gtest.h>

using weft::cpu::codegen::splitAssemblyByKernel;

namespace {

const char* const kBatch =
    "\t.text\n"
    "\t.file\t\"weft_kernels\"\n"
    "\t.section\t.rodata.cst4,\"aM\",@progbits,4\n"
    ".LCPI0_0:\n"
    "\t.long\t0x3f800000\n"
    "\t.globl\tk_a\n"
    "k_a:\n"
    ".LBB0_1:\n"
    "\tvaddps\t.LCPI0_0(%rip), %zmm0, %zmm0\n"
    ".Lfunc_end0:\n"
    "\t.size\tk_a, .Lfunc_end0-k_a\n"
    "\t.globl\tk_b\n"
    "k_b:\n"
    "\tretq\n"
    ".Lfunc_end1:\n"
    "\t.size\tk_b, .Lfunc_end1-k_b\n"
    "\t.globl\tk_a_packed\n"
    "k_a_packed:\n"
    "\tjmpq\t*%r9\n"
    ".Lfunc_end2:\n"
    "\t.size\tk_a_packed, .Lfunc_end2-k_a_packed\n"
    "\t.globl\tk_b_packed\n"
    "k_b_packed:\n"
    "\tjmpq\t*%r9\n"
    ".Lfunc_end3:\n"
    "\t.size\tk_b_packed, .Lfunc_end3-k_b_packed\n"
    "\n"
    "\t.section\t\".note.GNU-stack\",\"\",@progbits\n";

}  // namespace

TEST(AssemblySplit, EachKernelGetsItsFunctionItsEntryAndTheirConstants) {
  auto texts = splitAssemblyByKernel(kBatch, {"k_a", "k_b"});
  ASSERT_EQ(texts.size(), 2u);
  const std::string &a = texts.at("k_a"), &b = texts.at("k_b");
  EXPECT_EQ(a,
            "\t.text\n\t.file\t\"weft_kernels\"\n\t.section\t.rodata.cst4,\"aM\",@progbits,4\n.LCPI0_0:\n"
            "\t.long\t0x3f800000\n\t.globl\tk_a\nk_a:\n.LBB0_1:\n\tvaddps\t.LCPI0_0(%rip), %zmm0, %zmm0\n"
            ".Lfunc_end0:\n\t.size\tk_a, .Lfunc_end0-k_a\n\t.globl\tk_a_packed\nk_a_packed:\n\tjmpq\t*%r9\n"
            ".Lfunc_end2:\n\t.size\tk_a_packed, .Lfunc_end2-k_a_packed\n");
  EXPECT_EQ(b,
            "\t.globl\tk_b\nk_b:\n\tretq\n.Lfunc_end1:\n\t.size\tk_b, .Lfunc_end1-k_b\n\t.globl\tk_b_packed\n"
            "k_b_packed:\n\tjmpq\t*%r9\n.Lfunc_end3:\n\t.size\tk_b_packed, .Lfunc_end3-k_b_packed\n\n"
            "\t.section\t\".note.GNU-stack\",\"\",@progbits\n");
}

TEST(AssemblySplit, FunctionsOfOtherNamesGetTheirOwnText) {
  auto texts = splitAssemblyByKernel(kBatch, {"k_a"});
  EXPECT_EQ(texts.size(), 3u);  // k_a, k_b and k_b_packed
  EXPECT_NE(texts.at("k_b_packed").find("k_b_packed:"), std::string::npos);
  EXPECT_TRUE(splitAssemblyByKernel("", {"k_a"}).empty());
}
