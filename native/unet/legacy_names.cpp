#include "unet/legacy_names.h"

namespace fusediff::unet {

std::vector<std::string> legacy_weight_names(const std::string& name) {
  struct Rename {
    const char* current;
    const char* legacy;
  };
  static constexpr Rename kAttention[] = {
      {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
  std::vector<std::string> out;
  for (const char* param : {"weight", "bias"}) {
    for (const Rename& r : kAttention) {
      const std::string suffix = std::string(r.current) + param;
      if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
        out.push_back(name.substr(0, name.size() - suffix.size()) + r.legacy + param);
    }
  }
  return out;
}

}  // namespace fusediff::unet
