#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <string_view>
#include <system_error>

#include "core/error.h"
#include "io/json.h"

#if defined(__unix__) || defined(__APPLE__)
#define FUSEDIFF_SAFETENSORS_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#else
#include <fstream>
#endif

namespace fusediff::io {

// The float conversions below reinterpret IEEE-754 bit patterns, and F64 -> F32 relies on
// IEEE semantics (values beyond float range become infinity rather than undefined behaviour).
static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "fusediff needs IEEE-754 float and double");

namespace {

constexpr const char* kMetadataKey = "__metadata__";
constexpr uint64_t kLengthFieldBytes = 8;

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},     {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},   {DType::U16, "U16", 2},   {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4},   {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},   {DType::F64, "F64", 8},   {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},   {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};

const DTypeEntry& dtype_entry(DType dtype) {
  for (const DTypeEntry& entry : kDTypes) {
    if (entry.dtype == dtype) return entry;
  }
  fail(ErrorCode::Argument, "invalid DType value " + std::to_string(static_cast<int>(dtype)));
}

// Byte-wise loads: tensor data is little-endian and, in general, not aligned.
uint16_t load_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
uint64_t load_le64(const uint8_t* p) { return uint64_t{load_le32(p)} | (uint64_t{load_le32(p + 4)} << 32); }

float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

double double_from_bits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// Product of the dims, false when a dim is negative or the product exceeds int64.
bool checked_numel(const std::vector<int64_t>& shape, int64_t& numel) {
  int64_t product = 1;
  for (int64_t dim : shape) {
    if (dim < 0) return false;
    if (dim != 0 && product > std::numeric_limits<int64_t>::max() / dim) return false;
    product *= dim;
  }
  numel = product;
  return true;
}

// numel x element size in bytes, false on overflow or a bad shape.
bool checked_bytes(const std::vector<int64_t>& shape, DType dtype, uint64_t& bytes) {
  int64_t numel;
  if (!checked_numel(shape, numel)) return false;
  const uint64_t size = dtype_size(dtype);
  if (static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / size) return false;
  bytes = static_cast<uint64_t>(numel) * size;
  return true;
}

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}
uint64_t saturating_mul(uint64_t a, uint64_t b) {
  return b != 0 && a > std::numeric_limits<uint64_t>::max() / b ? std::numeric_limits<uint64_t>::max() : a * b;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// A header value as it reads in a message: numbers by value, strings quoted, else the type.
std::string describe(const JsonValue& value) {
  if (value.is_integer()) return std::to_string(value.as_int64());
  if (value.is_number()) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.17g", value.as_number());
    return buffer;
  }
  if (value.is_string()) return quote_for_message(value.as_string());
  return std::string("a JSON ") + json_type_name(value.type());
}

// Everything a message needs to say where it is.
struct Context {
  const std::string& path;
  std::string prefix() const { return "safetensors file '" + path + "': "; }
  std::string tensor(const std::string& name) const { return prefix() + "tensor " + quote_for_message(name) + ": "; }
};

// A non-negative integer that fits in int64; `what` names it in the message.
int64_t non_negative_integer(const Context& ctx, const std::string& name, const JsonValue& value,
                             const std::string& what) {
  if (!value.is_integer() || value.as_int64() < 0) {
    fail(ErrorCode::Format, ctx.tensor(name) + what + " must be a non-negative integer within int64, got " +
                                describe(value));
  }
  return value.as_int64();
}

DType parse_dtype(const Context& ctx, const std::string& name, const JsonValue& value) {
  if (!value.is_string()) fail(ErrorCode::Format, ctx.tensor(name) + "dtype must be a string, got " + describe(value));
  for (const DTypeEntry& entry : kDTypes) {
    if (value.as_string() == entry.name) return entry.dtype;
  }
  fail(ErrorCode::Unsupported, ctx.tensor(name) + "unsupported dtype " + quote_for_message(value.as_string()));
}

std::vector<int64_t> parse_shape(const Context& ctx, const std::string& name, const JsonValue& value,
                                 const SafetensorsLimits& limits) {
  if (!value.is_array()) fail(ErrorCode::Format, ctx.tensor(name) + "shape must be an array, got " + describe(value));
  const JsonValue::Array& dims = value.as_array();
  if (dims.size() > static_cast<size_t>(std::max(limits.max_rank, 0))) {
    fail(ErrorCode::Resource, ctx.tensor(name) + "rank " + std::to_string(dims.size()) + " exceeds the limit of " +
                                  std::to_string(limits.max_rank));
  }
  std::vector<int64_t> shape;
  shape.reserve(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    shape.push_back(non_negative_integer(ctx, name, dims[i], "shape[" + std::to_string(i) + "]"));
  }
  return shape;
}

