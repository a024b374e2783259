// Builders of zip archives and pickles for the native tests of the PyTorch .bin reader.
// Written from the format specifications, independently of the readers they test, so a
// test can produce both what torch.save writes and every kind of broken or hostile file.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace fusediff::test {

inline void put16(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 2; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void put64(std::vector<uint8_t>& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void set32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// Bit-by-bit CRC-32 (the slow, obvious definition).
inline uint32_t reference_crc32(const std::vector<uint8_t>& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
  }
  return ~crc;
}

struct ZipFileSpec {
  ZipFileSpec(std::string name_, std::vector<uint8_t> data_) : name(std::move(name_)), data(std::move(data_)) {}
  std::string name;
  std::vector<uint8_t> data;
  uint16_t method = 0;  // 0 stored
  uint16_t flags = 0x0808;  // data descriptor + UTF-8 names, as PyTorch writes
  uint16_t extra_padding = 0;  // bytes of local extra field (PyTorch aligns data to 64 bytes)
  std::string local_name;  // when not empty, a local header name that differs
};

// Writes a zip: local header + data (+ data descriptor) per entry, central directory, end
// record; with zip64, also the zip64 end record and locator and zip64 extra fields.
inline std::vector<uint8_t> build_zip(const std::vector<ZipFileSpec>& files, bool zip64 = false) {
  std::vector<uint8_t> out;
  std::vector<uint64_t> offsets;
  for (const ZipFileSpec& f : files) {
    offsets.push_back(out.size());
    const std::string& lname = f.local_name.empty() ? f.name : f.local_name;
    put32(out, 0x04034b50);
    put16(out, 45);
    put16(out, f.flags);
    put16(out, f.method);
    put16(out, 0);
    put16(out, 0);
    put32(out, 0);  // crc, sizes: in the data descriptor
    put32(out, 0);
    put32(out, 0);
    put16(out, static_cast<uint32_t>(lname.size()));
    put16(out, f.extra_padding ? f.extra_padding + 4u : 0u);
    out.insert(out.end(), lname.begin(), lname.end());
    if (f.extra_padding) {
      put16(out, 0x4246);  // an unknown extra field id, skipped by readers
      put16(out, f.extra_padding);
      out.insert(out.end(), f.extra_padding, 'Z');
    }
    out.insert(out.end(), f.data.begin(), f.data.end());
    put32(out, 0x08074b50);
    put32(out, reference_crc32(f.data));
    put32(out, static_cast<uint32_t>(f.data.size()));
    put32(out, static_cast<uint32_t>(f.data.size()));
  }
  const uint64_t directory = out.size();
  for (size_t i = 0; i < files.size(); ++i) {
    const ZipFileSpec& f = files[i];
    put32(out, 0x02014b50);
    put16(out, 45);
    put16(out, 45);
    put16(out, f.flags);
    put16(out, f.method);
    put16(out, 0);
    put16(out, 0);
    put32(out, reference_crc32(f.data));
    put32(out, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(f.data.size()));
    put32(out, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(f.data.size()));
    put16(out, static_cast<uint32_t>(f.name.size()));
    put16(out, zip64 ? 28 : 0);
    put16(out, 0);
    put16(out, 0);
    put16(out, 0);
    put32(out, 0);
    put32(out, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(offsets[i]));
    out.insert(out.end(), f.name.begin(), f.name.end());
    if (zip64) {
      put16(out, 0x0001);
      put16(out, 24);
      put64(out, f.data.size());
      put64(out, f.data.size());
      put64(out, offsets[i]);
    }
  }
  const uint64_t directory_size = out.size() - directory;
  if (zip64) {
    const uint64_t record = out.size();
    put32(out, 0x06064b50);
    put64(out, 44);
    put16(out, 45);
    put16(out, 45);
    put32(out, 0);
    put32(out, 0);
    put64(out, files.size());
    put64(out, files.size());
    put64(out, directory_size);
    put64(out, directory);
    put32(out, 0x07064b50);
    put32(out, 0);
    put64(out, record);
    put32(out, 1);
  }
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, zip64 ? 0xFFFF : static_cast<uint32_t>(files.size()));
  put16(out, zip64 ? 0xFFFF : static_cast<uint32_t>(files.size()));
  put32(out, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(directory_size));
  put32(out, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(directory));
  put16(out, 0);
  return out;
}

// Emits pickle opcodes; method names follow pickletools.
struct Pickle {
  std::vector<uint8_t> b;
  Pickle& op(uint8_t code) {
    b.push_back(code);
    return *this;
  }
  Pickle& proto(uint8_t v) { return op(0x80).op(v); }
  Pickle& mark() { return op('('); }
  Pickle& stop() { return op('.'); }
  Pickle& none() { return op('N'); }
  Pickle& boolean(bool v) { return op(v ? 0x88 : 0x89); }
  Pickle& int1(uint8_t v) { return op('K').op(v); }
  Pickle& int4(int32_t v) {
    op('J');
    put32(b, static_cast<uint32_t>(v));
    return *this;
  }
  Pickle& str(const std::string& s) {
    op('X');
    put32(b, static_cast<uint32_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    op('c');
    b.insert(b.end(), module.begin(), module.end());
    b.push_back('\n');
    b.insert(b.end(), name.begin(), name.end());
    b.push_back('\n');
    return *this;
  }
  Pickle& put(uint8_t i) { return op('q').op(i); }
  Pickle& get(uint8_t i) { return op('h').op(i); }
  Pickle& tuple() { return op('t'); }
  Pickle& empty_tuple() { return op(')'); }
  Pickle& reduce() { return op('R'); }
  Pickle& ordered_dict() { return global("collections", "OrderedDict").empty_tuple().reduce(); }
  Pickle& int_tuple(const std::vector<int64_t>& v) {
    mark();
    for (int64_t x : v) int4(static_cast<int32_t>(x));
    return tuple();
  }
  // _rebuild_tensor_v2(storage ('storage', torch.<cls>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& storage_class, const std::string& key, int64_t numel, int64_t offset,
                 const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    mark().str("storage").global("torch", storage_class).str(key).str("cpu").int4(static_cast<int32_t>(numel)).tuple();
    op('Q');
    int4(static_cast<int32_t>(offset)).int_tuple(size).int_tuple(stride).boolean(false).ordered_dict();
    return tuple().reduce();
  }
  // OrderedDict() then SETITEMS of (name, tensor) entries written by `entries`.
  template <typename Entries>
  Pickle& state_dict(Entries&& entries) {
    proto(2).ordered_dict().mark();
    entries(*this);
    return op('u').stop();
  }
};

}  // namespace fusediff::test
