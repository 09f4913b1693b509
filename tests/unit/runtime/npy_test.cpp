#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "ir/error.h"
#include "runtime/npy.h"

using namespace weft::ir;
using weft::runtime::parseNpy;
using weft::runtime::readNpy;
using weft::runtime::serializeNpy;
using weft::runtime::writeNpy;

namespace fs = std::filesystem;

namespace {

TensorData iotaTensor(DType d, Shape shape) {
  TensorData t(TensorType{d, std::move(shape)});
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, d == DType::boolean ? i % 3 == 0 : (i - 3) * 1.5);
  return t;
}

/// A .npy file from its version, header text (padding included) and data.
std::string npyBytes(int major, const std::string& header, const std::string& data) {
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  size_t n = header.size();
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  if (major > 1) {
    out += static_cast<char>((n >> 16) & 0xff);
    out += static_cast<char>((n >> 24) & 0xff);
  }
  return out + header + data;
}

std::string errorOf(const std::string& bytes, const std::string& what = "t.npy") {
  try {
    parseNpy(bytes, what);
  } catch (const weft::Error& e) {
    return e.what();
  }
  return "<no error>";
}

/// A fresh directory for one test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("weft_npy_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST(Npy, ExactBytesOfASmallFloatMatrix) {
  TensorData t(TensorType{DType::f32, {2, 3}});
  for (int i = 0; i < 6; ++i) t.as<float>()[i] = static_cast<float>(i);
  std::string bytes = serializeNpy(t);

  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  // numpy: magic(6) version(2) u16 length(2), header padded with spaces to 128 bytes in all,
  // ending with '\n'; header length = 118 = 0x76.
  std::string expected("\x93NUMPY\x01\x00\x76\x00", 10);
  expected += dict + std::string(128 - 10 - dict.size() - 1, ' ') + "\n";
  ASSERT_EQ(expected.size(), 128u);
  const float data[6] = {0, 1, 2, 3, 4, 5};
  expected.append(reinterpret_cast<const char*>(data), sizeof data);
  EXPECT_EQ(bytes, expected);
}

TEST(Npy, ShapeReprFollowsPython) {
  auto header = [](const Shape& s) {
    std::string b = serializeNpy(TensorData(TensorType{DType::i64, s}));
    return b.substr(10, b.find('}') - 9);
  };
  EXPECT_EQ(header({}), "{'descr': '<i8', 'fortran_order': False, 'shape': (), }");
  EXPECT_EQ(header({5}), "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }");
  EXPECT_EQ(header({0, 7, 1}), "{'descr': '<i8', 'fortran_order': False, 'shape': (0, 7, 1), }");
}

TEST(Npy, DataIs64ByteAlignedForManyShapes) {
  for (int rank = 0; rank < 12; ++rank) {
    Shape s(rank, 1);
    if (rank) s[0] = 123456;
    TensorData t(TensorType{DType::boolean, s});
    std::string b = serializeNpy(t);
    size_t headerEnd = b.size() - t.bytes.size();
    EXPECT_EQ(headerEnd % 64, 0u) << rank;
    EXPECT_EQ(b[headerEnd - 1], '\n');
    EXPECT_EQ(parseNpy(b, "x").type, t.type);
  }
}

TEST(Npy, RoundTripEveryDtype) {
  for (DType d : {DType::f32, DType::f64, DType::i32, DType::i64, DType::boolean}) {
    for (const Shape& s : {Shape{}, Shape{7}, Shape{2, 3, 4}, Shape{0, 5}}) {
      TensorData t = iotaTensor(d, s);
      TensorData back = parseNpy(serializeNpy(t), "mem");
      EXPECT_EQ(back, t) << dtypeName(d) << shapeStr(s);
    }
  }
  TensorData f = parseNpy(serializeNpy(iotaTensor(DType::f64, {4})), "mem");
  EXPECT_EQ(f.as<double>()[0], -4.5);
  EXPECT_EQ(f.as<double>()[3], 0.0);
}

TEST(Npy, DescrOfEachDtype) {
  auto descr = [](DType d) {
    std::string b = serializeNpy(TensorData(TensorType{d, {1}}));
    return b.substr(b.find("'descr': '") + 10, 3);
  };
  EXPECT_EQ(descr(DType::f32), "<f4");
  EXPECT_EQ(descr(DType::f64), "<f8");
  EXPECT_EQ(descr(DType::i32), "<i4");
  EXPECT_EQ(descr(DType::i64), "<i8");
  EXPECT_EQ(descr(DType::boolean), "|b1");
}

