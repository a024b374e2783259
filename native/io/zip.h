// Reader of the zip archives PyTorch writes (torch.save since PyTorch 1.6). The central
// directory is parsed and every entry checked against the file before any entry is used:
// offsets and sizes within the file, local headers that agree with the directory, entries
// that do not overlap, unique names. Entries must be stored uncompressed, as PyTorch writes
// them, so their bytes are viewed in place; compressed, encrypted and multi-disk archives
// are refused. Zip64 records are read, so archives above 4 GiB work.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/mapped_file.h"

namespace fusediff::io {

struct ZipEntry {
  std::string name;
  uint64_t offset;  // of the entry's bytes, from the start of the archive
  uint64_t size;
  uint32_t crc32;
};

struct ZipLimits {
  uint64_t max_entries = uint64_t{1} << 18;  // a checkpoint has one entry per storage: thousands
};

// Immutable once parsed: any number of threads may read entries at once.
class ZipArchive {
 public:
  // Errors: Format for bytes that are not a well-formed archive, Unsupported for compressed,
  // encrypted or multi-disk archives, Resource above the limits.
  ZipArchive(std::shared_ptr<const MappedFile> file, const ZipLimits& limits = {});

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;  // nullptr if absent
  // The entry's `size` bytes (an entry of this archive; anything else throws Argument).
  const uint8_t* data(const ZipEntry& entry) const;
  // Error(Format) naming the entry when its bytes do not match the CRC-32 the archive records.
  void verify_checksum(const ZipEntry& entry) const;
  const std::string& path() const { return file_->path(); }

 private:
  std::shared_ptr<const MappedFile> file_;
  std::vector<ZipEntry> entries_;
  std::vector<size_t> by_name_;  // indices into entries_, sorted by name
};

// True when the bytes start like a zip archive (a local file header, or an empty archive).
bool looks_like_zip(const uint8_t* data, uint64_t size);

// CRC-32 as zip computes it (the reflected IEEE 802.3 polynomial), continuing from `crc`.
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

}  // namespace fusediff::io
