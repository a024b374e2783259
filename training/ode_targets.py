"""Endpoints of the guided teacher's ODE, for the one-step term of distill.py (--ode-targets).

Consistency distillation (distill.py) teaches the student f(x_{n+1}, sigma_{n+1}) =
f_target(x_n^, sigma_n), where x_n^ is one Euler step of the guided teacher. Its fixed point on
the grid is known in closed form: for x_N = sigma_max z, f(x_N, sigma_max) must equal the end
of the teacher's trajectory solved with those same Euler steps down to sigma_min (where the
boundary condition f(x, sigma_min) = x holds). CD reaches that point only through a chain of
N - 1 bootstrapped targets, which on this CPU budget leaves the one-step samples far from it
(RMS 0.23 on [-1, 1] after 3,772 steps). This script solves the trajectory for a fixed set of
noise samples, so that distill.py can add the direct term
    L_ode = d(f_theta(sigma_max z, sigma_max, y), x_{sigma_min}(z, y))
(the regression of Luhman & Luhman 2021, "Knowledge Distillation in Iterative Generative
Models for Improved Sampling Speed", here on CD's own fixed point: it moves the student
towards the same function CD does, without the bootstrap's delay).

Usage:
    cd training && OMP_NUM_THREADS=2 /usr/bin/python3 ode_targets.py --run-dir /work/fusediff-train/student2 \
        --count 4096 --out /work/fusediff-train/ode_targets.npz
Writes z, labels (the null class on --label-drop of them, as the student sees in training) and
the endpoints as float32 arrays.

    OMP_NUM_THREADS=2 /usr/bin/python3 ode_targets.py --run-dir RUN --gap CHECKPOINT [--count 256 --seed 0]
measures instead how far a distillation checkpoint's EMA student is from that fixed point on
fresh noise: the RMS (on [-1, 1]) of f(sigma_max z) - endpoint over --count samples
(the "ODE gap"; 0.23 for the student shipped before the one-step term). Takes the run's frozen teacher copy (teacher.pt), its grid
(--num-boundaries) and guidance scale, so the targets match that run's CD loss exactly.
About 0.1 s per sample on two cores (17 guided steps = 34 teacher evaluations).
"""

import argparse
import os
import time

import numpy as np
import torch

import consistency
import device as devices
import unet


def parse_args():
    p = argparse.ArgumentParser(description="Solve the guided teacher's ODE on the CD grid for fixed noise samples.")
    p.add_argument("--run-dir", required=True, help="a distill.py run directory (its teacher.pt is used)")
    p.add_argument("--out", help="output .npz")
    p.add_argument("--gap", metavar="CHECKPOINT", help="print this distill checkpoint's ODE gap instead")
    p.add_argument("--count", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-boundaries", type=int, default=18, help="N of the Karras grid (as the distill run)")
    p.add_argument("--guidance-scale", type=float, default=2.0, help="as the distill run")
    p.add_argument("--label-drop", type=float, default=0.1, help="share of samples with the null class")
    p.add_argument("--seed", type=int, help="noise and labels (default 1234; 0 with --gap, noise the targets never saw)")
    devices.add_argument(p)
    return p.parse_args()


@torch.no_grad()
def solve(teacher, teacher_time, z, labels, null_label, guidance_scale, grid):
    """Euler steps of the guided teacher from sigma_max z down the grid (distill.cd_loss's step)."""
    sigmas = grid.flip(0).float().to(z.device)  # descending
    x = sigmas[0] * z
    for s_hi, s_lo in zip(sigmas[:-1], sigmas[1:]):
        x = consistency.teacher_euler_step(teacher, teacher_time, x, s_hi.repeat(len(z)), s_lo.repeat(len(z)),
                                           labels, null_label, guidance_scale)
    return x


def main():
    args = parse_args()
    device = devices.resolve(args.device)
    tstate = devices.load(os.path.join(args.run_dir, "teacher.pt"))
    teacher = unet.UNet2DModel(tstate["config"])
    teacher.load_state_dict(tstate["ema"])
    teacher.to(device).eval()
    teacher_time = consistency.TeacherTime(device)
    num_classes = len(tstate["class_names"])
    grid = torch.from_numpy(consistency.karras_sigmas(args.num_boundaries))
    if args.seed is None:
        args.seed = 0 if args.gap else 1234
    gen = torch.Generator().manual_seed(args.seed)
    z = torch.randn(args.count, 4, 32, 32, generator=gen)
    labels = torch.randint(0, num_classes, (args.count,), generator=gen)
    labels = torch.where(torch.rand(args.count, generator=gen) < args.label_drop, torch.full_like(labels, num_classes), labels)
    # z and labels are drawn on the CPU from the seeded generator, so they do not depend on --device.
    ends = torch.empty_like(z)
    start = time.time()
    for i in range(0, args.count, args.batch_size):
        sl = slice(i, min(args.count, i + args.batch_size))
        ends[sl] = solve(teacher, teacher_time, z[sl].to(device), labels[sl].to(device), num_classes,
                         args.guidance_scale, grid).cpu()
        print(f"{sl.stop}/{args.count} samples, {time.time() - start:.0f} s", flush=True)
    if args.gap:
        state = devices.load(args.gap)
        student = unet.UNet2DModel(state["config"])
        student.load_state_dict(state["ema"])
        student.to(device).eval()
        with torch.no_grad():
            one_step = torch.empty_like(z)
            for i in range(0, args.count, args.batch_size):
                sl = slice(i, min(args.count, i + args.batch_size))
                sigma = torch.full((sl.stop - i,), consistency.SIGMA_MAX, device=device)
                one_step[sl] = consistency.consistency_fn(student, consistency.SIGMA_MAX * z[sl].to(device), sigma,
                                                          labels[sl].to(device)).clamp(-1, 1).cpu()
        gap = float(((one_step - ends.clamp(-1, 1)) ** 2).mean().sqrt())
        print(f"{args.gap}: step {state['step']} (+{state.get('prior_steps', 0)} before), ODE gap {gap:.4f} "
              f"over {args.count} samples (seed {args.seed})")
        return
    if not args.out:
        raise SystemExit("--out is required (or --gap)")
    np.savez(args.out, z=z.numpy(), labels=labels.numpy(), endpoints=ends.numpy(),
             teacher_step=tstate["step"], num_boundaries=args.num_boundaries, guidance_scale=args.guidance_scale,
             seed=args.seed)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
