// Strided views of row-major buffers (ir/strided_view.h): transposes, slices and reshapes as
// dims, strides and offsets; reshapes that would need a copy; which views have no gaps.
#include "ir/strided_view.h"

#include <gtest/gtest.h>

#include "ir/graph.h"

using namespace weft::ir;

namespace {

/// The view of a row-major `shape` after the view ops `build` adds to a graph reading it.
std::optional<StridedView> viewAfter(const Shape& shape, const std::function<ValueId(Graph&, ValueId)>& build) {
  Graph g("view");
  ValueId x = g.addInput("x", {DType::f32, shape});
  ValueId last = build(g, x);
  std::vector<ValueId> chain;
  for (ValueId v = last; v != x; v = g.node(v).operands[0]) chain.insert(chain.begin(), v);
  StridedView view = rowMajorView(shape);
  for (ValueId v : chain) {
    std::optional<StridedView> next = applyViewOp(view, g.node(v));
    if (!next) return std::nullopt;
    view = *next;
  }
  return view;
}

ValueId slice(Graph& g, ValueId x, std::vector<int64_t> start, std::vector<int64_t> limit,
              std::vector<int64_t> step = {}) {
  if (step.empty()) step.assign(start.size(), 1);
  return g.addOp(OpKind::Slice, {x}, {{"start", start}, {"limit", limit}, {"stride", step}});
}
ValueId reshape(Graph& g, ValueId x, Shape shape) { return g.addOp(OpKind::Reshape, {x}, {{"shape", shape}}); }
ValueId transpose(Graph& g, ValueId x, std::vector<int64_t> perm) {
  return g.addOp(OpKind::Transpose, {x}, {{"perm", perm}});
}

}  // namespace

TEST(StridedView, AttentionHeadsOfAFusedQkv) {
  // k = transpose(reshape(slice(qkv [8,128,768], last dim 256..512), [8,128,4,64]), [0,2,1,3]).
  auto view = viewAfter({8, 128, 768}, [](Graph& g, ValueId x) {
    return transpose(g, reshape(g, slice(g, x, {0, 0, 256}, {8, 128, 512}), {8, 128, 4, 64}), {0, 2, 1, 3});
  });
  ASSERT_TRUE(view);
  EXPECT_EQ(view->dims, (Shape{8, 4, 128, 64}));
  EXPECT_EQ(view->strides, (Shape{98304, 64, 768, 1}));
  EXPECT_EQ(view->offset, 256);
  EXPECT_FALSE(isDenseView(*view));  // each row of 64 skips the other heads' 704 floats
}

TEST(StridedView, HeadsOfOneTensorAndBatchSlicesHaveNoGaps) {
  auto heads = viewAfter({8, 128, 256}, [](Graph& g, ValueId x) {
    return transpose(g, reshape(g, x, {8, 128, 4, 64}), {0, 2, 1, 3});
  });
  ASSERT_TRUE(heads);
  EXPECT_EQ(heads->strides, (Shape{32768, 64, 256, 1}));
  EXPECT_TRUE(isDenseView(*heads));
  auto half = viewAfter({8, 128, 256}, [](Graph& g, ValueId x) { return slice(g, x, {4, 0, 0}, {8, 128, 256}); });
  ASSERT_TRUE(half);
  EXPECT_EQ(half->offset, 4 * 128 * 256);
  EXPECT_TRUE(isDenseView(*half));
}

TEST(StridedView, RowsThatLieApartArePaddedRowMajor) {
  // Every other row: rows of 5 contiguous floats, 10 apart.
  auto rows = viewAfter({16, 5}, [](Graph& g, ValueId x) { return slice(g, x, {0, 0}, {16, 5}, {2, 1}); });
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->strides, (Shape{10, 1}));
  EXPECT_FALSE(isDenseView(*rows));
  EXPECT_TRUE(isPaddedRowMajorView(*rows));
  // Every other column: gaps inside a row.
  auto columns = viewAfter({16, 6}, [](Graph& g, ValueId x) { return slice(g, x, {0, 1}, {16, 6}, {1, 2}); });
  ASSERT_TRUE(columns);
  EXPECT_FALSE(isPaddedRowMajorView(*columns));
  // Heads split from a fused qkv and transposed: the batch of heads lies inside a row.
  auto heads = viewAfter({8, 128, 768}, [](Graph& g, ValueId x) {
    return transpose(g, reshape(g, slice(g, x, {0, 0, 256}, {8, 128, 512}), {8, 128, 4, 64}), {0, 2, 1, 3});
  });
  ASSERT_TRUE(heads);
  EXPECT_FALSE(isPaddedRowMajorView(*heads));
  // A dense row-major view is padded by nothing; a transposed one is not row-major.
  auto transposed = viewAfter({4, 6}, [](Graph& g, ValueId x) { return transpose(g, x, {1, 0}); });
  ASSERT_TRUE(transposed);
  EXPECT_TRUE(isPaddedRowMajorView(rowMajorView({4, 6})));
  EXPECT_FALSE(isPaddedRowMajorView(*transposed));
}

TEST(StridedView, ReshapesSplitAndMergeWhereTheStridesAllow) {
  // Merging the rows of a column slice: each row's 2 floats skip 2, so [3, 2] cannot be [6].
  EXPECT_FALSE(viewAfter({3, 4}, [](Graph& g, ValueId x) { return reshape(g, slice(g, x, {0, 0}, {3, 2}), {6}); }));
  // A transpose merged back needs a copy; split it does not.
  EXPECT_FALSE(viewAfter({2, 3}, [](Graph& g, ValueId x) { return reshape(g, transpose(g, x, {1, 0}), {6}); }));
  auto split = viewAfter({2, 6}, [](Graph& g, ValueId x) { return reshape(g, transpose(g, x, {1, 0}), {3, 2, 2}); });
  ASSERT_TRUE(split);
  EXPECT_EQ(split->strides, (Shape{2, 1, 6}));
  // Unit dims anywhere, in and out.
  auto units = viewAfter({1, 4, 1, 6}, [](Graph& g, ValueId x) { return reshape(g, x, {4, 1, 3, 2, 1}); });
  ASSERT_TRUE(units);
  EXPECT_EQ(units->dims, (Shape{4, 1, 3, 2, 1}));
  EXPECT_EQ(units->strides[0], 6);
  EXPECT_EQ(units->strides[2], 2);
  EXPECT_EQ(units->strides[3], 1);
  // Other ops are no views.
  EXPECT_FALSE(viewAfter({2, 2}, [](Graph& g, ValueId x) { return g.addOp(OpKind::Neg, {x}); }));
}
