// The timestep projections of diffusers' UNet2DModel, evaluated in float64 and rounded once.
#pragma once
#include <vector>

namespace fusediff::unet {

// Sinusoidal ("positional") embedding of width `dim` (Ho et al. 2020 / Vaswani et al. 2017):
//   f_j = exp(-ln(10000) * j / (half - freq_shift)),  a_j = t * f_j,  j < half = dim / 2
//   emb = [sin a, cos a] (or [cos a, sin a] with flip_sin_to_cos), plus one 0 if dim is odd.
void sinusoidal_embedding(const std::vector<double>& t, int dim, bool flip_sin_to_cos, double freq_shift, float* out);

// Gaussian Fourier features (Song et al. 2021, NCSN++): u_j = ln(t) * w_j * 2 pi,
// emb = [sin u, cos u], width 2 * w.size(); t is a noise level sigma > 0.
void fourier_embedding(const std::vector<double>& t, const std::vector<float>& w, float* out);

}  // namespace fusediff::unet
