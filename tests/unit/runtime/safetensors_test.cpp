#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "ir/error.h"
#include "runtime/safetensors.h"

using namespace weft::ir;
using namespace weft::runtime;
namespace fs = std::filesystem;

namespace {

struct SafetensorsTempDir {
  fs::path path;
  SafetensorsTempDir() {
    path = fs::temp_directory_path() / ("weft_safetensors_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~SafetensorsTempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

TensorData filled(DType d, Shape shape) {
  TensorData t(TensorType{d, std::move(shape)});
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, d == DType::boolean ? i % 3 == 0 : (i - 2) * 1.25);
  return t;
}

/// A safetensors file from a header text (not padded) and a data section.
std::string fileOf(const std::string& header, const std::string& data) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string errorOf(const std::string& bytes, const std::string& what = "m.safetensors") {
  try {
    loadSafetensorsFromMemory(bytes, what);
  } catch (const weft::Error& e) {
    return e.what();
  }
  return "<no error>";
}

/// Two tensors "a" f32[2] at [0,8) and "b" i32[1] at [8,12).
const char* kTwoTensorHeader =
    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})";

TensorMap sampleState() {
  return {{"layer.weight", filled(DType::f32, {3, 2})},
          {"layer.bias", filled(DType::f32, {2})},
          {"step", filled(DType::i64, {})},
          {"mask", filled(DType::boolean, {5})}};
}

}  // namespace

TEST(Safetensors, ExactBytesOfASmallFile) {
  TensorData a(TensorType{DType::f32, {2}});
  a.as<float>()[0] = 1.0f;
  a.as<float>()[1] = 2.0f;
  std::string bytes = serializeSafetensors({{"a", a}});
  // 54 bytes of JSON padded with 2 spaces to 56 = 0x38; then 1.0f and 2.0f little-endian.
  std::string expected("\x38\0\0\0\0\0\0\0", 8);
  expected += R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expected += "  ";
  expected += std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  EXPECT_EQ(bytes, expected);
}

TEST(Safetensors, ExactBytesWithMetadataAndNameOrder) {
  TensorData b(TensorType{DType::boolean, {1}});
  b.as<uint8_t>()[0] = 7;  // stored as 1
  TensorData a(TensorType{DType::i64, {}});
  a.as<int64_t>()[0] = -2;
  std::string bytes = serializeSafetensors({{"b", b}, {"a", a}}, {{"format", "pt"}});
  std::string header = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"BOOL","shape":[1],"data_offsets":[8,9]}})";
  ASSERT_EQ(header.size(), 138u);  // 32 + 52 + 54 bytes, padded with 6 spaces to 144 = 0x90
  std::string expected("\x90\0\0\0\0\0\0\0", 8);
  expected += header + "      ";
  expected += std::string("\xfe\xff\xff\xff\xff\xff\xff\xff\x01", 9);
  EXPECT_EQ(bytes, expected);
}

TEST(Safetensors, HeaderIsPaddedToEightBytes) {
  for (int len = 1; len <= 9; ++len) {
    std::string bytes = serializeSafetensors({{std::string(len, 'x'), filled(DType::f64, {1})}});
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ(n % 8, 0u) << len;
    EXPECT_EQ(bytes.size(), 8 + n + 8);
    EXPECT_EQ(bytes[8 + n - 1] == ' ' || bytes[8 + n - 1] == '}', true);
  }
}

TEST(Safetensors, RoundTripEveryDtype) {
  TensorMap tensors;
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64, DType::boolean})
    for (const Shape& s : {Shape{}, Shape{7}, Shape{2, 3, 4}, Shape{0, 5}})
      tensors[std::string(dtypeName(d)) + shapeStr(s)] = filled(d, s);
  MetadataMap metadata = {{"epoch", "3"}, {"note", "quotes \" and \\ and unicode \xc3\xa9"}};
  TensorMap back = loadSafetensorsFromMemory(serializeSafetensors(tensors, metadata), "mem");
  EXPECT_EQ(back, tensors);
  EXPECT_EQ(back.at("bf16[7]").get(6), 5.0);
  EXPECT_EQ(back.at("f64[2,3,4]").get(0), -2.5);
  EXPECT_EQ(back.at("bool[7]").get(3), 1.0);
}

