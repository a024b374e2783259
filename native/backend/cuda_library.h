// libfusediff_cuda.so, opened at run time: the addon never links CUDA, so it loads and works
// on machines without it. The library is looked for at $FUSEDIFF_CUDA_LIBRARY, else beside
// the binary holding this code (the addon: build/Release/ or prebuilds/<platform>-<arch>/).
//
// Every failure is an Error with a message that says which step failed: the library is not
// at <path> (dlopen's reason), its ABI version differs, a symbol is missing, there is no CUDA
// driver, or no device.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fusediff_cuda.h"

namespace fusediff::backend {

class CudaLibrary {
 public:
  // The resolved C ABI (cuda/include/fusediff_cuda.h).
  struct Api {
#define FDC_FN(name) decltype(&::name) name = nullptr;
#include "backend/cuda_functions.inc"
#undef FDC_FN
  };

  // Opens `path` and checks it; throws Error(BackendUnavailable).
  static std::shared_ptr<CudaLibrary> open(const std::string& path);
  // The library at default_path(), opened once per process (a failure is retried on the next call).
  static std::shared_ptr<CudaLibrary> shared();
  static std::string default_path();

  const std::string& path() const { return path_; }
  const Api& api() const { return api_; }
  std::string build_info() const { return api_.fdc_build_info(); }

  // Throws the Error matching a failed status (no driver / no device: BackendUnavailable;
  // argument: Argument; memory: Resource; unsupported: Unsupported; other CUDA errors: Internal),
  // with `what` and the library's message.
  void check(int status, const std::string& what) const;

  // The devices, or Error(BackendUnavailable) saying why there are none.
  std::vector<fdc_device_props> devices() const;

 private:
  CudaLibrary() = default;
  std::string path_;
  void* handle_ = nullptr;  // never dlclose()d: the CUDA runtime inside must not be unloaded
  Api api_;
};

// What `fusediff info` reports: never throws.
struct CudaProbe {
  bool available = false;
  std::string library;  // the path looked at
  std::string build;    // the library's build info, when it loaded
  std::string reason;   // why not available
  std::vector<fdc_device_props> devices;
};
CudaProbe probe_cuda();

}  // namespace fusediff::backend
