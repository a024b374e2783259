"""The consistency-model parametrisation of the student, and how it meets the VP teacher.

Consistency function (Song, Dhariwal, Chen & Sutskever 2023, "Consistency Models", App. C),
exactly as diffusers' CMStochasticIterativeScheduler (and fusediff's `consistency` sampler)
evaluates it:
    f(x, sigma) = c_skip(sigma) * x + c_out(sigma) * F(c_in(sigma) * x, 250 * ln(sigma), y)
    c_skip = s_d^2 / ((sigma - s_min)^2 + s_d^2)
    c_out  = (sigma - s_min) * s_d / sqrt(sigma^2 + s_d^2)
    c_in   = 1 / sqrt(sigma^2 + s_d^2)
with x a variance-exploding (VE) sample x_sigma = x0 + sigma * z.

The teacher is variance-preserving (x_t = sqrt(abar) x0 + sqrt(1 - abar) eps) and predicts v.
The two meet through sigma^2 = (1 - abar) / abar, i.e. x_t = x_sigma / sqrt(1 + sigma^2).
With s_d = 1 (and s_min -> 0) the CM input c_in * x_sigma is exactly the teacher's x_t and
    x0 = x_sigma / (1 + sigma^2) - sigma / sqrt(1 + sigma^2) * v
is exactly c_skip * x_sigma + c_out * (-v): a v-prediction network with its output negated is
already the consistency parametrisation. That is why the student uses sigma_data = 1 (the
tiles' standard deviation is 0.77, so 1 is a reasonable data scale too) and starts from the
teacher with conv_out negated; only its time input differs (250 ln sigma instead of the
teacher's t), which the re-timing phase of distill.py teaches it.
"""

import math

import numpy as np
import torch

import diffusion

SIGMA_MIN = 0.01   # the teacher's t = 0 is sigma = 0.0064: below that it has never seen data
SIGMA_MAX = 80.0   # SNR = 0.77^2 / 80^2 ~ 1e-4: indistinguishable from pure noise at 8 bits
SIGMA_DATA = 1.0
RHO = 7.0


def karras_sigmas(n, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, rho=RHO):
    """sigma_1 < ... < sigma_n on Karras et al. 2022's grid (eq. 5), ascending, float64."""
    u = np.linspace(0.0, 1.0, n)
    return (sigma_min ** (1 / rho) + u * (sigma_max ** (1 / rho) - sigma_min ** (1 / rho))) ** rho


def scalings(sigma, sigma_min=SIGMA_MIN, sigma_data=SIGMA_DATA):
    """(c_skip, c_out, c_in) for a [B] tensor of sigmas, shaped [B, 1, 1, 1]."""
    s = sigma.view(-1, 1, 1, 1)
    c_skip = sigma_data ** 2 / ((s - sigma_min) ** 2 + sigma_data ** 2)
    c_out = (s - sigma_min) * sigma_data / (s ** 2 + sigma_data ** 2).sqrt()
    c_in = 1 / (s ** 2 + sigma_data ** 2).sqrt()
    return c_skip, c_out, c_in


def model_time(sigma):
    """The time input diffusers' CM scheduler gives the network: 1000 * 0.25 * ln(sigma)."""
    return 250.0 * torch.log(sigma + 1e-44)


def consistency_fn(model, x, sigma, labels):
    """f_theta(x_sigma, sigma) for a [B] tensor sigma."""
    c_skip, c_out, c_in = scalings(sigma)
    return c_skip * x + c_out * model(c_in * x, model_time(sigma), labels)


class TeacherTime:
    """Fractional teacher timestep for a VE sigma, interpolated in ln(sigma) over the
    training grid sigma_t = sqrt((1 - abar_t) / abar_t), t = 0..T-1 (monotone increasing)."""

    def __init__(self, device="cpu"):
        abar = diffusion.cosine_alphas_cumprod().double()
        self.log_sigma = ((1 - abar) / abar).sqrt().log().to(device)

    def __call__(self, sigma):
        ls = sigma.double().log().clamp(self.log_sigma[0], self.log_sigma[-1])
        hi = torch.searchsorted(self.log_sigma, ls).clamp(1, len(self.log_sigma) - 1)
        lo = hi - 1
        w = (ls - self.log_sigma[lo]) / (self.log_sigma[hi] - self.log_sigma[lo])
        return (lo.double() + w).float()


