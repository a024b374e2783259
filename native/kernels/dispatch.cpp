// Chooses the kernel table once per process from the CPU's features or FUSEDIFF_CPU.
#include <cstdlib>

#include "core/cpu_features.h"
#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/reference/reference.h"

namespace fusediff::kernels {
namespace {

#define FUSEDIFF_TABLE(name, ns) \
  KernelTable {                                                                                            \
    name, ns::pack_conv, ns::conv2d, ns::attention_scratch_floats, ns::attention, ns::group_norm_scratch_floats, \
        ns::group_norm                                                                                       \
  }
const KernelTable kReference = FUSEDIFF_TABLE("reference", reference);
const KernelTable kGeneric = FUSEDIFF_TABLE("generic", generic);
#if defined(FUSEDIFF_HAVE_X86_KERNELS)
const KernelTable kAvx2 = FUSEDIFF_TABLE("avx2", avx2);
const KernelTable kAvx512 = FUSEDIFF_TABLE("avx512", avx512);
#endif
#undef FUSEDIFF_TABLE

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
