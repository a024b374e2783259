// Tests of the PyTorch checkpoint reader (zip + restricted pickle + storage records) and of
// the conversion to safetensors: values of contiguous, strided, offset and half tensors;
// archives whose records do not match their pickle; hostile pickles inside an archive.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/torch_bin.h"
#include "io/torch_to_safetensors.h"
#include "tests/archive_builder.h"
#include "tests/check.h"
#include "unet/legacy_names.h"
#include "unet/weights.h"

using fusediff::ErrorCode;
using fusediff::io::DType;
using fusediff::io::TorchBinFile;
using fusediff::io::TorchBinLimits;
using fusediff::test::Pickle;
using fusediff::test::ZipFileSpec;

namespace {

std::vector<uint8_t> floats(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// float16 bit patterns of 1, -2, 0.5.
const std::vector<uint8_t> kHalves = {0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38};

Pickle state_pickle() {
  Pickle p;
  p.state_dict([](Pickle& q) {
    q.str("w").tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
    q.str("h").tensor("HalfStorage", "1", 3, 0, {3}, {1});
    q.str("wt").tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3});
    q.str("row").tensor("FloatStorage", "0", 6, 3, {3}, {1});
    q.str("scalar").tensor("FloatStorage", "0", 6, 5, {}, {});
  });
  return p;
}

std::vector<ZipFileSpec> records(const Pickle& pickle) {
  ZipFileSpec pkl{"model/data.pkl", pickle.b};
  pkl.extra_padding = 20;
  ZipFileSpec s0{"model/data/0", floats({0, 1, 2, 3, 4, 5})};
  s0.extra_padding = 33;
  ZipFileSpec s1{"model/data/1", kHalves};
  ZipFileSpec version{"model/version", {'3', '\n'}};
  return {pkl, s0, s1, version};
}

std::shared_ptr<TorchBinFile> open(const std::vector<ZipFileSpec>& files, const TorchBinLimits& limits = {}) {
  return TorchBinFile::from_bytes(fusediff::test::build_zip(files), limits);
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = std::filesystem::temp_directory_path() / ("fusediff-torchbin-" + std::to_string(stamp));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    const std::string file = (path / name).string();
    std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return file;
  }
};

}  // namespace