TEST(Safetensors, EmptyFileRoundTrips) {
  std::string bytes = serializeSafetensors({});
  EXPECT_EQ(bytes, std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
  EXPECT_TRUE(loadSafetensorsFromMemory(bytes, "m").empty());
}

TEST(Safetensors, SaveLoadAndMetadataFromFiles) {
  SafetensorsTempDir dir;
  std::string path = dir.file("model.safetensors");
  TensorMap state = sampleState();
  saveSafetensors(path, state, {{"step", "100"}});
  EXPECT_EQ(loadSafetensors(path), state);
  EXPECT_EQ(readSafetensorsMetadata(path), (MetadataMap{{"step", "100"}}));
  saveSafetensors(path, {{"x", filled(DType::f32, {1})}});  // replaces the file
  EXPECT_EQ(loadSafetensors(path).size(), 1u);
  EXPECT_TRUE(readSafetensorsMetadata(path).empty());
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1);  // no temporary file left behind
}

TEST(Safetensors, FileErrorsNameThePath) {
  SafetensorsTempDir dir;
  std::string missingDir = dir.file("no/such/dir/m.safetensors");
  try {
    saveSafetensors(missingDir, sampleState());
    ADD_FAILURE();
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find(missingDir), std::string::npos) << e.what();
  }
  for (auto load : {+[](const std::string& p) { loadSafetensors(p); },
                    +[](const std::string& p) { readSafetensorsMetadata(p); }}) {
    try {
      load(dir.file("missing.safetensors"));
      ADD_FAILURE();
    } catch (const weft::Error& e) {
      EXPECT_NE(std::string(e.what()).find(dir.file("missing.safetensors")), std::string::npos) << e.what();
    }
    EXPECT_THROW(load(dir.path.string()), weft::Error);
  }
  std::string corrupt = dir.file("corrupt.safetensors");
  std::ofstream(corrupt, std::ios::binary) << fileOf(kTwoTensorHeader, "0123456789");
  try {
    readSafetensorsMetadata(corrupt);
    ADD_FAILURE();
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find(corrupt + ": tensor 'b'"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, SaveRejectsBadInput) {
  TensorData wrongSize(TensorType{DType::f32, {2}});
  wrongSize.bytes.resize(3);
  EXPECT_NE(std::string([&] {
              try {
                serializeSafetensors({{"w", wrongSize}});
              } catch (const weft::Error& e) {
                return std::string(e.what());
              }
              return std::string();
            }())
                .find("'w'"),
            std::string::npos);
  EXPECT_THROW(serializeSafetensors({{"__metadata__", filled(DType::f32, {1})}}), weft::Error);
  EXPECT_THROW(serializeSafetensors({{"", filled(DType::f32, {1})}}), weft::Error);
  EXPECT_THROW(serializeSafetensors({{"bad\xff", filled(DType::f32, {1})}}), weft::Error);
  EXPECT_THROW(serializeSafetensors({}, {{"k", "\xc3"}}), weft::Error);
}

TEST(Safetensors, HandWrittenFileWithoutPaddingLoads) {
  std::string data(12, '\0');
  float two = 2.0f;
  std::memcpy(&data[4], &two, 4);
  int32_t seven = 7;
  std::memcpy(&data[8], &seven, 4);
  TensorMap t = loadSafetensorsFromMemory(fileOf(kTwoTensorHeader, data), "m");
  EXPECT_EQ(t.at("a").get(1), 2.0);
  EXPECT_EQ(t.at("b").get(0), 7.0);
  // Offsets need not follow the header's key order.
  std::string swapped =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})";
  t = loadSafetensorsFromMemory(fileOf(swapped, data), "m");
  EXPECT_EQ(t.at("b").get(0), 0.0);
  EXPECT_EQ(t.at("a").get(0), 2.0);
}