TensorInfo parse_tensor(const Context& ctx, const std::string& name, const JsonValue& value,
                        const SafetensorsLimits& limits, uint64_t data_bytes) {
  if (!value.is_object()) fail(ErrorCode::Format, ctx.tensor(name) + "entry must be an object, got " + describe(value));
  const JsonValue* dtype = nullptr;
  const JsonValue* shape = nullptr;
  const JsonValue* offsets = nullptr;
  for (const JsonValue::Member& member : value.as_object()) {
    if (member.first == "dtype") {
      dtype = &member.second;
    } else if (member.first == "shape") {
      shape = &member.second;
    } else if (member.first == "data_offsets") {
      offsets = &member.second;
    } else {
      fail(ErrorCode::Format, ctx.tensor(name) + "unexpected key " + quote_for_message(member.first));
    }
  }
  auto require = [&](const JsonValue* field, const char* key) {
    if (!field) fail(ErrorCode::Format, ctx.tensor(name) + "missing key \"" + key + "\"");
  };
  require(dtype, "dtype");
  require(shape, "shape");
  require(offsets, "data_offsets");

  TensorInfo info;
  info.name = name;
  info.dtype = parse_dtype(ctx, name, *dtype);
  info.shape = parse_shape(ctx, name, *shape, limits);

  if (!offsets->is_array() || offsets->as_array().size() != 2) {
    fail(ErrorCode::Format, ctx.tensor(name) + "data_offsets must be an array [begin, end], got " +
                                (offsets->is_array() ? "an array of " + std::to_string(offsets->as_array().size())
                                                     : describe(*offsets)));
  }
  info.begin = static_cast<uint64_t>(non_negative_integer(ctx, name, offsets->as_array()[0], "data_offsets[0]"));
  info.end = static_cast<uint64_t>(non_negative_integer(ctx, name, offsets->as_array()[1], "data_offsets[1]"));
  const std::string range = "[" + std::to_string(info.begin) + ", " + std::to_string(info.end) + "]";
  if (info.end < info.begin) fail(ErrorCode::Format, ctx.tensor(name) + "data_offsets " + range + " end before they begin");
  if (info.end > data_bytes) {
    fail(ErrorCode::Format, ctx.tensor(name) + "data_offsets " + range + " reach past the data section of " +
                                std::to_string(data_bytes) + " bytes");
  }
  uint64_t bytes;
  if (!checked_bytes(info.shape, info.dtype, bytes)) {
    fail(ErrorCode::Format, ctx.tensor(name) + "shape " + shape_string(info.shape) + " of " + dtype_name(info.dtype) +
                                " overflows 64-bit byte counts");
  }
  if (info.end - info.begin != bytes) {
    fail(ErrorCode::Format, ctx.tensor(name) + "shape " + shape_string(info.shape) + " of " + dtype_name(info.dtype) +
                                " needs " + std::to_string(bytes) + " bytes but data_offsets " + range + " hold " +
                                std::to_string(info.end - info.begin));
  }
  return info;
}

std::vector<std::pair<std::string, std::string>> parse_metadata(const Context& ctx, const JsonValue& value,
                                                                const SafetensorsLimits& limits) {
  if (!value.is_object()) fail(ErrorCode::Format, ctx.prefix() + "__metadata__ must be an object, got " + describe(value));
  const JsonValue::Object& entries = value.as_object();
  if (entries.size() > limits.max_metadata_entries) {
    fail(ErrorCode::Resource, ctx.prefix() + "__metadata__ has " + std::to_string(entries.size()) +
                                  " entries, more than the limit of " + std::to_string(limits.max_metadata_entries));
  }
  std::vector<std::pair<std::string, std::string>> metadata;
  metadata.reserve(entries.size());
  for (const JsonValue::Member& entry : entries) {
    if (!entry.second.is_string()) {
      fail(ErrorCode::Format, ctx.prefix() + "__metadata__ value of " + quote_for_message(entry.first) +
                                  " must be a string, got " + describe(entry.second));
    }
    metadata.emplace_back(entry.first, entry.second.as_string());
  }
  return metadata;
}