TEST_CASE("torch bin: tensors as views of their storages") {
  const auto file = open(records(state_pickle()));
  CHECK_EQ(file->tensors().size(), 5u);
  const auto* w = file->find("w");
  CHECK(w != nullptr && w->contiguous());
  CHECK(file->to_float32(*w) == (std::vector<float>{0, 1, 2, 3, 4, 5}));
  const auto* wt = file->find("wt");
  CHECK(!wt->contiguous());
  CHECK(file->to_float32(*wt) == (std::vector<float>{0, 3, 1, 4, 2, 5}));
  CHECK(file->to_float32(*file->find("row")) == (std::vector<float>{3, 4, 5}));
  CHECK(file->to_float32(*file->find("scalar")) == (std::vector<float>{5}));
  const auto* h = file->find("h");
  CHECK_EQ(h->dtype, DType::F16);
  CHECK(file->to_float32(*h) == (std::vector<float>{1, -2, 0.5f}));
  CHECK(file->find("missing") == nullptr);

  std::vector<uint8_t> scratch;
  const uint8_t* bytes = file->row_major_bytes(*wt, scratch);
  std::vector<float> gathered(6);
  std::memcpy(gathered.data(), bytes, 24);
  CHECK(gathered == (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST_CASE("torch bin: records that do not match the pickle") {
  auto files = records(state_pickle());
  files.erase(files.begin() + 2);  // no record for storage "1"
  CHECK_THROWS_WITH(open(files), ErrorCode::Format, "has no record");

  files = records(state_pickle());
  files[1].data.pop_back();  // storage "0" one byte short
  CHECK_THROWS_WITH(open(files), ErrorCode::Format, "holds 23 bytes");

  files = records(state_pickle());
  files.erase(files.begin());
  CHECK_THROWS_WITH(open(files), ErrorCode::Format, "no <archive>/data.pkl");

  files = records(state_pickle());
  files.push_back({"other/data.pkl", state_pickle().b});
  CHECK_THROWS_WITH(open(files), ErrorCode::Format, "two pickles");

  files = records(state_pickle());
  files.push_back({"model/byteorder", {'b', 'i', 'g'}});
  CHECK_THROWS_WITH(open(files), ErrorCode::Unsupported, "byte order");
  files.back().data = {'l', 'i', 't', 't', 'l', 'e'};
  CHECK_EQ(open(files)->tensors().size(), 5u);
}

TEST_CASE("torch bin: checksums") {
  auto zip = fusediff::test::build_zip(records(state_pickle()));
  // Flip a byte of storage "0": its data is the 24 bytes 0..5 as floats; find float 4.0.
  const std::vector<uint8_t> four = floats({4});
  const auto at = std::search(zip.begin(), zip.end(), four.begin(), four.end());
  CHECK(at != zip.end());
  *at ^= 0x10;
  CHECK_THROWS_WITH(TorchBinFile::from_bytes(zip), ErrorCode::Format, "corrupt");
  TorchBinLimits unchecked;
  unchecked.verify_checksums = false;
  CHECK_EQ(TorchBinFile::from_bytes(zip, unchecked)->tensors().size(), 5u);
}

TEST_CASE("torch bin: a hostile pickle inside a valid archive is refused before any record is read") {
  Pickle system;
  system.proto(2).global("posix", "system").str("touch /tmp/fusediff-pwned").op(0x85).reduce().stop();
  auto files = records(state_pickle());
  files[0].data = system.b;
  CHECK_THROWS_WITH(open(files), ErrorCode::Unsafe, "\"posix.system\"");
  CHECK(!std::filesystem::exists("/tmp/fusediff-pwned"));
}

TEST_CASE("torch bin: not a zip, and PyTorch's legacy format") {
  CHECK_THROWS_WITH(TorchBinFile::from_bytes({'h', 'e', 'l', 'l', 'o'}), ErrorCode::Format, "not a zip archive");
  CHECK_THROWS_WITH(TorchBinFile::from_bytes({0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc}), ErrorCode::Unsupported, "legacy");
}

TEST_CASE("torch bin: a tensor that is not the file's own is refused") {
  const auto a = open(records(state_pickle()));
  const auto b = open(records(state_pickle()));
  CHECK_THROWS_CODE(a->to_float32(*b->find("w")), ErrorCode::Argument);
}

TEST_CASE("torch bin: conversion to safetensors keeps names, dtypes and values") {
  TempDir dir;
  const std::string source = dir.write("model.bin", fusediff::test::build_zip(records(state_pickle())));
  const std::string destination = (dir.path / "model.safetensors").string();
  const auto result = fusediff::io::torch_bin_to_safetensors({source}, destination);
  CHECK_EQ(result.tensors, 5u);
  CHECK_EQ(result.bytes, uint64_t{24 + 6 + 24 + 12 + 4});
  const auto st = fusediff::io::SafetensorsFile::open(destination);
  CHECK_EQ(st->tensors().size(), 5u);
  CHECK(st->to_float32(*st->find("wt")) == (std::vector<float>{0, 3, 1, 4, 2, 5}));
  CHECK(st->to_float32(*st->find("row")) == (std::vector<float>{3, 4, 5}));
  CHECK_EQ(st->find("h")->dtype, DType::F16);
  CHECK(st->find("scalar")->shape.empty());
  CHECK(st->metadata() == (std::vector<std::pair<std::string, std::string>>{{"format", "pt"}}));

  // Two shards naming one tensor.
  CHECK_THROWS_WITH(fusediff::io::torch_bin_to_safetensors({source, source}, destination), ErrorCode::Format,
                    "more than one");
}

TEST_CASE("weights: legacy attention names and .bin files through FileWeights") {
  CHECK(fusediff::unet::legacy_weight_names("mid_block.attentions.0.to_q.weight") ==
        (std::vector<std::string>{"mid_block.attentions.0.query.weight"}));
  CHECK(fusediff::unet::legacy_weight_names("up_blocks.1.attentions.2.to_out.0.bias") ==
        (std::vector<std::string>{"up_blocks.1.attentions.2.proj_attn.bias"}));
  CHECK(fusediff::unet::legacy_weight_names("conv_in.weight").empty());

  TempDir dir;
  Pickle p;
  p.state_dict([](Pickle& q) {
    q.str("a.attentions.0.query.weight").tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
    q.str("a.attentions.0.to_k.weight").tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3});
  });
  auto files = records(p);
  files.erase(files.begin() + 2);  // no half storage in this pickle
  const std::string path = dir.write("w.bin", fusediff::test::build_zip(files));
  fusediff::unet::FileWeights weights({fusediff::unet::open_weight_file(path)});
  CHECK(weights.get("a.attentions.0.to_q.weight", {2, 3}) == (std::vector<float>{0, 1, 2, 3, 4, 5}));
  CHECK(weights.get("a.attentions.0.to_k.weight", {3, 2}) == (std::vector<float>{0, 3, 1, 4, 2, 5}));
  CHECK_THROWS_WITH(weights.get("a.attentions.0.to_q.weight", {3, 2}), ErrorCode::Shape, "query.weight");
  CHECK_THROWS_WITH(weights.get("a.attentions.0.to_v.weight", {2, 3}), ErrorCode::Format, "value.weight");
}
