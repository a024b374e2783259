// Tests of the safetensors reader and writer: round trips, exact dtype conversions, and
// hostile files, each of which must end in fusediff::Error with the right code.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "tests/check.h"

using fusediff::ErrorCode;
using fusediff::io::bf16_to_f32;
using fusediff::io::DType;
using fusediff::io::f16_to_f32;
using fusediff::io::SafetensorsFile;
using fusediff::io::SafetensorsLimits;
using fusediff::io::TensorInfo;
using fusediff::io::TensorToWrite;
using fusediff::io::write_safetensors;

namespace {

// A file of: the header's length, the header verbatim, then `data_bytes` bytes 0, 1, 2, ...
std::vector<uint8_t> file_bytes(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> bytes;
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>(n >> (8 * i)));
  bytes.insert(bytes.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_bytes; ++i) bytes.push_back(static_cast<uint8_t>(i));
  return bytes;
}

std::shared_ptr<SafetensorsFile> parse(const std::string& header, size_t data_bytes,
                                       const SafetensorsLimits& limits = {}) {
  return SafetensorsFile::from_bytes(file_bytes(header, data_bytes), limits);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<uint8_t> length_field_only(uint64_t n, size_t total_size) {
  std::vector<uint8_t> bytes(total_size, ' ');
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
  return bytes;
}

// A path in the temp directory, removed when the test ends.
struct TempPath {
  std::string path;
  explicit TempPath(const std::string& name) {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = (std::filesystem::temp_directory_path() / ("fusediff-test-" + std::to_string(stamp) + "-" + name)).string();
  }
  ~TempPath() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

template <typename T>
TensorToWrite tensor(const std::string& name, DType dtype, std::vector<int64_t> shape, const std::vector<T>& values) {
  return {name, dtype, std::move(shape), values.data(), values.size() * sizeof(T)};
}

uint16_t bits16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>(u >> 16);
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Value of a half by its definition, computed independently of f16_to_f32.
double half_reference(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 31) return mantissa ? std::nan("") : sign * std::numeric_limits<double>::infinity();
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

const char* kValidHeader = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

}  // namespace

TEST_CASE("safetensors: dtype names and sizes") {
  const struct {
    DType dtype;
    const char* name;
    size_t size;
  } expected[] = {{DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},         {DType::I8, "I8", 1},
                  {DType::I16, "I16", 2},   {DType::U16, "U16", 2},       {DType::F16, "F16", 2},
                  {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4},       {DType::U32, "U32", 4},
                  {DType::F32, "F32", 4},   {DType::F64, "F64", 8},       {DType::I64, "I64", 8},
                  {DType::U64, "U64", 8},   {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1}};
  for (const auto& e : expected) {
    CHECK_EQ(std::string(fusediff::io::dtype_name(e.dtype)), std::string(e.name));
    CHECK_EQ(fusediff::io::dtype_size(e.dtype), e.size);
    // Every dtype is accepted by the reader under its name.
    const std::string header = std::string(R"({"t":{"dtype":")") + e.name + R"(","shape":[3],"data_offsets":[0,)" +
                               std::to_string(3 * e.size) + "]}}";
    CHECK_EQ(parse(header, 3 * e.size)->tensors()[0].dtype, e.dtype);
  }
  CHECK_THROWS_CODE(fusediff::io::dtype_name(static_cast<DType>(99)), ErrorCode::Argument);
}

TEST_CASE("safetensors: writer and reader round-trip every dtype, in order") {
  const std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f};
  const std::vector<double> f64 = {0.1, -1e300, 3.0};
  const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x0001, 0x7C00};
  const std::vector<uint16_t> bf16 = {bits16(1.0f), bits16(-0.5f)};
  const std::vector<int64_t> i64 = {-1, int64_t{1} << 40};
  const std::vector<uint8_t> flags = {1, 0, 1};
  const std::vector<int32_t> scalar = {42};
  const std::vector<float> empty;
  const std::vector<uint8_t> bytes1 = {1, 2, 3, 4};
  const std::vector<uint16_t> bytes2 = {1, 2};
  const std::vector<uint32_t> u32 = {0xFFFFFFFFu};
  const std::vector<uint64_t> u64 = {~0ull};
  const std::vector<uint8_t> one = {9};
  std::vector<TensorToWrite> tensors = {
      tensor("z.last_name_first", DType::F32, {2, 3}, f32),
      tensor("f64", DType::F64, {3}, f64),
      tensor("f16", DType::F16, {2, 2}, f16),
      tensor("bf16", DType::BF16, {2}, bf16),
      tensor("i64", DType::I64, {2}, i64),
      tensor("mask", DType::BOOL, {3}, flags),
      tensor("scalar", DType::I32, {}, scalar),
      tensor("empty", DType::F32, {0, 3}, empty),
      tensor("u8", DType::U8, {4}, bytes1),
      tensor("i8", DType::I8, {2, 2}, bytes1),
      tensor("e4m3", DType::F8_E4M3, {4}, bytes1),
      tensor("e5m2", DType::F8_E5M2, {4}, bytes1),
      tensor("i16", DType::I16, {2}, bytes2),
      tensor("u16", DType::U16, {2}, bytes2),
      tensor("u32", DType::U32, {1}, u32),
      tensor("u64", DType::U64, {1}, u64),
      tensor("\xC3\xA9t\xC3\xA9 \"quoted\"\n", DType::U8, {1}, one),
  };
  const std::vector<std::pair<std::string, std::string>> metadata = {{"format", "pt"}, {"a\"b", "line\nbreak"}};

  TempPath temp("roundtrip.safetensors");
  write_safetensors(temp.path, tensors, metadata);
  const auto file = SafetensorsFile::open(temp.path);
  CHECK_EQ(file->path(), temp.path);
  CHECK_EQ(file->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& info = file->tensors()[i];
    CHECK_EQ(info.name, tensors[i].name);
    CHECK_EQ(info.dtype, tensors[i].dtype);
    CHECK(info.shape == tensors[i].shape);
    CHECK_EQ(info.end - info.begin, uint64_t{tensors[i].bytes});
    CHECK(tensors[i].bytes == 0 || std::memcmp(file->data(info), tensors[i].data, tensors[i].bytes) == 0);
    CHECK_EQ(file->find(tensors[i].name), &info);
  }
  CHECK(file->find("missing") == nullptr);
  CHECK(file->metadata() == metadata);
  CHECK_EQ(file->find("scalar")->numel(), int64_t{1});
  CHECK_EQ(file->find("empty")->numel(), int64_t{0});
  CHECK(file->to_float32(*file->find("empty")).empty());
  CHECK(file->to_float32(*file->find("z.last_name_first")) == f32);

  // The header is padded so that the data section starts 8-byte aligned.
  std::ifstream in(temp.path, std::ios::binary);
  unsigned char length[8];
  in.read(reinterpret_cast<char*>(length), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{length[i]} << (8 * i);
  CHECK_EQ((8 + n) % 8, uint64_t{0});

  // The same bytes through from_bytes.
  const auto copy = SafetensorsFile::from_bytes(read_file(temp.path));
  CHECK_EQ(copy->path(), std::string("<memory>"));
  CHECK_EQ(copy->tensors().size(), tensors.size());
  CHECK(copy->to_float32(*copy->find("f64")) == (std::vector<float>{0.1f, -std::numeric_limits<float>::infinity(), 3.0f}));
}

TEST_CASE("safetensors: empty file list and metadata-only files") {
  TempPath temp("empty.safetensors");
  write_safetensors(temp.path, {}, {});
  const auto file = SafetensorsFile::open(temp.path);
  CHECK(file->tensors().empty());
  CHECK(file->metadata().empty());
  CHECK(parse("{}", 0)->tensors().empty());
  CHECK(parse("{}      ", 0)->tensors().empty());  // space padding
  CHECK(parse(R"({"__metadata__":{}})", 0)->metadata().empty());
}

TEST_CASE("safetensors: f16 to f32 is exact for all 65536 values") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    const double want = half_reference(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      CHECK(std::isnan(got));
      CHECK_EQ(std::signbit(got), (h & 0x8000) != 0);
    } else {
      CHECK_EQ(static_cast<double>(got), want);
      CHECK_EQ(std::signbit(got), (h & 0x8000) != 0);  // including -0
    }
  }
  CHECK_EQ(f16_to_f32(0x3C00), 1.0f);
  CHECK_EQ(f16_to_f32(0xC000), -2.0f);
  CHECK_EQ(f16_to_f32(0x7BFF), 65504.0f);
  CHECK_EQ(f16_to_f32(0x0001), 0x1p-24f);   // smallest subnormal
  CHECK_EQ(f16_to_f32(0x03FF), 0x3FFp-24f);  // largest subnormal
  CHECK_EQ(f16_to_f32(0x0400), 0x1p-14f);   // smallest normal
  CHECK_EQ(f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  CHECK_EQ(f16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  CHECK(std::signbit(f16_to_f32(0x8000)) && f16_to_f32(0x8000) == 0.0f);
  CHECK_EQ(float_bits(f16_to_f32(0x7E00)), 0x7FC00000u);  // quiet NaN keeps its payload
  CHECK_EQ(float_bits(f16_to_f32(0x7C01)), 0x7F802000u);  // signalling payload preserved
}

TEST_CASE("safetensors: bf16 to f32 is exact") {
  CHECK_EQ(bf16_to_f32(0x3F80), 1.0f);
  CHECK_EQ(bf16_to_f32(0xC0A0), -5.0f);
  CHECK_EQ(bf16_to_f32(0x0001), 0x1p-133f);  // smallest subnormal
  CHECK_EQ(bf16_to_f32(0x007F), 0x7Fp-133f);  // largest subnormal
  CHECK_EQ(bf16_to_f32(0x7F7F), 0x1.FEp127f);
  CHECK_EQ(bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
  CHECK_EQ(bf16_to_f32(0xFF80), -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(bf16_to_f32(0x7FC0)));
  CHECK(std::isnan(bf16_to_f32(0xFFC1)));
  CHECK(std::signbit(bf16_to_f32(0x8000)) && bf16_to_f32(0x8000) == 0.0f);
  for (uint32_t h = 0; h < 65536; ++h) {
    CHECK_EQ(float_bits(bf16_to_f32(static_cast<uint16_t>(h))), h << 16);
  }
}

TEST_CASE("safetensors: read_float32 converts F16, BF16 and F64 from the file") {
  const std::vector<uint16_t> f16 = {0x0000, 0x8000, 0x0001, 0x03FF, 0x3555, 0x7BFF, 0x7C00, 0xFC00, 0x7E00};
  const std::vector<uint16_t> bf16 = {0x0000, 0x8000, 0x0001, 0x3EAB, 0x7F80, 0xFF80, 0x7FC0};
  const double tie = 1.0 + std::ldexp(1.0, -24);  // halfway between 1 and the next float
  const std::vector<double> f64 = {0.1, 1e300, -1e300, 1e-50, -1e-50, tie, tie + std::ldexp(1.0, -50),
                                   3.4028234663852886e38, std::nan(""), -0.0};
  TempPath temp("convert.safetensors");
  write_safetensors(temp.path,
                    {tensor("h", DType::F16, {3, 3}, f16), tensor("b", DType::BF16, {7}, bf16),
                     tensor("d", DType::F64, {10}, f64)},
                    {});
  const auto file = SafetensorsFile::open(temp.path);
  const std::vector<float> h = file->to_float32(*file->find("h"));
  for (size_t i = 0; i < f16.size(); ++i) CHECK_EQ(float_bits(h[i]), float_bits(f16_to_f32(f16[i])));
  const std::vector<float> b = file->to_float32(*file->find("b"));
  for (size_t i = 0; i < bf16.size(); ++i) CHECK_EQ(float_bits(b[i]), uint32_t{bf16[i]} << 16);
  std::vector<float> d(10);
  file->read_float32(*file->find("d"), d.data());
  CHECK_EQ(d[0], 0.1f);
  CHECK_EQ(d[1], std::numeric_limits<float>::infinity());
  CHECK_EQ(d[2], -std::numeric_limits<float>::infinity());
  CHECK(d[3] == 0.0f && !std::signbit(d[3]));
  CHECK(d[4] == 0.0f && std::signbit(d[4]));
  CHECK_EQ(d[5], 1.0f);                          // ties go to even
  CHECK_EQ(d[6], 1.0f + 0x1p-23f);               // just above the tie rounds up
  CHECK_EQ(d[7], std::numeric_limits<float>::max());
  CHECK(std::isnan(d[8]));
  CHECK(std::signbit(d[9]));
}

TEST_CASE("safetensors: unaligned tensor data reads correctly") {
  // No padding: the F32 data starts at a file offset that is not a multiple of 4.
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  CHECK((8 + header.size()) % 4 != 0);
  std::vector<uint8_t> bytes = file_bytes(header, 0);
  for (float v : {1.5f, -3.0f}) {
    const uint32_t u = float_bits(v);
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<uint8_t>(u >> (8 * i)));
  }
  const auto file = SafetensorsFile::from_bytes(bytes);
  CHECK(file->to_float32(file->tensors()[0]) == (std::vector<float>{1.5f, -3.0f}));
}

TEST_CASE("safetensors: only float dtypes convert to float32") {
  const auto file = parse(R"({"idx":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8);
  CHECK_THROWS_WITH(file->to_float32(file->tensors()[0]), ErrorCode::Unsupported, "tensor \"idx\": dtype I64");
  CHECK_EQ(file->data(file->tensors()[0])[7], uint8_t{7});
}

TEST_CASE("safetensors: a forged TensorInfo cannot read outside the file") {
  const auto file = parse(kValidHeader, 8);
  TensorInfo forged = file->tensors()[0];
  forged.end = 1000;
  forged.shape = {250};
  CHECK_THROWS_CODE(file->data(forged), ErrorCode::Argument);
  forged = file->tensors()[0];
  forged.shape = {3};  // 12 bytes claimed for an 8-byte range
  CHECK_THROWS_CODE(file->to_float32(forged), ErrorCode::Argument);
  forged.shape = {-1};
  CHECK_THROWS_CODE(forged.numel(), ErrorCode::Argument);
  forged.shape = {int64_t{1} << 62, 4};
  CHECK_THROWS_CODE(file->data(forged), ErrorCode::Argument);
}

TEST_CASE("safetensors: open reports file system errors with the path") {
  CHECK_THROWS_WITH(SafetensorsFile::open("/nonexistent/dir/model.safetensors"), ErrorCode::Io,
                    "/nonexistent/dir/model.safetensors");
  TempPath dir("a-directory");
  std::filesystem::create_directory(dir.path);
  CHECK_THROWS_WITH(SafetensorsFile::open(dir.path), ErrorCode::Io, dir.path);
  TempPath empty("empty-file");
  std::ofstream(empty.path).close();
  CHECK_THROWS_WITH(SafetensorsFile::open(empty.path), ErrorCode::Format, empty.path);
}

TEST_CASE("safetensors: files too short or with impossible header lengths") {
  CHECK_THROWS_WITH(SafetensorsFile::from_bytes({}), ErrorCode::Format, "has 0 bytes");
  CHECK_THROWS_WITH(SafetensorsFile::from_bytes(std::vector<uint8_t>(7, 0)), ErrorCode::Format, "has 7 bytes");
  CHECK_THROWS_CODE(SafetensorsFile::from_bytes(std::vector<uint8_t>(8, 0)), ErrorCode::Format);  // empty header
  CHECK_THROWS_WITH(SafetensorsFile::from_bytes(length_field_only(100, 50)), ErrorCode::Format,
                    "header length 100 exceeds the 42 bytes");
  CHECK_THROWS_CODE(SafetensorsFile::from_bytes(length_field_only(uint64_t{1} << 63, 64)), ErrorCode::Format);
  CHECK_THROWS_CODE(SafetensorsFile::from_bytes(length_field_only(~uint64_t{0}, 64)), ErrorCode::Format);
  CHECK_THROWS_CODE(SafetensorsFile::from_bytes(length_field_only(57, 64)), ErrorCode::Format);
}

TEST_CASE("safetensors: the header size cap") {
  SafetensorsLimits limits;
  limits.max_header_bytes = 16;
  CHECK_THROWS_WITH(parse(kValidHeader, 8, limits), ErrorCode::Resource, "exceeds the limit of 16 bytes");
  limits.max_header_bytes = std::string(kValidHeader).size();
  CHECK_EQ(parse(kValidHeader, 8, limits)->tensors().size(), size_t{1});
}

TEST_CASE("safetensors: headers that are not a JSON object") {
  CHECK_THROWS_WITH(parse("hello", 0), ErrorCode::Format, "does not start with '{'");
  CHECK_THROWS_CODE(parse(" {}", 0), ErrorCode::Format);
  CHECK_THROWS_CODE(parse("[]", 0), ErrorCode::Format);
  CHECK_THROWS_WITH(parse("{hello}", 0), ErrorCode::Format, "header: JSON at byte 1");
  CHECK_THROWS_CODE(parse("{}x", 0), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(std::string("{}\0\0", 4), 0), ErrorCode::Format);  // NUL padding is not whitespace
  const std::string valid = kValidHeader;
  for (size_t n = 1; n < valid.size(); ++n) {  // every truncation of the JSON
    CHECK_THROWS_CODE(parse(valid.substr(0, n), 8), ErrorCode::Format);
  }
  CHECK_THROWS_CODE(parse(R"({"a\ud800":{}})", 0), ErrorCode::Format);
  CHECK_THROWS_WITH(parse("{\"\xFF\":{}}", 0), ErrorCode::Format, "UTF-8");
  CHECK_THROWS_CODE(parse(R"({"a":{"dtype":"F32","shape":[Infinity],"data_offsets":[0,0]}})", 0), ErrorCode::Format);
}

TEST_CASE("safetensors: deep nesting is rejected early") {
  CHECK_THROWS_WITH(parse("{\"x\":" + std::string(10000, '[') + std::string(10000, ']') + "}", 0), ErrorCode::Format,
                    "nesting deeper than 3");
  CHECK_THROWS_CODE(parse(std::string(10000, '{'), 0), ErrorCode::Format);
}

TEST_CASE("safetensors: duplicate tensor names") {
  CHECK_THROWS_WITH(parse(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                          R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                          2),
                    ErrorCode::Format, "duplicate key \"a\"");
}

TEST_CASE("safetensors: dtypes") {
  CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"F4","shape":[1],"data_offsets":[0,1]}})", 1), ErrorCode::Unsupported,
                    "tensor \"w\": unsupported dtype \"F4\"");
  CHECK_THROWS_CODE(parse(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4), ErrorCode::Unsupported);
  CHECK_THROWS_WITH(parse(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4), ErrorCode::Format,
                    "dtype must be a string");
}

