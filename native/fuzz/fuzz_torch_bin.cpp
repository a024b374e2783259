// libFuzzer target: any byte string through the PyTorch .bin reader, twice: as a whole
// checkpoint (zip, pickle, storage records, then every small tensor through the float32
// and row-major readers), and as a bare data.pkl straight into the restricted unpickler,
// which zip-wrapped mutations seldom reach. The only acceptable outcomes are a result or
// fusediff::Error; sanitizers catch everything else.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "io/pickle.h"
#include "io/torch_bin.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fusediff;
  io::TorchBinLimits limits;
  limits.verify_checksums = false;  // else nearly every mutation fails its CRC before the pickle
  limits.pickle.max_objects = 1 << 16;  // keep single inputs cheap
  limits.pickle.max_stack = 1 << 16;
  try {
    auto file = io::TorchBinFile::from_bytes(std::vector<uint8_t>(data, data + size), limits);
    std::vector<uint8_t> scratch;
    for (const io::TorchTensor& t : file->tensors()) {
      if (t.numel() > (1 << 16)) continue;
      (void)file->row_major_bytes(t, scratch);
      try {
        (void)file->to_float32(t);
      } catch (const Error&) {
        // integer dtypes are refused by name
      }
    }
  } catch (const Error&) {
  }
  try {
    (void)io::unpickle_state_dict(data, size, "fuzz", limits.pickle);
  } catch (const Error&) {
  }
  return 0;
}
