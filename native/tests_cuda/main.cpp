// Entry point of the GPU checks (fusediff_cuda_tests): points the loader at the library built
// with this binary unless FUSEDIFF_CUDA_LIBRARY says otherwise, and fails with one clear line
// when there is no usable GPU.
#include <cstdio>
#include <cstdlib>

#include "backend/cuda_library.h"
#include "tests/check.h"

int main(int argc, char** argv) {
#if defined(FUSEDIFF_CUDA_LIBRARY_PATH)
  setenv("FUSEDIFF_CUDA_LIBRARY", FUSEDIFF_CUDA_LIBRARY_PATH, 0);
#endif
  const fusediff::backend::CudaProbe probe = fusediff::backend::probe_cuda();
  if (!probe.available) {
    std::fprintf(stderr, "fusediff_cuda_tests: no CUDA GPU to test on: %s\n", probe.reason.c_str());
    return 2;
  }
  std::printf("device 0: %s (compute %d.%d, %d SMs, %.1f GiB); %s\n", probe.devices[0].name, probe.devices[0].major,
              probe.devices[0].minor, probe.devices[0].multiprocessors, probe.devices[0].total_memory / 1073741824.0,
              probe.build.c_str());
  return fusediff::test::run_all(argc, argv);
}