TEST_CASE("safetensors: bad shapes") {
  const auto with_shape = [](const std::string& shape, uint64_t end) {
    return R"({"w":{"dtype":"U8","shape":)" + shape + R"(,"data_offsets":[0,)" + std::to_string(end) + "]}}";
  };
  CHECK_THROWS_WITH(parse(with_shape("[-1]", 0), 0), ErrorCode::Format, "tensor \"w\": shape[0] must be a non-negative integer within int64, got -1");
  CHECK_THROWS_WITH(parse(with_shape("[2.5]", 2), 2), ErrorCode::Format, "got 2.5");
  CHECK_THROWS_CODE(parse(with_shape("[2.0]", 2), 2), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_shape("[2e0]", 2), 2), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_shape("[-0.0]", 0), 0), ErrorCode::Format);
  CHECK_THROWS_WITH(parse(with_shape("[\"2\"]", 2), 2), ErrorCode::Format, "got \"2\"");
  CHECK_THROWS_CODE(parse(with_shape("[null]", 2), 2), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_shape("[[2]]", 2), 2), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_shape("2", 2), 2), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_shape("{}", 2), 2), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_shape("[9223372036854775808]", 2), 2), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_shape("[1e300]", 2), 2), ErrorCode::Format);
  CHECK_THROWS_WITH(parse(with_shape("[1,1,1,1,1,1,1,1,1]", 1), 1), ErrorCode::Resource, "rank 9 exceeds the limit of 8");
  CHECK_EQ(parse(with_shape("[1,1,1,1,1,1,1,1]", 1), 1)->tensors()[0].shape.size(), size_t{8});
  // Products that overflow int64 or the byte count.
  CHECK_THROWS_WITH(parse(with_shape("[4294967296,4294967296]", 0), 0), ErrorCode::Format, "overflows");
  CHECK_THROWS_CODE(parse(with_shape("[9223372036854775807,2]", 0), 0), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0),
                    ErrorCode::Format);
  CHECK_THROWS_CODE(parse(R"({"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", 0),
                    ErrorCode::Format);
  // A zero dimension makes an empty tensor.
  CHECK_EQ(parse(with_shape("[0,4294967296]", 0), 0)->tensors()[0].numel(), int64_t{0});
}

