// Seeded weights for any UNet config, for tests and device benchmarks: conv and linear
// weights uniform with fan-in scaling (activations stay O(1) through the net), biases small,
// GroupNorm scales near 1. The same seed gives the same weights in the same request order.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "unet/weights.h"

namespace fusediff::testing {

class RandomWeights : public unet::WeightSource {
 public:
  explicit RandomWeights(uint32_t seed) : gen_(seed) {}
  std::vector<float> get(const std::string& name, const std::vector<int64_t>& shape) override {
    int64_t n = 1, fan_in = 1;
    for (size_t i = 0; i < shape.size(); ++i) n *= shape[i], fan_in *= i > 0 ? shape[i] : 1;
    const bool norm_scale = name.find("norm") != std::string::npos && name.size() > 7 &&
                            name.compare(name.size() - 7, 7, ".weight") == 0;
    const bool bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const float scale = bias ? 0.05f : shape.size() > 1 ? std::sqrt(3.0f / static_cast<float>(fan_in)) : 1.0f;
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = norm_scale ? 1.0f + 0.1f * dist(gen_) : scale * dist(gen_);
    return v;
  }

 private:
  std::mt19937 gen_;
};

}  // namespace fusediff::testing
