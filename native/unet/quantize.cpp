#include "unet/quantize.h"

#include <cmath>
#include <map>
#include <set>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "unet/plan.h"

namespace fusediff::unet {

QuantizeResult write_quantized(const UNetConfig& config, std::vector<std::shared_ptr<WeightFile>> files,
                               const std::string& destination, const std::vector<std::string>& float_layers) {
  const std::vector<LayerInfo> layers = plan_layers(config);
  std::set<std::string> keep(float_layers.begin(), float_layers.end());
  std::map<std::string, bool> quantize;  // layer -> int8
  for (const LayerInfo& l : layers) {
    bool q = true;
    for (const std::string& member : l.group.empty() ? std::vector<std::string>{l.name} : l.group)
      if (keep.count(member)) q = false;
    quantize[l.name] = q;
  }
  WeightRecorder recorder;
  build_plan(config, recorder, kernels::reference_kernels(), /*dry_run=*/true);
  FileWeights weights(std::move(files));

  struct Stored {
    std::string name;
    io::DType dtype;
    std::vector<int64_t> shape;
    std::vector<float> f;
    std::vector<int8_t> q;
  };
  std::vector<Stored> out;
  QuantizeResult result;
  std::map<std::string, double> errors;
  for (const WeightRecorder::Entry& e : recorder.entries()) {
    const std::string suffix = ".weight";
    const bool is_weight = e.name.size() > suffix.size() && e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0;
    const std::string layer = is_weight ? e.name.substr(0, e.name.size() - suffix.size()) : "";
    auto it = quantize.find(layer);
    if (it == quantize.end() || !it->second) {
      out.push_back({e.name, io::DType::F32, e.shape, weights.get(e.name, e.shape), {}});
      continue;
    }
    Stored w{e.name, io::DType::I8, e.shape, {}, {}};
    Stored s{e.name + "_scale", io::DType::F32, {e.shape[0]}, {}, {}};
    const int out_c = static_cast<int>(e.shape[0]);
    if (!weights.get_int8(e.name, e.shape, &w.q, &s.f)) {  // already int8: kept as is
      const std::vector<float> f = weights.get(e.name, e.shape);
      w.q.resize(f.size());
      s.f.resize(out_c);
      kernels::quantize_per_channel(f.data(), out_c, static_cast<int64_t>(f.size()) / out_c, w.q.data(), s.f.data());
      double num = 0, den = 0;
      const size_t per = f.size() / out_c;
      for (size_t i = 0; i < f.size(); ++i) {
        const double d = f[i] - static_cast<double>(w.q[i]) * s.f[i / per];
        num += d * d;
        den += static_cast<double>(f[i]) * f[i];
      }
      errors[layer] = den > 0 ? std::sqrt(num / den) : 0.0;
    }
    out.push_back(std::move(w));
    out.push_back(std::move(s));
  }
  for (const LayerInfo& l : layers) result.layers.push_back({l.name, quantize[l.name], errors.count(l.name) ? errors[l.name] : 0.0});

  std::vector<io::TensorToWrite> tensors;
  for (const Stored& t : out) {
    if (t.dtype == io::DType::I8)
      tensors.push_back({t.name, t.dtype, t.shape, t.q.data(), t.q.size()});
    else
      tensors.push_back({t.name, t.dtype, t.shape, t.f.data(), t.f.size() * sizeof(float)});
  }
  io::write_safetensors(destination, tensors, {{"format", "pt"}, {"fusediff_quantization", "fusediff-int8/1"}});
  result.tensors = static_cast<int64_t>(tensors.size());
  struct stat st {};
  if (stat(destination.c_str(), &st) == 0) result.bytes = st.st_size;
  return result;
}

}  // namespace fusediff::unet