TEST_CASE("safetensors: bad data_offsets") {
  const auto with_offsets = [](const std::string& offsets) {
    return R"({"w":{"dtype":"F32","shape":[2],"data_offsets":)" + offsets + "}}";
  };
  CHECK_THROWS_WITH(parse(with_offsets("[0,1000]"), 8), ErrorCode::Format, "data_offsets [0, 1000] reach past the data section of 8 bytes");
  CHECK_THROWS_WITH(parse(with_offsets("[8,0]"), 8), ErrorCode::Format, "[8, 0] end before they begin");
  CHECK_THROWS_WITH(parse(with_offsets("[0,12]"), 12), ErrorCode::Format, "needs 8 bytes but data_offsets [0, 12] hold 12");
  CHECK_THROWS_CODE(parse(with_offsets("[0,4]"), 8), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_offsets("[-8,0]"), 8), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_offsets("[0,8.0]"), 8), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_offsets("[0,18446744073709551615]"), 8), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_offsets("[18446744073709551608,18446744073709551616]"), 8), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_offsets("[9223372036854775800,9223372036854775807]"), 8), ErrorCode::Format);
  CHECK_THROWS_WITH(parse(with_offsets("[0,8,16]"), 8), ErrorCode::Format, "an array of 3");
  CHECK_THROWS_CODE(parse(with_offsets("[0]"), 8), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_offsets("[]"), 8), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_offsets("{\"begin\":0,\"end\":8}"), 8), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(with_offsets("\"0,8\""), 8), ErrorCode::Format);
}

