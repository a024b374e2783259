// Names that older diffusers checkpoints give weights which diffusers now names otherwise.
#pragma once
#include <string>
#include <vector>

namespace fusediff::unet {

// The legacy names of the weight diffusers calls `name`, to try when `name` is absent.
// Attention blocks saved before diffusers 0.14 (the google/ddpm-* checkpoints among them)
// call their projections query, key, value and proj_attn; diffusers renames them to to_q,
// to_k, to_v and to_out.0 when it loads them, and fusediff accepts both.
std::vector<std::string> legacy_weight_names(const std::string& name);

}  // namespace fusediff::unet
