#include "io/torch_bin.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "io/json.h"

namespace fusediff::io {
namespace {

constexpr const char* kPickleRecord = "data.pkl";

std::string where(const std::string& path) { return "PyTorch checkpoint '" + path + "'"; }

// A .bin that is not a zip is either PyTorch's legacy format (a bare pickle stream, before
// PyTorch 1.6) or not a checkpoint at all; say which.
std::shared_ptr<const MappedFile> require_zip(std::shared_ptr<const MappedFile> file) {
  if (!looks_like_zip(file->data(), file->size())) {
    const bool pickle = file->size() >= 2 && file->data()[0] == 0x80 && file->data()[1] <= 5;
    if (pickle)
      fail(ErrorCode::Unsupported, where(file->path()) +
                                       " is a bare pickle, PyTorch's legacy format (before PyTorch 1.6), which fusediff "
                                       "does not read: re-save it with torch.save from a current PyTorch");
    fail(ErrorCode::Format, where(file->path()) + " is not a zip archive (torch.save writes one since PyTorch 1.6)");
  }
  return file;
}

}  // namespace

int64_t TorchTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // checked not to overflow when the pickle was read
  return n;
}

bool TorchTensor::contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && stride[i] != expected) return false;  // a dim of one may have any stride
    expected *= shape[i];
  }
  return true;
}

std::shared_ptr<TorchBinFile> TorchBinFile::open(const std::string& path, const TorchBinLimits& limits) {
  return std::shared_ptr<TorchBinFile>(new TorchBinFile(MappedFile::open(path), limits));
}

std::shared_ptr<TorchBinFile> TorchBinFile::from_bytes(std::vector<uint8_t> bytes, const TorchBinLimits& limits) {
  return std::shared_ptr<TorchBinFile>(new TorchBinFile(MappedFile::from_bytes(std::move(bytes)), limits));
}

TorchBinFile::TorchBinFile(std::shared_ptr<const MappedFile> file, const TorchBinLimits& limits)
    : zip_(require_zip(std::move(file)), limits.zip) {
  const std::string w = where(path());
  // torch.save puts every record in one folder: <name>/data.pkl, <name>/data/<key>, ...
  const ZipEntry* pickle = nullptr;
  for (const ZipEntry& e : zip_.entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || e.name.compare(slash + 1, std::string::npos, kPickleRecord) != 0) continue;
    if (pickle) fail(ErrorCode::Format, w + " has two pickles, " + quote_for_message(pickle->name) + " and " + quote_for_message(e.name));
    pickle = &e;
  }
  if (!pickle) fail(ErrorCode::Format, w + " has no <archive>/data.pkl record: it was not written by torch.save");
  const std::string folder = pickle->name.substr(0, pickle->name.size() - std::strlen(kPickleRecord));

  // Written by PyTorch >= 2.1; older archives are little-endian.
  if (const ZipEntry* order = zip_.find(folder + "byteorder")) {
    const std::string value(reinterpret_cast<const char*>(zip_.data(*order)),
                            static_cast<size_t>(std::min<uint64_t>(order->size, 16)));
    if (value != "little")
      fail(ErrorCode::Unsupported, w + " stores its tensors in byte order " + quote_for_message(value) +
                                       "; fusediff reads little-endian checkpoints");
  }
  if (pickle->size > limits.max_pickle_bytes)
    fail(ErrorCode::Resource, w + ": data.pkl has " + std::to_string(pickle->size) + " bytes, more than the limit of " +
                                  std::to_string(limits.max_pickle_bytes));
  if (limits.verify_checksums) zip_.verify_checksum(*pickle);
  PickledStateDict dict = unpickle_state_dict(zip_.data(*pickle), static_cast<size_t>(pickle->size),
                                              w + " " + pickle->name, limits.pickle);

  // Each storage's record must hold exactly its numel elements; views were checked against
  // numel by the unpickler, so every tensor then lies inside its record.
  std::vector<const ZipEntry*> records;
  for (const PickledStorage& s : dict.storages) {
    const std::string name = folder + "data/" + s.key;
    const ZipEntry* record = zip_.find(name);
    if (!record) fail(ErrorCode::Format, w + ": storage " + quote_for_message(s.key) + " has no record " + quote_for_message(name));
    uint64_t bytes;
    if (__builtin_mul_overflow(static_cast<uint64_t>(s.numel), uint64_t{dtype_size(s.dtype)}, &bytes) ||
        record->size != bytes)
      fail(ErrorCode::Format, w + ": record " + quote_for_message(name) + " holds " + std::to_string(record->size) +
                                  " bytes, but the pickle says it is a storage of " + std::to_string(s.numel) + " " +
                                  dtype_name(s.dtype) + " elements");
    if (limits.verify_checksums) zip_.verify_checksum(*record);
    records.push_back(record);
  }
  tensors_.reserve(dict.tensors.size());
  for (PickledTensor& t : dict.tensors) {
    tensors_.push_back({std::move(t.name), dict.storages[t.storage].dtype, std::move(t.shape), std::move(t.stride),
                        t.offset, records[t.storage]});
  }
  by_name_.resize(tensors_.size());
  std::iota(by_name_.begin(), by_name_.end(), size_t{0});
  std::sort(by_name_.begin(), by_name_.end(), [&](size_t a, size_t b) { return tensors_[a].name < tensors_[b].name; });
}

