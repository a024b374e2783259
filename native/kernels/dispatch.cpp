// Chooses the kernel table once per process from the CPU's features or FUSEDIFF_CPU.
#include <cstdlib>

#include "core/cpu_features.h"
#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/reference/reference.h"

namespace fusediff::kernels {
namespace {

const KernelTable kReference{"reference", reference::pack_conv, reference::conv2d, reference::attention};
const KernelTable kGeneric{"generic", generic::pack_conv, generic::conv2d, cpu::attention};
#if defined(FUSEDIFF_HAVE_X86_KERNELS)
const KernelTable kAvx2{"avx2", avx2::pack_conv, avx2::conv2d, cpu::attention};
const KernelTable kAvx512{"avx512", avx512::pack_conv, avx512::conv2d, cpu::attention};
#endif

}  // namespace

const KernelTable& reference_kernels() { return kReference; }

const KernelTable& kernels_by_name(const std::string& name) {
  if (name == "reference") return kReference;
  if (name == "generic") return kGeneric;
#if defined(FUSEDIFF_HAVE_X86_KERNELS)
  if (name == "avx2") {
    if (!cpu_features().avx2) fail(ErrorCode::Argument, "FUSEDIFF_CPU=avx2 but this CPU lacks AVX2/FMA");
    return kAvx2;
  }
  if (name == "avx512") {
    if (!cpu_features().avx512) fail(ErrorCode::Argument, "FUSEDIFF_CPU=avx512 but this CPU lacks AVX-512");
    return kAvx512;
  }
#endif
  fail(ErrorCode::Argument, "unknown CPU kernel path '" + name +
                                "' (FUSEDIFF_CPU takes avx512, avx2, generic or reference; x86 paths only on x86)");
}

const KernelTable& select_kernels() {
  if (const char* forced = std::getenv("FUSEDIFF_CPU"); forced && *forced) return kernels_by_name(forced);
#if defined(FUSEDIFF_HAVE_X86_KERNELS)
  if (cpu_features().avx512) return kAvx512;
  if (cpu_features().avx2) return kAvx2;
#endif
  return kGeneric;
}

}  // namespace fusediff::kernels
