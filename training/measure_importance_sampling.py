"""Would importance sampling of timesteps help the teacher? A measurement, not a training run.

Usage:
    OMP_NUM_THREADS=2 /usr/bin/python3 measure_importance_sampling.py [--run-dir .../teacher]

Improved DDPM (Nichol & Dhariwal 2021, sec. 3.3) samples t with p(t) proportional to
sqrt(E[L_t^2]) and weights each term by 1 / (T p(t)), which leaves the loss unbiased and
minimises the variance of its one-sample estimate; they found it helps the noisy L_vlb and
not the simple objective. This script measures the same quantity for this teacher's
objective (v-MSE, cosine schedule): per timestep bucket, the mean and second moment of the
per-tile loss of the EMA teacher on the held-out tiles, then the variance of the loss
estimate under uniform t and under the importance distribution,
    Var_uniform = E_t[E[L^2 | t]] - L^2,     Var_IS = (E_t sqrt(E[L^2 | t]))^2 - L^2,
where L is the mean loss. A ratio near 1 means importance sampling would not help.
"""

import argparse
import os

import torch

import device as devices
import diffusion
import train_teacher
import unet


def main():
    p = argparse.ArgumentParser(description="Measure what importance sampling of t would gain.")
    p.add_argument("--data", default="/work/fusediff-train/data/tiles.npz")
    p.add_argument("--run-dir", default="/work/fusediff-train/teacher")
    p.add_argument("--buckets", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    state = devices.load(os.path.join(args.run_dir, train_teacher.CHECKPOINT))
    model = unet.UNet2DModel(state["config"])
    model.load_state_dict(state["ema"])
    model.eval()
    _, _, val_x, val_y, _ = train_teacher.load_data(args.data)
    abar = diffusion.cosine_alphas_cumprod()
    g = torch.Generator().manual_seed(5)
    T = diffusion.NUM_TRAIN_TIMESTEPS
    width = T // args.buckets
    mean, second = [], []
    with torch.no_grad():
        for b in range(args.buckets):
            t = torch.randint(b * width, (b + 1) * width, (len(val_x),), generator=g)
            eps = torch.randn(val_x.shape, generator=g)
            a = abar[t]
            out = model(diffusion.add_noise(val_x, eps, a), t.float(), val_y)
            per_tile = ((out - diffusion.v_target(val_x, eps, a)) ** 2).flatten(1).mean(1)
            mean.append(per_tile.mean().item())
            second.append((per_tile ** 2).mean().item())
            print(f"t in [{b * width}, {(b + 1) * width}): mean loss {mean[-1]:.4f}, E[L^2] {second[-1]:.5f}", flush=True)
    m = torch.tensor(mean)
    s = torch.tensor(second)
    loss = m.mean()
    var_uniform = s.mean() - loss ** 2
    var_is = s.sqrt().mean() ** 2 - loss ** 2
    print(f"teacher step {state['step']}: mean loss {loss:.4f}; variance of the one-sample loss estimate: "
          f"uniform {var_uniform:.5f}, importance-sampled {var_is:.5f} (ratio {var_is / var_uniform:.3f})")


if __name__ == "__main__":
    main()
