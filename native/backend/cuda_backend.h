// DeviceBackend over libfusediff_cuda.so: one CUDA context (device + stream) per backend;
// every call forwards to the C ABI and turns a failed status into an Error.
#pragma once
#include <memory>
#include <string>

#include "backend/cuda_library.h"
#include "backend/device_backend.h"

namespace fusediff::backend {

// How convolutions multiply on the device: "fp32", "tf32" (default) or "bf16";
// anything else gives Error(Argument).
int parse_cuda_math(const std::string& name);
const char* cuda_math_name(int math);

// Opens the library (CudaLibrary::shared), checks that `device` exists and creates a context.
// Error(BackendUnavailable) says what is missing.
std::unique_ptr<DeviceBackend> make_cuda_backend(int device, int math);

}  // namespace fusediff::backend