TEST_CASE("safetensors: byte ranges must tile the data section") {
  const auto entry = [](const std::string& name, uint64_t begin) {
    return "\"" + name + R"(":{"dtype":"F32","shape":[2],"data_offsets":[)" + std::to_string(begin) + "," +
           std::to_string(begin + 8) + "]}";
  };
  // In any header order.
  CHECK_EQ(parse("{" + entry("b", 8) + "," + entry("a", 0) + "}", 16)->tensors()[0].name, std::string("b"));
  CHECK_THROWS_WITH(parse("{" + entry("a", 0) + "," + entry("b", 4) + "}", 16), ErrorCode::Format,
                    "tensor \"b\": data_offsets [4, 12] overlap those of tensor \"a\" [0, 8]");
  CHECK_THROWS_CODE(parse("{" + entry("a", 0) + "," + entry("b", 0) + "}", 16), ErrorCode::Format);
  CHECK_THROWS_WITH(parse("{" + entry("a", 0) + "," + entry("b", 12) + "}", 20), ErrorCode::Format,
                    "bytes [8, 12) of the data section belong to no tensor");
  CHECK_THROWS_WITH(parse("{" + entry("a", 0) + "}", 9), ErrorCode::Format, "has 9 bytes but the tensors cover only 8");
  CHECK_THROWS_CODE(parse("{" + entry("a", 4) + "}", 12), ErrorCode::Format);
  CHECK_THROWS_CODE(parse("{}", 1), ErrorCode::Format);
  // Empty tensors occupy no bytes and may sit at a boundary, but not inside another tensor.
  const auto empty = [](const std::string& name, uint64_t at) {
    return "\"" + name + R"(":{"dtype":"F32","shape":[0],"data_offsets":[)" + std::to_string(at) + "," +
           std::to_string(at) + "]}";
  };
  CHECK_EQ(parse("{" + entry("a", 0) + "," + empty("e", 8) + "," + empty("f", 0) + "}", 8)->tensors().size(), size_t{3});
  CHECK_THROWS_CODE(parse("{" + entry("a", 0) + "," + empty("e", 4) + "}", 8), ErrorCode::Format);
}

TEST_CASE("safetensors: missing, extra and mistyped entry keys") {
  CHECK_THROWS_WITH(parse(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4), ErrorCode::Format, "tensor \"w\": missing key \"dtype\"");
  CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4), ErrorCode::Format, "missing key \"shape\"");
  CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"F32","shape":[1]}})", 4), ErrorCode::Format, "missing key \"data_offsets\"");
  CHECK_THROWS_WITH(parse(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"strides":[1]}})", 4),
                    ErrorCode::Format, "unexpected key \"strides\"");
  CHECK_THROWS_WITH(parse(R"({"w":[1,2]})", 0), ErrorCode::Format, "tensor \"w\": entry must be an object, got a JSON array");
  CHECK_THROWS_CODE(parse(R"({"w":"F32"})", 0), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(R"({"w":null})", 0), ErrorCode::Format);
}