// The byte ranges must tile the data section exactly: no overlap (two tensors sharing
// bytes), no holes and no trailing bytes. The reference implementation demands the same;
// it keeps files from smuggling unaccounted data (polyglot files).
void check_coverage(const Context& ctx, const std::vector<TensorInfo>& tensors, uint64_t data_bytes) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair(tensors[a].begin, tensors[a].end) < std::pair(tensors[b].begin, tensors[b].end);
  });
  uint64_t covered = 0;  // every byte before this belongs to exactly one tensor
  const TensorInfo* previous = nullptr;
  for (size_t index : order) {
    const TensorInfo& t = tensors[index];
    if (t.begin < covered) {
      fail(ErrorCode::Format, ctx.tensor(t.name) + "data_offsets [" + std::to_string(t.begin) + ", " +
                                  std::to_string(t.end) + "] overlap those of tensor " + quote_for_message(previous->name) +
                                  " [" + std::to_string(previous->begin) + ", " + std::to_string(previous->end) + "]");
    }
    if (t.begin > covered) {
      fail(ErrorCode::Format, ctx.prefix() + "bytes [" + std::to_string(covered) + ", " + std::to_string(t.begin) +
                                  ") of the data section belong to no tensor");
    }
    covered = t.end;
    previous = &t;
  }
  if (covered != data_bytes) {
    fail(ErrorCode::Format, ctx.prefix() + "the data section has " + std::to_string(data_bytes) +
                                " bytes but the tensors cover only " + std::to_string(covered));
  }
}

[[noreturn]] void fail_io(const std::string& what, const std::string& path, int err) {
  fail(ErrorCode::Io, what + " '" + path + "': " + std::generic_category().message(err));
}

}  // namespace

const char* dtype_name(DType dtype) { return dtype_entry(dtype).name; }
size_t dtype_size(DType dtype) { return dtype_entry(dtype).size; }

int64_t TensorInfo::numel() const {
  int64_t n;
  if (!checked_numel(shape, n)) fail(ErrorCode::Argument, "tensor " + quote_for_message(name) + ": invalid shape " + shape_string(shape));
  return n;
}

float f16_to_f32(uint16_t bits) {
  const uint32_t sign = uint32_t{bits & 0x8000u} << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu;
  const uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa x 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1F) return float_from_bits(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN keeps its payload
  return float_from_bits(sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13));  // rebias the exponent
}

// bfloat16 is the top half of a float32.
float bf16_to_f32(uint16_t bits) { return float_from_bits(uint32_t{bits} << 16); }

std::shared_ptr<SafetensorsFile> SafetensorsFile::from_bytes(std::vector<uint8_t> bytes,
                                                             const SafetensorsLimits& limits) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile("<memory>"));
  file->owned_ = std::move(bytes);
  file->bytes_ = file->owned_.data();
  file->size_ = file->owned_.size();
  file->parse_header(limits);
  return file;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path, const SafetensorsLimits& limits) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile(path));
  uint64_t size = 0;
#if defined(FUSEDIFF_SAFETENSORS_MMAP)
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_io("cannot open", path, errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) fail_io("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) fail(ErrorCode::Io, "cannot read '" + path + "': not a regular file");
  size = static_cast<uint64_t>(st.st_size);
  if (size > std::numeric_limits<size_t>::max()) {
    fail(ErrorCode::Resource, "safetensors file '" + path + "' is too large for this platform");
  }
  // A file too short to hold the length field is rejected by parse_header; mmap of zero
  // bytes would fail anyway.
  if (size >= kLengthFieldBytes) {
    void* mapping = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping != MAP_FAILED) file->mapped_ = static_cast<const uint8_t*>(mapping);
  }
  if (!file->mapped_) {
    // Some file systems cannot be mapped: read the file instead.
    try {
      file->owned_.resize(static_cast<size_t>(size));
    } catch (const std::bad_alloc&) {
      fail(ErrorCode::Resource, "cannot allocate " + std::to_string(size) + " bytes to read '" + path + "'");
    }
    size_t done = 0;
    while (done < file->owned_.size()) {
      const ssize_t n = ::read(fd, file->owned_.data() + done, file->owned_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_io("cannot read", path, errno);
      if (n == 0) fail(ErrorCode::Io, "cannot read '" + path + "': the file shrank while being read");
      done += static_cast<size_t>(n);
    }
  }
#else
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail_io("cannot open", path, errno);
  const std::streamoff end = in.tellg();
  if (end < 0) fail(ErrorCode::Io, "cannot determine the size of '" + path + "'");
  size = static_cast<uint64_t>(end);
  if (size > std::numeric_limits<size_t>::max()) {
    fail(ErrorCode::Resource, "safetensors file '" + path + "' is too large for this platform");
  }
  try {
    file->owned_.resize(static_cast<size_t>(size));
  } catch (const std::bad_alloc&) {
    fail(ErrorCode::Resource, "cannot allocate " + std::to_string(size) + " bytes to read '" + path + "'");
  }
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(file->owned_.data()), static_cast<std::streamsize>(size))) {
    fail(ErrorCode::Io, "cannot read '" + path + "'");
  }
