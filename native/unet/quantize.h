// Writes a fusediff-int8 weight file: the weights of a UNet2DModel with every conv and
// linear layer (except those kept float) quantized per output channel, symmetric int8.
//
// Storage (safetensors, diffusers names and PyTorch shapes):
//   <layer>.weight        I8  [out, in, kh, kw] or [out, in]   q, in [-127, 127]
//   <layer>.weight_scale  F32 [out]                             w ~= q * scale[out]
//   everything else (float layers, biases, norms, embeddings)  F32 as in the source
// Layers fused into one op (an attention's to_q/to_k/to_v; every ResNet's time_emb_proj)
// are quantized together or not at all (plan.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "unet/config.h"
#include "unet/weights.h"

namespace fusediff::unet {

struct QuantizedLayer {
  std::string name;
  bool int8 = false;
  // ||w - q * scale|| / ||w|| over the layer (0 for float layers).
  double relative_error = 0;
};

struct QuantizeResult {
  std::vector<QuantizedLayer> layers;
  int64_t tensors = 0;
  int64_t bytes = 0;  // of the written file
};

QuantizeResult write_quantized(const UNetConfig& config, std::vector<std::shared_ptr<WeightFile>> files,
                               const std::string& destination, const std::vector<std::string>& float_layers);

}  // namespace fusediff::unet