/// True when `message` is one line of printable ASCII (damaged bytes it quotes escaped).
bool isOneLineOfAscii(const std::string& message) {
  return std::all_of(message.begin(), message.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

TEST(Safetensors, CorruptionsAreErrorsNamingFileAndTensor) {
  const std::string data(12, '\0');
  struct Case {
    std::string bytes, expected;
  };
  auto header = [&](const std::string& h) { return fileOf(h, data); };
  std::vector<Case> cases = {
      {"", "m.safetensors: not a safetensors file: 0 bytes is too short"},
      {std::string("\x02\0\0\0\0\0\0", 7), "7 bytes is too short"},
      {std::string("\0\0\0\0\0\0\0\x80{}", 10), "m.safetensors: header length 9223372036854775808 exceeds the 2 bytes"},
      {std::string("\xff\xff\xff\xff\xff\xff\xff\xff{}", 10), "header length 18446744073709551615 exceeds"},
      {std::string("\x03\0\0\0\0\0\0\0{}", 10), "header length 3 exceeds the 2 bytes"},
      {fileOf("", ""), "does not start with '{'"},
      {fileOf("[]", ""), "does not start with '{'"},
      {fileOf("{\"a\":", ""), "m.safetensors: malformed safetensors header: invalid JSON"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]})"),
       "invalid JSON"},
      {header(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]}})"),
       "m.safetensors: tensor 'a': unsupported dtype \"F16\""},
      {header(R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'a': dtype must be a string"},
      {header(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'a': dimension 0 of the shape is negative (-2)"},
      {header(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'a': dimension 0 of the shape must be a non-negative integer"},
      {header(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'a': shape must be an array"},
      {header(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'a': shape [4611686018427387904,4] is too large"},
      {header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'a': data_offsets [0, 8] span 8 bytes but f32[3] needs 12"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,16]}})"),
       "tensor 'b': data_offsets [8, 16] lie outside the data section of 12 bytes"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'a': data_offsets [8, 0] end before they begin"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'a': data_offsets must be an array [begin, end]"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'a': data_offsets end is negative"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}})"),
       "overlap tensor 'a'"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}})"),
       "m.safetensors: tensor 'b': 4 unused bytes before its data_offsets begin 4 (at the data start)"},
      {header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'b': 4 unused bytes before its data_offsets begin 8 (after tensor 'a')"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[0],"data_offsets":[8,8]}})"),
       "m.safetensors: 4 trailing bytes after the last tensor 'a' in the data section"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1]}})"),
       "tensor 'b': header entry is missing 'data_offsets'"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "tensor 'a': unexpected key 'x'"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":[1]})"), "tensor 'b': header entry must be an object"},
      {header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}})"),
       "m.safetensors: malformed safetensors header: duplicate key 'a'"},
      {header(R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})"),
       "__metadata__ entry 'k' must be a string"},
      {header(R"({"__metadata__":[],"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})"),
       "__metadata__ must be an object"},
      {header(R"({"":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})"), "a tensor has an empty name"},
      {fileOf(std::string("{\"\xff\":1}"), ""), "invalid JSON"},
  };
  for (const Case& c : cases) {
    std::string e = errorOf(c.bytes);
    EXPECT_NE(e.find(c.expected), std::string::npos) << "expected: " << c.expected << "\n     got: " << e;
    EXPECT_EQ(e.rfind("m.safetensors: ", 0), 0u) << e;
    EXPECT_TRUE(isOneLineOfAscii(e)) << e;
  }
  // The JSON parser's report quotes the byte it stopped at: escaped.
  EXPECT_NE(errorOf(fileOf(std::string("{\"\xff\":1}"), "")).find("\\xff"), std::string::npos);
}