TEST(Npy, ParsesHandWrittenHeaders) {
  const int32_t ints[3] = {7, -1, 300};
  std::string data(reinterpret_cast<const char*>(ints), sizeof ints);
  // Keys in another order, double quotes, odd spacing, no trailing comma, Python 2 'L'.
  std::string h1 = "{\"shape\":(3L,),'fortran_order' :False , 'descr':'<i4'}  \n";
  TensorData t = parseNpy(npyBytes(1, h1, data), "h1");
  EXPECT_EQ(t.type, (TensorType{DType::i32, {3}}));
  EXPECT_EQ(t.as<int32_t>()[2], 300);
  EXPECT_EQ(t.as<int32_t>()[1], -1);
  // Version 2.0 and 3.0 use a u32 header length.
  std::string h2 = "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 3), }\n";
  EXPECT_EQ(parseNpy(npyBytes(2, h2, data), "h2").type, (TensorType{DType::i32, {1, 3}}));
  EXPECT_EQ(parseNpy(npyBytes(3, h2, data), "h3").as<int32_t>()[0], 7);
  // Fortran and C order agree for rank <= 1.
  std::string h4 = "{'descr': '<i4', 'fortran_order': True, 'shape': (3,), }\n";
  EXPECT_EQ(parseNpy(npyBytes(1, h4, data), "h4").as<int32_t>()[2], 300);
  // Bools other than 0/1 read as true.
  std::string hb = "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }\n";
  EXPECT_EQ(parseNpy(npyBytes(1, hb, std::string("\x00\x05", 2)), "hb").bytes, (std::vector<uint8_t>{0, 1}));
}

TEST(Npy, DataSizeMismatchNamesFileTypeAndSizes) {
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 200), }\n";
  EXPECT_EQ(errorOf(npyBytes(1, h, std::string(1000, '\0')), "file.npy"),
            "file.npy: expected 3200 bytes of data for f32[4,200], found 1000");
  EXPECT_EQ(errorOf(npyBytes(1, h, std::string(3201, '\0')), "file.npy"),
            "file.npy: expected 3200 bytes of data for f32[4,200], found 3201");
  // A truncated real file.
  std::string full = serializeNpy(iotaTensor(DType::f64, {2, 2}));
  EXPECT_EQ(errorOf(full.substr(0, full.size() - 1)), "t.npy: expected 32 bytes of data for f64[2,2], found 31");
}

TEST(Npy, TruncatedHeader) {
  std::string full = serializeNpy(iotaTensor(DType::f32, {3}));
  EXPECT_EQ(errorOf(full.substr(0, 50)), "t.npy: truncated header: it should be 118 bytes, found 40");
  EXPECT_NE(errorOf(full.substr(0, 8)).find("t.npy: truncated header"), std::string::npos);
  std::string v2 = npyBytes(2, "{}", "").substr(0, 10);
  EXPECT_NE(errorOf(v2).find("truncated header"), std::string::npos);
}

TEST(Npy, WrongMagic) {
  EXPECT_NE(errorOf("PK\x03\x04 not npy at all").find("t.npy: not a .npy file (bad magic"), std::string::npos);
  EXPECT_NE(errorOf("").find("bad magic"), std::string::npos);
  std::string wrongVersion = npyBytes(1, "{}", "");
  wrongVersion[6] = 4;
  EXPECT_NE(errorOf(wrongVersion).find("unsupported .npy format version 4.0"), std::string::npos);
}

TEST(Npy, FortranOrderIsAnError) {
  std::string h = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n";
  std::string msg = errorOf(npyBytes(1, h, std::string(16, '\0')));
  EXPECT_NE(msg.find("t.npy: fortran_order is True"), std::string::npos) << msg;
}

TEST(Npy, UnsupportedAndBigEndianDtypes) {
  auto withDescr = [](const std::string& d) {
    return npyBytes(1, "{'descr': '" + d + "', 'fortran_order': False, 'shape': (1,), }\n", std::string(8, '\0'));
  };
  EXPECT_EQ(errorOf(withDescr("<f2")), "t.npy: unsupported dtype '<f2' (weft reads <f4, <f8, <i4, <i8 and |b1)");
  EXPECT_NE(errorOf(withDescr("|u1")).find("unsupported dtype '|u1'"), std::string::npos);
  EXPECT_NE(errorOf(withDescr("<c8")).find("unsupported dtype '<c8'"), std::string::npos);
  EXPECT_NE(errorOf(withDescr(">f4")).find("t.npy: big-endian dtype '>f4' is not supported"), std::string::npos);
  std::string structured =
      npyBytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", std::string(4, '\0'));
  EXPECT_NE(errorOf(structured).find("structured arrays"), std::string::npos);
}

