#include "backend/cuda_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace fusediff::backend {

namespace {
std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}
}  // namespace

std::string CudaLibrary::default_path() {
  if (const char* p = std::getenv("FUSEDIFF_CUDA_LIBRARY"); p && *p) return p;
  Dl_info info{};
  std::string dir = ".";
  if (dladdr(reinterpret_cast<void*>(&CudaLibrary::default_path), &info) && info.dli_fname) {
    const std::string self = info.dli_fname;
    const size_t slash = self.rfind('/');
    if (slash != std::string::npos) dir = self.substr(0, slash);
  }
  return dir + "/libfusediff_cuda.so";
}

std::shared_ptr<CudaLibrary> CudaLibrary::open(const std::string& path) {
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    fail(ErrorCode::BackendUnavailable,
         "the CUDA backend library was not found or did not load at " + path + " (" + dl_error() +
             "); it is built with the addon when a CUDA toolkit is present, or set FUSEDIFF_CUDA_LIBRARY to its path");
  std::shared_ptr<CudaLibrary> lib(new CudaLibrary());
  lib->path_ = path;
  lib->handle_ = handle;
  auto* version = reinterpret_cast<decltype(&fdc_abi_version)>(dlsym(handle, "fdc_abi_version"));
  if (!version) fail(ErrorCode::BackendUnavailable, path + " is not a fusediff CUDA library (no fdc_abi_version)");
  if (version() != FDC_ABI_VERSION)
    fail(ErrorCode::BackendUnavailable, path + " has CUDA ABI version " + std::to_string(version()) + ", this addon needs " +
                                            std::to_string(FDC_ABI_VERSION) + " (rebuild both together)");
#define FDC_FN(name)                                                                             \
  lib->api_.name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name));                    \
  if (!lib->api_.name) fail(ErrorCode::BackendUnavailable, path + " lacks the function " #name);
#include "backend/cuda_functions.inc"
#undef FDC_FN
  return lib;
}

std::shared_ptr<CudaLibrary> CudaLibrary::shared() {
  static std::mutex mutex;
  static std::shared_ptr<CudaLibrary> library;
  std::lock_guard<std::mutex> lock(mutex);
  if (!library) library = open(default_path());
  return library;
}

void CudaLibrary::check(int status, const std::string& what) const {
  if (status == FDC_OK) return;
  const std::string message = what + ": " + api_.fdc_last_error();
  switch (status) {
    case FDC_ERR_NO_DRIVER:
    case FDC_ERR_NO_DEVICE: fail(ErrorCode::BackendUnavailable, message);
    case FDC_ERR_ARGUMENT: fail(ErrorCode::Argument, message);
    case FDC_ERR_OUT_OF_MEMORY: fail(ErrorCode::Resource, message);
    case FDC_ERR_UNSUPPORTED: fail(ErrorCode::Unsupported, message);
    default: fail(ErrorCode::Internal, message + " (a CUDA error: please report it)");
  }
}

std::vector<fdc_device_props> CudaLibrary::devices() const {
  int count = 0;
  check(api_.fdc_device_count(&count), "CUDA devices");
  std::vector<fdc_device_props> out(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) check(api_.fdc_device_properties(i, &out[i]), "CUDA device " + std::to_string(i));
  return out;
}

CudaProbe probe_cuda() {
  CudaProbe probe;
  probe.library = CudaLibrary::default_path();
  try {
    auto lib = CudaLibrary::shared();
    probe.library = lib->path();
    probe.build = lib->build_info();
    probe.devices = lib->devices();
    probe.available = !probe.devices.empty();
  } catch (const std::exception& e) {
    probe.reason = e.what();
  }
  return probe;
}

}  // namespace fusediff::backend