TEST(Safetensors, EveryTruncationIsAnError) {
  std::string bytes = serializeSafetensors(sampleState(), {{"k", "v"}});
  for (size_t keep = 0; keep < bytes.size(); ++keep) {
    std::string e = errorOf(bytes.substr(0, keep));
    EXPECT_EQ(e.rfind("m.safetensors: ", 0), 0u) << keep << ": " << e;
  }
}

TEST(Safetensors, ByteFlipsNeverCrash) {
  std::string bytes = serializeSafetensors(sampleState(), {{"k", "v"}});
  uint64_t headerEnd = 0;
  std::memcpy(&headerEnd, bytes.data(), 8);
  headerEnd += 8;
  int errors = 0;
  for (size_t at = 0; at < headerEnd; ++at)
    for (uint8_t mask : {0x01, 0x20, 0x80, 0xff}) {
      std::string flipped = bytes;
      flipped[at] = static_cast<char>(flipped[at] ^ mask);
      try {
        TensorMap t = loadSafetensorsFromMemory(flipped, "m.safetensors");
        for (const auto& [name, tensor] : t) EXPECT_EQ(tensor.bytes.size(), tensor.type.byteSize()) << name;
      } catch (const weft::Error& e) {
        ++errors;
        EXPECT_EQ(std::string(e.what()).rfind("m.safetensors: ", 0), 0u) << e.what();
        EXPECT_TRUE(isOneLineOfAscii(e.what())) << e.what();
      }
    }
  EXPECT_GT(errors, static_cast<int>(headerEnd));  // most flips must be caught
  // Flips in the data section change values only.
  std::string flipped = bytes;
  flipped.back() = static_cast<char>(flipped.back() ^ 0x40);
  EXPECT_NO_THROW(loadSafetensorsFromMemory(flipped, "m"));
}

TEST(Safetensors, LoadIntoCopiesMatchingTensors) {
  TensorMap state = {{"w", TensorData(TensorType{DType::f32, {3, 2}})},
                     {"b", TensorData(TensorType{DType::f32, {2}})}};
  TensorMap loaded = {{"w", filled(DType::f32, {3, 2})}, {"b", filled(DType::f32, {2})}};
  loadInto(state, loaded, "ckpt.safetensors");
  EXPECT_EQ(state, loaded);
}

TEST(Safetensors, LoadIntoMismatchLeavesStateUntouched) {
  const TensorMap original = {{"a", TensorData(TensorType{DType::f32, {2}})},
                              {"w", TensorData(TensorType{DType::f32, {3, 2}})}};
  struct Case {
    TensorMap loaded;
    std::string expected;
  };
  std::vector<Case> cases = {
      {{{"a", filled(DType::f32, {2})}, {"w", filled(DType::f64, {3, 2})}},
       "ckpt.safetensors: cannot load: tensor 'w' is f64[3,2] but f32[3,2] is expected"},
      {{{"a", filled(DType::f32, {2})}, {"w", filled(DType::f32, {2, 3})}},
       "tensor 'w' is f32[2,3] but f32[3,2] is expected"},
      {{{"a", filled(DType::f32, {2})}}, "missing tensor 'w' (expected f32[3,2])"},
      {{{"a", filled(DType::f32, {2})}, {"w", filled(DType::f32, {3, 2})}, {"extra", filled(DType::i32, {1})}},
       "unexpected tensor 'extra' (i32[1])"},
  };
  for (const Case& c : cases) {
    TensorMap state = original;
    try {
      loadInto(state, c.loaded, "ckpt.safetensors");
      ADD_FAILURE() << "no error for " << c.expected;
    } catch (const weft::Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
    }
    EXPECT_EQ(state, original) << c.expected;  // "a" matched, yet it was not overwritten
  }
}
