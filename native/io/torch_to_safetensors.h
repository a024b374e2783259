// `fusediff convert`: a PyTorch checkpoint rewritten as safetensors, without executing it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fusediff::io {

struct ConversionResult {
  size_t tensors = 0;
  uint64_t bytes = 0;  // tensor data written
};

// Writes every tensor of the PyTorch checkpoints `sources` (the shards of one state dict,
// read by TorchBinFile) to the safetensors file `destination`: names and dtypes unchanged,
// each tensor contiguous, with the metadata {"format": "pt"} diffusers writes. Errors are
// those of TorchBinFile and write_safetensors, and Format for a name found in two shards.
ConversionResult torch_bin_to_safetensors(const std::vector<std::string>& sources, const std::string& destination);

}  // namespace fusediff::io
