#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <string_view>

#include "core/error.h"
#include "io/bytes.h"
#include "io/json.h"

namespace fusediff::io {

namespace {

constexpr const char* kMetadataKey = "__metadata__";
constexpr uint64_t kLengthFieldBytes = 8;

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
  DType dtype;
  if (dtype_from_name(value.as_string(), dtype)) return dtype;
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

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n;
  if (!checked_numel(shape, n)) fail(ErrorCode::Argument, "tensor " + quote_for_message(name) + ": invalid shape " + shape_string(shape));
  return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::from_bytes(std::vector<uint8_t> bytes,
                                                             const SafetensorsLimits& limits) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile(MappedFile::from_bytes(std::move(bytes))));
  file->parse_header(limits);
  return file;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path, const SafetensorsLimits& limits) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile(MappedFile::open(path)));
  file->parse_header(limits);
  return file;
}

void SafetensorsFile::parse_header(const SafetensorsLimits& limits) {
  const Context ctx{path()};
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
    fail(ErrorCode::Argument, Context{path()}.tensor(info.name) + "the TensorInfo does not describe data of this file");
  }
  return bytes_ + data_start_ + info.begin;
}

void SafetensorsFile::read_float32(const TensorInfo& info, float* out) const {
  const uint8_t* src = data(info);
  if (!converts_to_float32(info.dtype)) {
    fail(ErrorCode::Unsupported, Context{path()}.tensor(info.name) + "dtype " + dtype_name(info.dtype) +
                                     " does not convert to float32 (F32, F64, F16 and BF16 do)");
  }
  convert_to_float32(info.dtype, src, static_cast<size_t>(info.numel()), out);
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
