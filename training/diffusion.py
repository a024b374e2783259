"""Noise schedule, v-prediction training target and DDIM sampling for the teacher.

Forward process (Ho et al. 2020, DDPM, eq. 4):
    x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps,   t in {0, ..., T-1}
Objective: v-prediction (Salimans & Ho 2022, "Progressive Distillation", sec. 4):
    v_t = sqrt(abar_t) * eps - sqrt(1 - abar_t) * x0
    x0  = sqrt(abar_t) * x_t - sqrt(1 - abar_t) * v
    eps = sqrt(abar_t) * v   + sqrt(1 - abar_t) * x_t
Schedule: the cosine schedule of Nichol & Dhariwal 2021 ("Improved DDPM", eq. 17),
which diffusers calls "squaredcos_cap_v2", with T = 1000.

The tables are built exactly as diffusers builds them (betas in float64, rounded
to float32, cumulative product in float32), so the exported scheduler config
describes the very schedule the network was trained on.
"""

import math

import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000
BETA_SCHEDULE = "squaredcos_cap_v2"
PREDICTION_TYPE = "v_prediction"


def cosine_alphas_cumprod(num_steps=NUM_TRAIN_TIMESTEPS):
    """abar_t, t = 0..T-1, float32, for beta_t = min(1 - f((t+1)/T) / f(t/T), 0.999)."""
    def f(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = np.array([min(1 - f((i + 1) / num_steps) / f(i / num_steps), 0.999)
                      for i in range(num_steps)], dtype=np.float64)
    alphas = torch.from_numpy(1.0 - betas.astype(np.float32))
    return torch.cumprod(alphas, dim=0)


def add_noise(x0, eps, abar):
    """x_t for per-example abar of shape [B]."""
    a = abar.sqrt().view(-1, 1, 1, 1)
    s = (1 - abar).sqrt().view(-1, 1, 1, 1)
    return a * x0 + s * eps


def v_target(x0, eps, abar):
    a = abar.sqrt().view(-1, 1, 1, 1)
    s = (1 - abar).sqrt().view(-1, 1, 1, 1)
    return a * eps - s * x0


def ddim_scheduler_config(diffusers_version="0.27.2"):
    """diffusers DDIMScheduler config for this schedule.

    'trailing' spacing starts sampling at t = T-1 (where the cosine schedule has
    almost zero SNR), which Lin et al. 2024 ("Common Diffusion Noise Schedules
    and Sample Steps are Flawed") show matters for few-step sampling.
    """
    return {
        "_class_name": "DDIMScheduler",
        "_diffusers_version": diffusers_version,
        "beta_end": 0.02,
        "beta_schedule": BETA_SCHEDULE,
        "beta_start": 0.0001,
        "clip_sample": True,
        "clip_sample_range": 1.0,
        "dynamic_thresholding_ratio": 0.995,
        "num_train_timesteps": NUM_TRAIN_TIMESTEPS,
        "prediction_type": PREDICTION_TYPE,
        "rescale_betas_zero_snr": False,
        "sample_max_value": 1.0,
        "set_alpha_to_one": True,
        "steps_offset": 0,
        "thresholding": False,
        "timestep_spacing": "trailing",
        "trained_betas": None,
    }


def ddim_timesteps(num_inference_steps, num_train=NUM_TRAIN_TIMESTEPS):
    """diffusers' 'trailing' spacing: round(T - k*T/n) - 1, k = 0..n-1 (descending)."""
    return (np.round(np.arange(num_train, 0, -num_train / num_inference_steps)) - 1).astype(np.int64)


@torch.no_grad()
def ddim_sample(model, class_labels, null_label, num_steps=50, guidance_scale=2.0, generator=None,
                sample_size=32, channels=4):
    """Deterministic DDIM (eta = 0) with classifier-free guidance (Ho & Salimans 2022).

    Mirrors diffusers' DDIMScheduler.step with the config above: v-prediction,
    x0 clipped to [-1, 1], prev_t = t - T // n, abar_prev = 1 past the end. Runs on the
    model's device; the initial noise comes from `generator` on the CPU (device.py).
    """
    device = next(model.parameters()).device
    abar = cosine_alphas_cumprod().to(device)
    labels = torch.as_tensor(class_labels, dtype=torch.long).to(device)
    n = labels.shape[0]
    x = torch.randn(n, channels, sample_size, sample_size, generator=generator).to(device)
    both_labels = torch.cat([labels, torch.full_like(labels, null_label)])
    for t in ddim_timesteps(num_steps):
        v_cond, v_uncond = model(torch.cat([x, x]), torch.full((2 * n,), float(t), device=device), both_labels).chunk(2)
        v = v_uncond + guidance_scale * (v_cond - v_uncond)
        a_t = abar[t]
        prev = t - NUM_TRAIN_TIMESTEPS // num_steps
        a_prev = abar[prev] if prev >= 0 else torch.tensor(1.0, device=device)
        x0 = (a_t.sqrt() * x - (1 - a_t).sqrt() * v).clamp(-1, 1)
        eps = a_t.sqrt() * v + (1 - a_t).sqrt() * x
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


def to_rgba_uint8(x):
    """[-1, 1] NCHW straight RGBA -> uint8 NHWC; colour is zeroed where alpha is zero."""
    images = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    images[images[..., 3] == 0, :3] = 0
    return images