const TorchTensor* TorchBinFile::find(const std::string& name) const {
  const auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                   [&](size_t index, const std::string& key) { return tensors_[index].name < key; });
  return (it != by_name_.end() && tensors_[*it].name == name) ? &tensors_[*it] : nullptr;
}

const TorchTensor& TorchBinFile::own(const TorchTensor& tensor) const {
  // A TorchTensor made or edited by the caller must not lead outside the file.
  if (tensors_.empty() || &tensor < tensors_.data() || &tensor >= tensors_.data() + tensors_.size())
    fail(ErrorCode::Argument, where(path()) + ": tensor " + quote_for_message(tensor.name) + " is not one of this file's");
  return tensor;
}

template <typename Visit>
void TorchBinFile::for_each_run(const TorchTensor& t, Visit&& visit) const {
  const uint8_t* base = zip_.data(*t.storage);
  const size_t element = dtype_size(t.dtype);
  const int64_t numel = t.numel();
  if (numel == 0) return;
  if (t.contiguous()) {
    visit(base + static_cast<size_t>(t.offset) * element, numel);
    return;
  }
  // An odometer over the dims; the last dim is one run when its stride is 1.
  const bool unit = t.stride.back() == 1;
  const size_t dims = unit ? t.shape.size() - 1 : t.shape.size();
  const int64_t run = unit ? t.shape.back() : 1;
  std::vector<int64_t> index(dims, 0);
  int64_t at = t.offset;
  for (;;) {
    visit(base + static_cast<size_t>(at) * element, run);
    size_t d = dims;
    for (;;) {
      if (d == 0) return;
      --d;
      if (++index[d] < t.shape[d]) {
        at += t.stride[d];
        break;
      }
      at -= (t.shape[d] - 1) * t.stride[d];
      index[d] = 0;
    }
  }
}

void TorchBinFile::read_float32(const TorchTensor& tensor, float* out) const {
  const TorchTensor& t = own(tensor);
  if (!converts_to_float32(t.dtype))
    fail(ErrorCode::Unsupported, where(path()) + ": tensor " + quote_for_message(t.name) + " has dtype " +
                                     dtype_name(t.dtype) + ", which does not convert to float32 (F32, F64, F16 and BF16 do)");
  for_each_run(t, [&](const uint8_t* p, int64_t n) {
    convert_to_float32(t.dtype, p, static_cast<size_t>(n), out);
    out += n;
  });
}

std::vector<float> TorchBinFile::to_float32(const TorchTensor& tensor) const {
  std::vector<float> out(static_cast<size_t>(own(tensor).numel()));
  read_float32(tensor, out.data());
  return out;
}

const uint8_t* TorchBinFile::row_major_bytes(const TorchTensor& tensor, std::vector<uint8_t>& scratch) const {
  const TorchTensor& t = own(tensor);
  const size_t element = dtype_size(t.dtype);
  if (t.numel() == 0) return zip_.data(*t.storage);  // the offset of an empty view is not checked
  if (t.contiguous()) return zip_.data(*t.storage) + static_cast<size_t>(t.offset) * element;
  scratch.resize(static_cast<size_t>(t.numel()) * element);
  uint8_t* out = scratch.data();
  for_each_run(t, [&](const uint8_t* p, int64_t n) {
    std::memcpy(out, p, static_cast<size_t>(n) * element);
    out += static_cast<size_t>(n) * element;
  });
  return scratch.data();
}

}  // namespace fusediff::io
