// Run-time CPU feature detection. Prebuilt binaries target a baseline ISA; faster kernel
// variants are compiled side by side and chosen here, once, from what the CPU reports
// (or from FUSEDIFF_CPU=avx512|avx2|generic|reference, which forces a path).
#pragma once
#include <string>

namespace fusediff {

struct CpuFeatures {
  bool avx2 = false;     // with FMA
  bool avx512 = false;   // F, BW, DQ, VL and OS support for zmm state
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
};

const CpuFeatures& cpu_features();

}  // namespace fusediff
