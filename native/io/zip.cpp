#include "io/zip.h"

#include <algorithm>
#include <array>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "io/bytes.h"
#include "io/json.h"

namespace fusediff::io {
namespace {

// Record signatures and fixed sizes (PKWARE APPNOTE, sections 4.3.7 to 4.3.16).
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndRecord = 0x06054b50;
constexpr uint32_t kZip64EndRecord = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint64_t kLocalBytes = 30;
constexpr uint64_t kCentralBytes = 46;
constexpr uint64_t kEndBytes = 22;
constexpr uint64_t kZip64EndBytes = 56;
constexpr uint64_t kZip64LocatorBytes = 20;
constexpr uint64_t kMaxComment = 0xFFFF;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagStrongEncryption = 0x0040;

struct Reader {
  const uint8_t* bytes;
  uint64_t size;
  const std::string& path;

  [[noreturn]] void bad(const std::string& what) const {
    fail(ErrorCode::Format, "zip archive '" + path + "': " + what);
  }
  // The `n` bytes at `at` lie inside the file (overflow-safe).
  bool fits(uint64_t at, uint64_t n, uint64_t end) const { return at <= end && n <= end - at; }
  uint16_t u16(uint64_t at) const { return load_le16(bytes + at); }
  uint32_t u32(uint64_t at) const { return load_le32(bytes + at); }
  uint64_t u64(uint64_t at) const { return load_le64(bytes + at); }
};

// Where the central directory is and how many entries it holds, from the end records.
struct Directory {
  uint64_t offset = 0, size = 0, count = 0;
  uint64_t limit = 0;  // the directory must end here: at the first end record
};

Directory read_end_records(const Reader& r) {
  if (r.size < kEndBytes) r.bad("the file has " + std::to_string(r.size) + " bytes, too few for a zip archive");
  // The end record closes the file, followed only by its comment.
  uint64_t end = std::numeric_limits<uint64_t>::max();
  const uint64_t lowest = r.size - kEndBytes > kMaxComment ? r.size - kEndBytes - kMaxComment : 0;
  for (uint64_t at = r.size - kEndBytes + 1; at-- > lowest;) {
    if (r.u32(at) == kEndRecord && at + kEndBytes + r.u16(at + 20) == r.size) {
      end = at;
      break;
    }
  }
  if (end == std::numeric_limits<uint64_t>::max())
    r.bad("no end-of-central-directory record: not a zip archive, or a truncated one");

  uint64_t disk = r.u16(end + 4), directory_disk = r.u16(end + 6);
  uint64_t disk_entries = r.u16(end + 8);
  Directory d;
  d.count = r.u16(end + 10);
  d.size = r.u32(end + 12);
  d.offset = r.u32(end + 16);
  d.limit = end;
  const bool zip64 = d.count == 0xFFFF || disk_entries == 0xFFFF || d.size == 0xFFFFFFFF ||
                     d.offset == 0xFFFFFFFF || disk == 0xFFFF || directory_disk == 0xFFFF;
  if (zip64) {
    if (end < kZip64LocatorBytes || r.u32(end - kZip64LocatorBytes) != kZip64Locator)
      r.bad("the end record asks for zip64 values but there is no zip64 locator before it");
    const uint64_t locator = end - kZip64LocatorBytes;
    const uint64_t record = r.u64(locator + 8);
    if (!r.fits(record, kZip64EndBytes, locator) || r.u32(record) != kZip64EndRecord)
      r.bad("the zip64 locator points at " + std::to_string(record) + ", where there is no zip64 end record");
    disk = r.u32(record + 16);
    directory_disk = r.u32(record + 20);
    disk_entries = r.u64(record + 24);
    d.count = r.u64(record + 32);
    d.size = r.u64(record + 40);
    d.offset = r.u64(record + 48);
    d.limit = record;
  }
  if (disk != 0 || directory_disk != 0 || disk_entries != d.count)
    fail(ErrorCode::Unsupported, "zip archive '" + r.path + "' spans several disks");
  if (!r.fits(d.offset, d.size, d.limit))
    r.bad("the central directory [" + std::to_string(d.offset) + ", +" + std::to_string(d.size) +
          ") does not lie before the end record at " + std::to_string(d.limit));
  return d;
}

// The zip64 extra field replaces the 32-bit values that are saturated, in this order.
void apply_zip64_extra(const Reader& r, uint64_t extra, uint64_t extra_bytes, const std::string& name,
                       uint64_t& size, uint64_t& compressed, uint64_t& local_offset) {
  uint64_t at = extra;
  const uint64_t end = extra + extra_bytes;
  while (at + 4 <= end) {
    const uint16_t id = r.u16(at), bytes = r.u16(at + 2);
    if (!r.fits(at + 4, bytes, end)) r.bad("entry " + quote_for_message(name) + ": an extra field runs past its header");
    if (id == kZip64ExtraId) {
      uint64_t field = at + 4;
      for (uint64_t* value : {&size, &compressed, &local_offset}) {
        if (*value != 0xFFFFFFFF) continue;
        if (!r.fits(field, 8, at + 4 + bytes)) r.bad("entry " + quote_for_message(name) + ": the zip64 extra field is too short");
        *value = r.u64(field);
        field += 8;
      }
    }
    at += 4 + uint64_t{bytes};
  }
}

ZipEntry read_entry(const Reader& r, uint64_t& at, const Directory& d) {
  const uint64_t directory_end = d.offset + d.size;
  if (!r.fits(at, kCentralBytes, directory_end) || r.u32(at) != kCentralHeader)
    r.bad("central directory entry at " + std::to_string(at) + " is missing or truncated");
  const uint16_t flags = r.u16(at + 8), method = r.u16(at + 10);
  uint64_t compressed = r.u32(at + 20), size = r.u32(at + 24), local = r.u32(at + 42);
  const uint64_t name_bytes = r.u16(at + 28), extra_bytes = r.u16(at + 30), comment_bytes = r.u16(at + 32);
  const uint16_t disk = r.u16(at + 34);
  if (!r.fits(at + kCentralBytes, name_bytes + extra_bytes + comment_bytes, directory_end))
    r.bad("central directory entry at " + std::to_string(at) + " runs past the directory");
  ZipEntry entry;
  entry.name.assign(reinterpret_cast<const char*>(r.bytes + at + kCentralBytes), name_bytes);
  entry.crc32 = r.u32(at + 16);
  const std::string what = "entry " + quote_for_message(entry.name) + " ";
  apply_zip64_extra(r, at + kCentralBytes + name_bytes, extra_bytes, entry.name, size, compressed, local);
  at += kCentralBytes + name_bytes + extra_bytes + comment_bytes;

  if (entry.name.empty() || entry.name.find('\0') != std::string::npos) r.bad(what + "has an empty name or one with a NUL byte");
  if (flags & (kFlagEncrypted | kFlagStrongEncryption))
    fail(ErrorCode::Unsupported, "zip archive '" + r.path + "': " + what + "is encrypted");
  if (method != 0)
    fail(ErrorCode::Unsupported, "zip archive '" + r.path + "': " + what + "is compressed (method " +
                                     std::to_string(method) + "); PyTorch stores entries uncompressed, and fusediff reads only those");
  if (disk != 0) fail(ErrorCode::Unsupported, "zip archive '" + r.path + "' spans several disks");
  if (compressed != size)
    r.bad(what + "is stored, yet its compressed size " + std::to_string(compressed) + " differs from its size " +
          std::to_string(size));

  // The local header must agree with the directory: a reader that trusts one and a reader
  // that trusts the other must see the same archive.
  if (!r.fits(local, kLocalBytes, d.offset) || r.u32(local) != kLocalHeader)
    r.bad(what + "has no local header at " + std::to_string(local));
  const uint64_t local_name = r.u16(local + 26), local_extra = r.u16(local + 28);
  if (!r.fits(local + kLocalBytes, local_name + local_extra, d.offset)) r.bad(what + "has a local header that runs past the entries");
  if (r.u16(local + 8) != method || local_name != name_bytes ||
      !std::equal(entry.name.begin(), entry.name.end(), r.bytes + local + kLocalBytes))
    r.bad(what + "has a local header that disagrees with the central directory");
  entry.offset = local + kLocalBytes + local_name + local_extra;
  entry.size = size;
  if (!r.fits(entry.offset, entry.size, d.offset))
    r.bad(what + "reaches past the start of the central directory (" + std::to_string(size) + " bytes at " +
          std::to_string(entry.offset) + ")");
  return entry;
}

// Slicing-by-8 tables: table[k][b] is the CRC of byte b followed by k zero bytes.
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;
const CrcTables& crc_tables() {
  static const CrcTables tables = [] {
    CrcTables t{};
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; ++b) {
      for (size_t k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
    }
    return t;
  }();
  return tables;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  const CrcTables& t = crc_tables();
  crc = ~crc;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    const uint32_t lo = crc ^ load_le32(data + i), hi = load_le32(data + i + 4);
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
  }
  for (; i < size; ++i) crc = (crc >> 8) ^ t[0][(crc ^ data[i]) & 0xFF];
  return ~crc;
}

bool looks_like_zip(const uint8_t* data, uint64_t size) {
  return size >= 4 && (load_le32(data) == kLocalHeader || load_le32(data) == kEndRecord);
}

ZipArchive::ZipArchive(std::shared_ptr<const MappedFile> file, const ZipLimits& limits) : file_(std::move(file)) {
  const Reader r{file_->data(), file_->size(), file_->path()};
  const Directory d = read_end_records(r);
  if (d.count > limits.max_entries)
    fail(ErrorCode::Resource, "zip archive '" + path() + "' has " + std::to_string(d.count) +
                                  " entries, more than the limit of " + std::to_string(limits.max_entries));
  if (d.count > d.size / kCentralBytes)
    r.bad(std::to_string(d.count) + " entries cannot fit in a central directory of " + std::to_string(d.size) + " bytes");
  entries_.reserve(static_cast<size_t>(d.count));
  uint64_t at = d.offset;
  for (uint64_t i = 0; i < d.count; ++i) entries_.push_back(read_entry(r, at, d));
  if (at != d.offset + d.size)
    r.bad("the central directory holds " + std::to_string(at - d.offset) + " bytes of entries, but its size is " +
          std::to_string(d.size));

  by_name_.resize(entries_.size());
  std::iota(by_name_.begin(), by_name_.end(), size_t{0});
  std::sort(by_name_.begin(), by_name_.end(), [&](size_t a, size_t b) { return entries_[a].name < entries_[b].name; });
  for (size_t i = 1; i < by_name_.size(); ++i) {
    if (entries_[by_name_[i]].name == entries_[by_name_[i - 1]].name)
      r.bad("two entries are named " + quote_for_message(entries_[by_name_[i]].name));
  }
  // No two entries' bytes may overlap (one byte range read as two different entries).
  std::vector<const ZipEntry*> by_offset;
  for (const ZipEntry& e : entries_) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const ZipEntry* a, const ZipEntry* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i - 1]->offset + by_offset[i - 1]->size > by_offset[i]->offset)
      r.bad("entries " + quote_for_message(by_offset[i - 1]->name) + " and " + quote_for_message(by_offset[i]->name) +
            " overlap");
  }
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  const auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                   [&](size_t index, std::string_view key) { return entries_[index].name < key; });
  return (it != by_name_.end() && entries_[*it].name == name) ? &entries_[*it] : nullptr;
}

const uint8_t* ZipArchive::data(const ZipEntry& entry) const {
  if (entries_.empty() || &entry < entries_.data() || &entry >= entries_.data() + entries_.size())
    fail(ErrorCode::Argument, "zip archive '" + path() + "': the entry does not belong to this archive");
  return file_->data() + entry.offset;
}

void ZipArchive::verify_checksum(const ZipEntry& entry) const {
  const uint32_t actual = crc32(data(entry), static_cast<size_t>(entry.size));
  if (actual != entry.crc32)
    fail(ErrorCode::Format, "zip archive '" + path() + "': entry " + quote_for_message(entry.name) +
                                " is corrupt (CRC-32 " + std::to_string(actual) + ", the archive records " +
                                std::to_string(entry.crc32) + ")");
}

}  // namespace fusediff::io