TEST_CASE("safetensors: __metadata__ is an object of strings") {
  const auto file = parse(R"({"__metadata__":{"format":"pt","k":"v"},"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}})", 1);
  CHECK_EQ(file->metadata().size(), size_t{2});
  CHECK_EQ(file->metadata()[1].second, std::string("v"));
  CHECK_EQ(file->tensors().size(), size_t{1});
  CHECK_THROWS_WITH(parse(R"({"__metadata__":{"format":1}})", 0), ErrorCode::Format,
                    "__metadata__ value of \"format\" must be a string, got 1");
  CHECK_THROWS_CODE(parse(R"({"__metadata__":{"x":null}})", 0), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(R"({"__metadata__":{"x":["a"]}})", 0), ErrorCode::Format);
  CHECK_THROWS_CODE(parse(R"({"__metadata__":{"x":{"y":"z"}}})", 0), ErrorCode::Format);
  CHECK_THROWS_WITH(parse(R"({"__metadata__":"pt"})", 0), ErrorCode::Format, "__metadata__ must be an object");
  CHECK_THROWS_CODE(parse(R"({"__metadata__":{},"__metadata__":{}})", 0), ErrorCode::Format);
  SafetensorsLimits limits;
  limits.max_metadata_entries = 1;
  CHECK_THROWS_CODE(parse(R"({"__metadata__":{"a":"1","b":"2"}})", 0, limits), ErrorCode::Resource);
}

