// libFuzzer target: any byte string through the safetensors validator, and for files that
// pass, every tensor through the float32 conversion. The only acceptable outcomes are a
// parsed file or fusediff::Error; sanitizers catch everything else.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fusediff;
  try {
    io::SafetensorsLimits limits;
    limits.max_header_bytes = 1 << 20;  // keep single inputs cheap
    auto file = io::SafetensorsFile::from_bytes(std::vector<uint8_t>(data, data + size), limits);
    for (const io::TensorInfo& t : file->tensors()) {
      if (t.numel() > (1 << 20)) continue;
      try {
        (void)file->to_float32(t);
      } catch (const Error&) {
        // non-float dtypes are refused by name
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