#endif
  file->bytes_ = file->mapped_ ? file->mapped_ : file->owned_.data();
  file->size_ = size;
  file->parse_header(limits);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
#if defined(FUSEDIFF_SAFETENSORS_MMAP)
  if (mapped_) ::munmap(const_cast<uint8_t*>(mapped_), static_cast<size_t>(size_));
#endif
}

void SafetensorsFile::parse_header(const SafetensorsLimits& limits) {
  const Context ctx{path_};
  if (size_ < kLengthFieldBytes) {
    fail(ErrorCode::Format, ctx.prefix() + "the file has " + std::to_string(size_) +
                                " bytes, fewer than the 8-byte header length");
  }
  const uint64_t header_bytes = load_le64(bytes_);
  if (header_bytes > size_ - kLengthFieldBytes) {
    fail(ErrorCode::Format, ctx.prefix() + "header length " + std::to_string(header_bytes) + " exceeds the " +
                                std::to_string(size_ - kLengthFieldBytes) + " bytes after the length field");
  }
  if (header_bytes > limits.max_header_bytes) {
    fail(ErrorCode::Resource, ctx.prefix() + "header length " + std::to_string(header_bytes) +
                                  " exceeds the limit of " + std::to_string(limits.max_header_bytes) + " bytes");
  }
  data_start_ = kLengthFieldBytes + header_bytes;
  const uint64_t data_bytes = size_ - data_start_;
  const std::string_view header(reinterpret_cast<const char*>(bytes_ + kLengthFieldBytes),
                                static_cast<size_t>(header_bytes));
  if (header.empty() || header[0] != '{') fail(ErrorCode::Format, ctx.prefix() + "the header does not start with '{'");

  // A valid header nests three levels (header, tensor entry, shape) and holds at most this
  // many values; bounding both stops a hostile header from building a huge DOM.
  JsonOptions options;
  options.max_bytes = header.size();
  options.max_depth = 3;
  const uint64_t per_tensor = 6 + static_cast<uint64_t>(std::max(limits.max_rank, 0));  // entry, dtype, shape + dims, offsets + 2
  const uint64_t max_values = saturating_add(saturating_add(saturating_mul(limits.max_tensors, per_tensor), 2),
                                             limits.max_metadata_entries);
  options.max_values = static_cast<size_t>(std::min<uint64_t>(max_values, std::numeric_limits<size_t>::max()));
  JsonValue root;
  try {
    root = parse_json(header, options);
  } catch (const Error& e) {
    fail(e.code(), ctx.prefix() + "header: " + e.what());
  }

  const JsonValue::Object& entries = root.as_object();  // the header starts with '{'
  const bool has_metadata = std::any_of(entries.begin(), entries.end(),
                                        [](const JsonValue::Member& m) { return m.first == kMetadataKey; });
  const uint64_t tensor_count = entries.size() - (has_metadata ? 1 : 0);
  if (tensor_count > limits.max_tensors) {
    fail(ErrorCode::Resource, ctx.prefix() + "the header lists " + std::to_string(tensor_count) +
                                  " tensors, more than the limit of " + std::to_string(limits.max_tensors));
  }
  tensors_.reserve(static_cast<size_t>(tensor_count));
  for (const JsonValue::Member& entry : entries) {
    if (entry.first == kMetadataKey) {
      metadata_ = parse_metadata(ctx, entry.second, limits);
    } else {
      tensors_.push_back(parse_tensor(ctx, entry.first, entry.second, limits, data_bytes));
    }
  }
  check_coverage(ctx, tensors_, data_bytes);

  by_name_.resize(tensors_.size());
  std::iota(by_name_.begin(), by_name_.end(), size_t{0});
  std::sort(by_name_.begin(), by_name_.end(), [&](size_t a, size_t b) { return tensors_[a].name < tensors_[b].name; });
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  const auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                   [&](size_t index, const std::string& key) { return tensors_[index].name < key; });
  return (it != by_name_.end() && tensors_[*it].name == name) ? &tensors_[*it] : nullptr;
}

