// Chooses the kernel table once per process from the CPU's features or FUSEDIFF_CPU, and the
// float convolutions' algorithm from their shape (FUSEDIFF_CONV=direct turns Winograd off).
// A table pairs the float kernels of one ISA with the int8/bf16 kernels of one (possibly
// richer) ISA: AVX-512 CPUs with VNNI (Cascade Lake, Ice Lake) and with BF16 as well
// (Cooper Lake, Sapphire Rapids, Zen 4) get faster low-precision kernels than plain
// AVX-512 (Skylake-X), whose int8 path uses the exact vpmaddubsw/vpmaddwd pair.
#include <cstdlib>

#include "core/cpu_features.h"
#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/reference/reference.h"

namespace fusediff::kernels {
namespace {

#define FUSEDIFF_TABLE(name, ns, lowp_name, lp)                                                                \
  KernelTable {                                                                                                \
    name, ns::pack_conv, ns::conv2d, ns::attention_scratch_floats, ns::attention, ns::group_norm_scratch_floats, \
        ns::group_norm, lowp_name, lp::pack_conv_int8, lp::pack_conv_bf16, lp::lowp_conv_scratch_bytes,       \
        lp::conv2d_int8, lp::conv2d_bf16                                                                       \
  }
const KernelTable kReference = FUSEDIFF_TABLE("reference", reference, "reference", reference);
const KernelTable kGeneric = FUSEDIFF_TABLE("generic", generic, "generic", generic);
#if defined(FUSEDIFF_HAVE_X86_KERNELS)
const KernelTable kAvx2 = FUSEDIFF_TABLE("avx2", avx2, "avx2", avx2);
const KernelTable kAvx512 = FUSEDIFF_TABLE("avx512", avx512, "avx512", avx512);
const KernelTable kAvx512Vnni = FUSEDIFF_TABLE("avx512", avx512, "avx512_vnni", avx512_vnni);
const KernelTable kAvx512Bf16 = FUSEDIFF_TABLE("avx512", avx512, "avx512_bf16", avx512_bf16);
#endif
#undef FUSEDIFF_TABLE

}  // namespace

const KernelTable& reference_kernels() { return kReference; }

const KernelTable& kernels_by_name(const std::string& name) {
  if (name == "reference") return kReference;
  if (name == "generic") return kGeneric;
#if defined(FUSEDIFF_HAVE_X86_KERNELS)
  const CpuFeatures& f = cpu_features();
  if (name == "avx2") {
    if (!f.avx2) fail(ErrorCode::Argument, "FUSEDIFF_CPU=avx2 but this CPU lacks AVX2/FMA");
    return kAvx2;
  }
  if (name == "avx512") {
    if (!f.avx512) fail(ErrorCode::Argument, "FUSEDIFF_CPU=avx512 but this CPU lacks AVX-512");
    return kAvx512;
  }
  if (name == "avx512_vnni") {
    if (!f.avx512_vnni) fail(ErrorCode::Argument, "FUSEDIFF_CPU=avx512_vnni but this CPU lacks AVX-512 VNNI");
    return kAvx512Vnni;
  }
  if (name == "avx512_bf16") {
    if (!f.avx512_vnni || !f.avx512_bf16)
      fail(ErrorCode::Argument, "FUSEDIFF_CPU=avx512_bf16 but this CPU lacks AVX-512 VNNI and BF16");
    return kAvx512Bf16;
  }
#endif
  fail(ErrorCode::Argument, "unknown CPU kernel path '" + name +
                                "' (FUSEDIFF_CPU takes avx512_bf16, avx512_vnni, avx512, avx2, generic or reference; "
                                "x86 paths only on x86)");
}

const KernelTable& select_kernels() {
  if (const char* forced = std::getenv("FUSEDIFF_CPU"); forced && *forced) return kernels_by_name(forced);
#if defined(FUSEDIFF_HAVE_X86_KERNELS)
  const CpuFeatures& f = cpu_features();
  if (f.avx512 && f.avx512_vnni && f.avx512_bf16) return kAvx512Bf16;
  if (f.avx512 && f.avx512_vnni) return kAvx512Vnni;
  if (f.avx512) return kAvx512;
  if (f.avx2) return kAvx2;
#endif
  return kGeneric;
}

bool winograd_applies(int kernel, int stride, int pad, int in_c, int out_c) {
  return kernel == 3 && stride == 1 && pad == 1 && in_c > 0 && out_c > 0 && in_c % 16 == 0 && out_c % 16 == 0;
}

// The 32-channel threshold, from fusediff_bench_kernels at batch 16, 32x32 (AVX-512, two threads):
// 32 -> 32 channels ran 1.2x faster by Winograd, 16 -> 16 and 16 -> 32 0.8-0.99x (the
// transforms and the short GEMMs outweigh the saved multiply-adds).
ConvAlgorithm float_conv_algorithm(int kernel, int stride, int pad, int in_c, int out_c) {
  static const bool direct_only = [] {
    const char* v = std::getenv("FUSEDIFF_CONV");
    if (v == nullptr || *v == '\0' || std::string(v) == "auto") return false;
    if (std::string(v) == "direct") return true;
    fail(ErrorCode::Argument, std::string("unknown FUSEDIFF_CONV '") + v + "' (takes auto or direct)");
  }();
  const bool winograd = !direct_only && winograd_applies(kernel, stride, pad, in_c, out_c) && in_c >= 32 && out_c >= 32;
  return winograd ? ConvAlgorithm::Winograd2x2 : ConvAlgorithm::Direct;
}

}  // namespace fusediff::kernels
