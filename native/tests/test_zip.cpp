// Tests of the zip reader: archives as PyTorch writes them (stored entries, data
// descriptors, aligned data, zip64), and broken or hostile archives, each of which must end
// in fusediff::Error with the right code.
#include <string>
#include <vector>

#include "io/zip.h"
#include "tests/archive_builder.h"
#include "tests/check.h"

using fusediff::ErrorCode;
using fusediff::io::MappedFile;
using fusediff::io::ZipArchive;
using fusediff::io::ZipLimits;
using fusediff::test::build_zip;
using fusediff::test::ZipFileSpec;

namespace {

std::vector<uint8_t> bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

ZipArchive open(std::vector<uint8_t> data, const ZipLimits& limits = {}) {
  return ZipArchive(MappedFile::from_bytes(std::move(data)), limits);
}

std::vector<ZipFileSpec> three_files() {
  ZipFileSpec a{"archive/data.pkl", bytes("pickle bytes")};
  a.extra_padding = 40;
  ZipFileSpec b{"archive/data/0", std::vector<uint8_t>(1000, 7)};
  ZipFileSpec c{"archive/version", bytes("3\n")};
  return {a, b, c};
}

std::string content(const ZipArchive& zip, const std::string& name) {
  const fusediff::io::ZipEntry* e = zip.find(name);
  if (!e) return "<absent>";
  return std::string(reinterpret_cast<const char*>(zip.data(*e)), e->size);
}

}  // namespace

TEST_CASE("zip: crc32 known answers") {
  CHECK_EQ(fusediff::io::crc32(reinterpret_cast<const uint8_t*>("123456789"), 9), 0xCBF43926u);
  CHECK_EQ(fusediff::io::crc32(nullptr, 0), 0u);
  std::vector<uint8_t> data(1031);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  CHECK_EQ(fusediff::io::crc32(data.data(), data.size()), fusediff::test::reference_crc32(data));
  // Continuing a CRC over a split buffer gives the CRC of the whole.
  const uint32_t first = fusediff::io::crc32(data.data(), 500);
  CHECK_EQ(fusediff::io::crc32(data.data() + 500, data.size() - 500, first), fusediff::test::reference_crc32(data));
}

TEST_CASE("zip: entries of a stored archive, in place") {
  for (bool zip64 : {false, true}) {
    const ZipArchive zip = open(build_zip(three_files(), zip64));
    CHECK_EQ(zip.entries().size(), 3u);
    CHECK_EQ(content(zip, "archive/data.pkl"), std::string("pickle bytes"));
    CHECK_EQ(content(zip, "archive/version"), std::string("3\n"));
    CHECK_EQ(content(zip, "archive/data/0"), std::string(1000, '\7'));
    CHECK(zip.find("archive/data/1") == nullptr);
    CHECK(zip.find("archive") == nullptr);
    for (const auto& e : zip.entries()) zip.verify_checksum(e);
  }
}

TEST_CASE("zip: an empty archive") {
  const ZipArchive zip = open(build_zip({}));
  CHECK(zip.entries().empty());
}

TEST_CASE("zip: every truncation is refused as malformed") {
  const std::vector<uint8_t> full = build_zip(three_files());
  for (size_t n = 0; n < full.size(); ++n) {
    CHECK_THROWS_CODE(open(std::vector<uint8_t>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n))),
                      ErrorCode::Format);
  }
}

TEST_CASE("zip: not an archive") {
  CHECK_THROWS_WITH(open(bytes("this is not a zip file at all, just some text")), ErrorCode::Format,
                    "end-of-central-directory");
  CHECK(!fusediff::io::looks_like_zip(reinterpret_cast<const uint8_t*>("\x80\x02"), 2));
}

TEST_CASE("zip: compressed and encrypted entries are refused") {
  auto files = three_files();
  files[1].method = 8;
  CHECK_THROWS_WITH(open(build_zip(files)), ErrorCode::Unsupported, "compressed (method 8)");
  files = three_files();
  files[2].flags |= 1;
  CHECK_THROWS_WITH(open(build_zip(files)), ErrorCode::Unsupported, "encrypted");
}

TEST_CASE("zip: a local header that disagrees with the directory") {
  auto files = three_files();
  files[1].local_name = "archive/data/X";
  CHECK_THROWS_WITH(open(build_zip(files)), ErrorCode::Format, "disagrees");
}

TEST_CASE("zip: duplicate names") {
  auto files = three_files();
  files[2].name = files[0].name;
  CHECK_THROWS_WITH(open(build_zip(files)), ErrorCode::Format, "two entries");
}

TEST_CASE("zip: sizes and offsets that leave the file or overlap") {
  std::vector<uint8_t> z = build_zip(three_files());
  // The central directory starts after the three local records; find its first entry.
  size_t directory = 0;
  for (size_t i = 0; i + 4 <= z.size(); ++i) {
    if (z[i] == 0x50 && z[i + 1] == 0x4b && z[i + 2] == 1 && z[i + 3] == 2) {
      directory = i;
      break;
    }
  }
  CHECK(directory > 0);
  {
    auto bad = z;  // first entry's size grows past the central directory
    fusediff::test::set32(bad, directory + 20, 1u << 30);
    fusediff::test::set32(bad, directory + 24, 1u << 30);
    CHECK_THROWS_WITH(open(bad), ErrorCode::Format, "reaches past");
  }
  {
    auto bad = z;  // compressed size != size for a stored entry
    fusediff::test::set32(bad, directory + 20, 3);
    CHECK_THROWS_WITH(open(bad), ErrorCode::Format, "compressed size");
  }
  {
    auto bad = z;  // local header offset far outside
    fusediff::test::set32(bad, directory + 42, 0x7FFFFFFF);
    CHECK_THROWS_WITH(open(bad), ErrorCode::Format, "local header");
  }
  {
    // Two directory entries point at the same local record under the same name would be a
    // duplicate; give the second its own name but the first's local offset: overlap or
    // disagreement, never two readings of one byte range.
    auto bad = z;
    const size_t second = directory + 46 + std::string("archive/data.pkl").size();
    fusediff::test::set32(bad, second + 42, 0);
    CHECK_THROWS_CODE(open(bad), ErrorCode::Format);
  }
  {
    auto bad = z;  // the end record's directory offset points outside
    fusediff::test::set32(bad, bad.size() - 6, 0xFFFFFF0u);
    CHECK_THROWS_CODE(open(bad), ErrorCode::Format);
  }
}

TEST_CASE("zip: a corrupt entry fails its checksum") {
  std::vector<uint8_t> z = build_zip(three_files());
  const ZipArchive good = open(z);
  const size_t at = static_cast<size_t>(good.find("archive/data/0")->offset + 10);
  z[at] ^= 1;
  const ZipArchive zip = open(z);
  CHECK_THROWS_WITH(zip.verify_checksum(*zip.find("archive/data/0")), ErrorCode::Format, "corrupt");
  zip.verify_checksum(*zip.find("archive/version"));
}

TEST_CASE("zip: entry count above the limit") {
  ZipLimits limits;
  limits.max_entries = 2;
  CHECK_THROWS_WITH(open(build_zip(three_files()), limits), ErrorCode::Resource, "limit");
}

TEST_CASE("zip: an entry from another archive is refused") {
  const ZipArchive a = open(build_zip(three_files()));
  const ZipArchive b = open(build_zip(three_files()));
  CHECK_THROWS_CODE(a.data(*b.find("archive/version")), ErrorCode::Argument);
}