TEST(Npy, MalformedHeaders) {
  auto err = [](const std::string& h) { return errorOf(npyBytes(1, h, "")); };
  EXPECT_NE(err("{'descr': '<f4', 'shape': (0,), }\n").find("missing key 'fortran_order'"), std::string::npos);
  EXPECT_NE(err("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), 'x': True}\n").find("unexpected key 'x'"),
            std::string::npos);
  EXPECT_NE(err("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n").find("malformed header"),
            std::string::npos);
  EXPECT_NE(err("{'descr': '<f4', 'fortran_order': False, 'shape': (0,)\n").find("malformed header"),
            std::string::npos);
  EXPECT_NE(err("{'descr': 5, 'fortran_order': False, 'shape': (0,)}\n").find("malformed header"), std::string::npos);
  EXPECT_NE(err("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (0,)}").find("duplicate key"),
            std::string::npos);
  EXPECT_NE(err("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}").find("too large"),
            std::string::npos);
  EXPECT_NE(err("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}").find("too large"),
            std::string::npos);
}

TEST(Npy, DamagedHeaderBytesAreEscapedInMessages) {
  // A damaged byte and the header's newline, quoted in the message, print as escapes: one
  // line of ASCII text.
  std::string h = "{'descr': '<f4', 'fortran_order': Fal\x97" "e, 'shape': (2,), }\n";
  EXPECT_EQ(errorOf(npyBytes(1, h, std::string(8, '\0'))),
            "t.npy: malformed header: unsupported value for 'fortran_order' at offset 34 of "
            "\"{'descr': '<f4', 'fortran_order': Fal\\x97e, 'shape': (2,), }\\n\"");
  std::string key = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '\x01\\': 1}\n";
  EXPECT_NE(errorOf(npyBytes(1, key, std::string(8, '\0'))).find("'\\x01\\\\'"), std::string::npos);
  std::string descr = "{'descr': '<f\xff', 'fortran_order': False, 'shape': (2,), }\n";
  EXPECT_EQ(errorOf(npyBytes(1, descr, std::string(8, '\0'))),
            "t.npy: unsupported dtype '<f\\xff' (weft reads <f4, <f8, <i4, <i8 and |b1)");
}

TEST(Npy, Bf16CannotBeWritten) {
  TensorData t(TensorType{DType::bf16, {2}});
  try {
    serializeNpy(t);
    FAIL() << "no error";
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bf16[2]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bfloat16"), std::string::npos) << e.what();
  }
  TempDir dir;
  std::string path = (dir.path / "w.npy").string();
  try {
    writeNpy(path, t);
    FAIL() << "no error";
  } catch (const weft::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": cannot store a bf16[2] tensor", 0), 0u) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir.path));
}

TEST(Npy, WriteThenReadFile) {
  TempDir dir;
  std::string path = (dir.path / "x.npy").string();
  TensorData a = iotaTensor(DType::f32, {3, 4});
  writeNpy(path, a);
  EXPECT_EQ(readNpy(path), a);
  // Overwriting replaces the file; no temporary file is left behind.
  TensorData b = iotaTensor(DType::i64, {2});
  writeNpy(path, b);
  EXPECT_EQ(readNpy(path), b);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1);
  std::ifstream in(path, std::ios::binary);
  std::string onDisk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(onDisk, serializeNpy(b));
}

TEST(Npy, MissingFileAndBadDirectory) {
  TempDir dir;
  std::string missing = (dir.path / "nope.npy").string();
  try {
    readNpy(missing);
    FAIL() << "no error";
  } catch (const weft::Error& e) {
    EXPECT_EQ(std::string(e.what()), missing + ": cannot open: No such file or directory");
  }
  try {
    readNpy(dir.path.string());
    FAIL() << "no error";
  } catch (const weft::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
  std::string noDir = (dir.path / "sub" / "x.npy").string();
  try {
    writeNpy(noDir, iotaTensor(DType::f32, {1}));
    FAIL() << "no error";
  } catch (const weft::Error& e) {
    EXPECT_EQ(std::string(e.what()), noDir + ": cannot write: there is no directory '" + (dir.path / "sub").string() + "'");
  }
}

TEST(Npy, ReadFileErrorsNameThePath) {
  TempDir dir;
  std::string path = (dir.path / "bad.npy").string();
  std::ofstream(path, std::ios::binary) << "hello";
  try {
    readNpy(path);
    FAIL() << "no error";
  } catch (const weft::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": not a .npy file", 0), 0u) << e.what();
  }
}
