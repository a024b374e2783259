#include "io/torch_to_safetensors.h"

#include <deque>
#include <memory>
#include <set>

#include "core/error.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "io/torch_bin.h"

namespace fusediff::io {

ConversionResult torch_bin_to_safetensors(const std::vector<std::string>& sources, const std::string& destination) {
  std::vector<std::shared_ptr<TorchBinFile>> files;
  for (const std::string& source : sources) files.push_back(TorchBinFile::open(source));

  // Contiguous tensors are written straight from the mapped files; only strided views
  // (rare in a state dict) are gathered into buffers of their own.
  std::deque<std::vector<uint8_t>> gathered;  // a deque: buffers stay put as it grows
  std::vector<TensorToWrite> tensors;
  std::set<std::string> names;
  ConversionResult result;
  for (const auto& file : files) {
    for (const TorchTensor& t : file->tensors()) {
      if (!names.insert(t.name).second)
        fail(ErrorCode::Format, "tensor " + quote_for_message(t.name) + " is in more than one of the checkpoint's shards");
      gathered.emplace_back();
      const uint8_t* data = file->row_major_bytes(t, gathered.back());
      const size_t bytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype);
      tensors.push_back({t.name, t.dtype, t.shape, data, bytes});
      ++result.tensors;
      result.bytes += bytes;
    }
  }
  write_safetensors(destination, tensors, {{"format", "pt"}});
  return result;
}

}  // namespace fusediff::io