const uint8_t* SafetensorsFile::data(const TensorInfo& info) const {
  // A TensorInfo built or edited by the caller must not lead outside the file.
  uint64_t bytes;
  const uint64_t data_bytes = size_ - data_start_;
  if (info.begin > info.end || info.end > data_bytes || !checked_bytes(info.shape, info.dtype, bytes) ||
      info.end - info.begin != bytes) {
    fail(ErrorCode::Argument, Context{path_}.tensor(info.name) + "the TensorInfo does not describe data of this file");
  }
  return bytes_ + data_start_ + info.begin;
}

void SafetensorsFile::read_float32(const TensorInfo& info, float* out) const {
  const uint8_t* src = data(info);
  const size_t n = static_cast<size_t>(info.numel());
  switch (info.dtype) {
    case DType::F32:
      for (size_t i = 0; i < n; ++i) out[i] = float_from_bits(load_le32(src + 4 * i));
      return;
    case DType::F64:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(double_from_bits(load_le64(src + 8 * i)));
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(load_le16(src + 2 * i));
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(load_le16(src + 2 * i));
      return;
    default:
      fail(ErrorCode::Unsupported, Context{path_}.tensor(info.name) + "dtype " + dtype_name(info.dtype) +
                                       " does not convert to float32 (F32, F64, F16 and BF16 do)");
  }
}

std::vector<float> SafetensorsFile::to_float32(const TensorInfo& info) const {
  data(info);  // validate before allocating numel() floats
  std::vector<float> out(static_cast<size_t>(info.numel()));
  read_float32(info, out.data());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  const std::string prefix = "write_safetensors '" + path + "': ";
  auto check_unique = [&](std::vector<std::string> names, const char* what) {
    std::sort(names.begin(), names.end());
    const auto dup = std::adjacent_find(names.begin(), names.end());
    if (dup != names.end()) fail(ErrorCode::Argument, prefix + "duplicate " + what + " " + quote_for_message(*dup));
  };

  std::vector<std::string> names;
  names.reserve(tensors.size());
  for (const TensorToWrite& t : tensors) names.push_back(t.name);
  check_unique(names, "tensor name");
  std::vector<std::string> keys;
  keys.reserve(metadata.size());
  for (const auto& entry : metadata) keys.push_back(entry.first);
  check_unique(keys, "metadata key");

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i) {
      header += (i ? "," : "") + json_quote(metadata[i].first) + ":" + json_quote(metadata[i].second);
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    const std::string where = prefix + "tensor " + quote_for_message(t.name) + ": ";
    if (t.name == kMetadataKey) fail(ErrorCode::Argument, where + "the name is reserved for metadata");
    uint64_t bytes;
    if (!checked_bytes(t.shape, t.dtype, bytes)) fail(ErrorCode::Argument, where + "invalid shape " + shape_string(t.shape));
    if (bytes != t.bytes) {
      fail(ErrorCode::Argument, where + "shape " + shape_string(t.shape) + " of " + dtype_name(t.dtype) + " needs " +
                                    std::to_string(bytes) + " bytes, got " + std::to_string(t.bytes));
    }
    if (bytes > 0 && t.data == nullptr) fail(ErrorCode::Argument, where + "data is null");
    if (header.size() > 1) header += ",";
    header += json_quote(t.name) + ":{\"dtype\":\"" + dtype_name(t.dtype) + "\",\"shape\":" +
              shape_string(t.shape) + ",\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  // Pad so the data section starts 8-byte aligned: readers can then view tensors in place.
  header.append((kLengthFieldBytes - header.size() % kLengthFieldBytes) % kLengthFieldBytes, ' ');

  uint8_t length_field[kLengthFieldBytes];
  for (size_t i = 0; i < kLengthFieldBytes; ++i) length_field[i] = static_cast<uint8_t>(header.size() >> (8 * i));

  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail_io("cannot create", path, errno);
  errno = 0;
  bool ok = std::fwrite(length_field, 1, sizeof length_field, f) == sizeof length_field &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i) {
    ok = tensors[i].bytes == 0 || std::fwrite(tensors[i].data, 1, tensors[i].bytes, f) == tensors[i].bytes;
  }
  int err = errno;
  if (std::fclose(f) != 0 && ok) {  // buffered data is flushed, and may fail, only here
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(path.c_str());
    fail_io("cannot write", path, err ? err : EIO);
  }
}

}  // namespace fusediff::io
