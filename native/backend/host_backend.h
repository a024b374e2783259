// DeviceBackend in host memory: the "device" is this process, its kernels the reference
// implementations, and convolutions run through the CUDA kernels' own packed layout and GEMM
// indexing (cuda/shared/conv_layout.h). It lets the host tests run the device executor, the
// plan -> device-op translation and the weight packing end to end without a GPU, against
// the CPU executor.
#pragma once
#include <memory>

#include "backend/device_backend.h"

namespace fusediff::backend {

std::unique_ptr<DeviceBackend> make_host_backend();

}  // namespace fusediff::backend