TEST_CASE("safetensors: tensor count and value budget limits") {
  SafetensorsLimits limits;
  limits.max_tensors = 2;
  std::string header = "{";
  for (int i = 0; i < 3; ++i) {
    header += (i ? "," : "") + std::string("\"t") + std::to_string(i) + R"(":{"dtype":"U8","shape":[1],"data_offsets":[)" +
              std::to_string(i) + "," + std::to_string(i + 1) + "]}";
  }
  header += "}";
  CHECK_EQ(parse(header, 3)->tensors().size(), size_t{3});
  CHECK_THROWS_WITH(parse(header, 3, limits), ErrorCode::Resource, "more than the limit of 2");
  // A header that would build a large DOM is stopped while parsing.
  limits.max_tensors = 1;
  limits.max_metadata_entries = 0;
  std::string wide = R"({"w":{"dtype":"U8","shape":[)";
  for (int i = 0; i < 10000; ++i) wide += "1,";
  wide += "1],\"data_offsets\":[0,1]}}";
  CHECK_THROWS_WITH(parse(wide, 1, limits), ErrorCode::Resource, "values");
}

TEST_CASE("safetensors: the writer rejects bad arguments") {
  TempPath temp("bad-args.safetensors");
  const std::vector<float> two = {1.0f, 2.0f};
  CHECK_THROWS_WITH(write_safetensors(temp.path, {tensor("a", DType::F32, {2}, two), tensor("a", DType::F32, {2}, two)}, {}),
                    ErrorCode::Argument, "duplicate tensor name \"a\"");
  CHECK_THROWS_WITH(write_safetensors(temp.path, {tensor("a", DType::F32, {3}, two)}, {}), ErrorCode::Argument,
                    "needs 12 bytes, got 8");
  CHECK_THROWS_CODE(write_safetensors(temp.path, {tensor("a", DType::F32, {-2}, two)}, {}), ErrorCode::Argument);
  CHECK_THROWS_CODE(write_safetensors(temp.path, {tensor("__metadata__", DType::F32, {2}, two)}, {}), ErrorCode::Argument);
  CHECK_THROWS_CODE(write_safetensors(temp.path, {tensor("bad\xFF", DType::F32, {2}, two)}, {}), ErrorCode::Argument);
  CHECK_THROWS_CODE(write_safetensors(temp.path, {{"n", DType::F32, {2}, nullptr, 8}}, {}), ErrorCode::Argument);
  CHECK_THROWS_CODE(write_safetensors(temp.path, {}, {{"k", "1"}, {"k", "2"}}), ErrorCode::Argument);
  CHECK_THROWS_CODE(write_safetensors(temp.path, {}, {{"k", "\xC3"}}), ErrorCode::Argument);
  CHECK(!std::filesystem::exists(temp.path));  // nothing written for bad arguments
  CHECK_THROWS_WITH(write_safetensors("/nonexistent/dir/out.safetensors", {}, {}), ErrorCode::Io,
                    "/nonexistent/dir/out.safetensors");
}

TEST_CASE("safetensors: random mutations of a valid file parse or throw fusediff::Error") {
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> halves = {0x3C00, 0x7C00};
  TempPath temp("fuzz-seed.safetensors");
  write_safetensors(temp.path, {tensor("weight", DType::F32, {2, 3}, values), tensor("h", DType::F16, {2}, halves)},
                    {{"format", "pt"}});
  const std::vector<uint8_t> seed = read_file(temp.path);
  for (size_t n = 0; n < seed.size(); ++n) {  // every truncation
    CHECK_THROWS_CODE(SafetensorsFile::from_bytes(std::vector<uint8_t>(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(n))),
                      ErrorCode::Format);
  }
  const char alphabet[] = "{}[]\":,-.0123456789eEFUIB8_\\u ";
  uint64_t state = 0x2545F4914F6CDD1Dull;
  const auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> bytes = seed;
    const int edits = 1 + static_cast<int>(next() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t at = static_cast<size_t>(next() % bytes.size());
      // Mostly edit the header; sometimes the length field or any byte.
      const uint8_t c = (next() % 4) ? static_cast<uint8_t>(alphabet[next() % (sizeof alphabet - 1)])
                                     : static_cast<uint8_t>(next());
      switch (next() % 3) {
        case 0: bytes[at] = c; break;
        case 1: bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        default:
          if (bytes.size() > 1) bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at));
      }
    }
    try {
      const auto file = SafetensorsFile::from_bytes(bytes);
      for (const TensorInfo& info : file->tensors()) {
        if (info.dtype == DType::F32 || info.dtype == DType::F16 || info.dtype == DType::BF16 ||
            info.dtype == DType::F64) {
          file->to_float32(info);
        }
      }
      ++accepted;
    } catch (const fusediff::Error& error) {
      CHECK(error.code() == ErrorCode::Format || error.code() == ErrorCode::Unsupported ||
            error.code() == ErrorCode::Resource);
    }
  }
  CHECK(accepted > 0);  // some mutations (e.g. in tensor data) leave a valid file
}