@torch.no_grad()
def teacher_denoise(teacher, teacher_time, x, sigma, labels, null_label, guidance_scale):
    """Guided x0 estimate of the VP v-prediction teacher at VE state (x_sigma, sigma).

    Classifier-free guidance (Ho & Salimans 2022) on v: v = v_u + w (v_c - v_u); rows whose
    label is the null class get v_u alone. x0 is clipped to [-1, 1] as the teacher's DDIM
    sampler (clip_sample) does.
    """
    s = sigma.view(-1, 1, 1, 1)
    x_t = x / (1 + s ** 2).sqrt()
    t = teacher_time(sigma)
    null = torch.full_like(labels, null_label)
    v_c, v_u = teacher(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
    w = torch.where(labels == null_label, torch.ones_like(sigma), torch.full_like(sigma, guidance_scale))
    v = v_u + w.view(-1, 1, 1, 1) * (v_c - v_u)
    x0 = x / (1 + s ** 2) - s / (1 + s ** 2).sqrt() * v
    return x0.clamp(-1, 1)


@torch.no_grad()
def teacher_euler_step(teacher, teacher_time, x, sigma_hi, sigma_lo, labels, null_label, guidance_scale):
    """One DDIM (= Euler on the VE probability-flow ODE) step of the guided teacher from
    sigma_hi to sigma_lo ([B] tensors): x_lo = x0^ + (sigma_lo / sigma_hi) (x_hi - x0^)."""
    x0_hat = teacher_denoise(teacher, teacher_time, x, sigma_hi, labels, null_label, guidance_scale)
    return x0_hat + (sigma_lo / sigma_hi).view(-1, 1, 1, 1) * (x - x0_hat)


def student_from_teacher(student, teacher):
    """Copy the teacher's weights and negate conv_out, so F = -v (see the module docstring)."""
    student.load_state_dict(teacher.state_dict())
    with torch.no_grad():
        student.conv_out.weight.neg_()
        student.conv_out.bias.neg_()


def scheduler_config(num_train_timesteps, diffusers_version="0.27.2"):
    """diffusers CMStochasticIterativeScheduler config matching this parametrisation."""
    return {
        "_class_name": "CMStochasticIterativeScheduler",
        "_diffusers_version": diffusers_version,
        "clip_denoised": True,
        "num_train_timesteps": num_train_timesteps,
        "rho": RHO,
        "s_noise": 1.0,
        "sigma_data": SIGMA_DATA,
        "sigma_max": SIGMA_MAX,
        "sigma_min": SIGMA_MIN,
    }


def sampler_sigmas(steps, num_train_timesteps):
    """The sigmas diffusers' CM scheduler visits for `steps` steps (timesteps k * floor(N/n))."""
    ratio = num_train_timesteps // steps
    ramp = np.array([(steps - 1 - i) * ratio for i in range(steps)][::-1], np.float64) / (num_train_timesteps - 1)
    # Its grid runs from sigma_max (ramp 0) down to sigma_min (ramp 1).
    return (SIGMA_MAX ** (1 / RHO) + ramp * (SIGMA_MIN ** (1 / RHO) - SIGMA_MAX ** (1 / RHO))) ** RHO


@torch.no_grad()
def sample(model, labels, steps, num_train_timesteps, generator=None, sample_size=32, channels=4):
    """Multistep consistency sampling (Algorithm 1), as diffusers' CM pipeline runs it, on the
    model's device; the noise comes from `generator` on the CPU (device.py)."""
    device = next(model.parameters()).device
    labels = torch.as_tensor(labels, dtype=torch.long).to(device)
    n = labels.shape[0]
    sigmas = sampler_sigmas(steps, num_train_timesteps)
    x = torch.randn(n, channels, sample_size, sample_size, generator=generator).to(device) * SIGMA_MAX
    for i, s in enumerate(sigmas):
        x0 = consistency_fn(model, x, torch.full((n,), float(s), device=device), labels).clamp(-1, 1)
        if i + 1 == len(sigmas):
            return x0
        nxt = float(sigmas[i + 1])
        z = torch.randn(x.shape, generator=generator).to(device)
        x = x0 + math.sqrt(nxt ** 2 - SIGMA_MIN ** 2) * z
    return x
