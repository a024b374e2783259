"""Consistency distillation of the teacher into a one/two-step student.

Usage:
    cd training && setsid nohup nice -n 10 env OMP_NUM_THREADS=2 /usr/bin/python3 distill.py \
        [--teacher-run /work/fusediff-train/teacher] [--run-dir /work/fusediff-train/student] &

The student has the teacher's architecture and starts as the teacher with conv_out negated
(consistency.py explains why that is already the consistency parametrisation with
sigma_data = 1). Two phases, one run (checkpointed and resumable like train_teacher.py):

1. Re-timing (--retime-steps): the student's time input is 250 ln(sigma), not the teacher's t,
   so it first regresses its denoiser onto the *guided* teacher's at the same noise level
   (Meng et al. 2023, "On Distillation of Guided Diffusion Models", stage 1):
       L = || f_theta(x_sigma, sigma) - x0_teacher^w(x_sigma, sigma) ||^2
   with sigma drawn from the CD grid's continuous range. Guidance is baked in: the student
   needs one network evaluation per step, not two.
2. Consistency distillation (Song et al. 2023, Algorithm 2): adjacent boundaries
   sigma_n < sigma_{n+1} of an N-point Karras grid, x_{n+1} = x0 + sigma_{n+1} z, one DDIM
   (= Euler on the VE probability-flow ODE) step of the guided teacher back to sigma_n,
       x_n^ = x0^ + (sigma_n / sigma_{n+1}) (x_{n+1} - x0^),   x0^ = teacher's guided estimate
   and L = d(f_theta(x_{n+1}, sigma_{n+1}), f_theta-(x_n^, sigma_n)) with the target network
   theta- an EMA (mu = --target-ema) of theta, stop-gradient. d is the pseudo-Huber distance
   sqrt(||a - b||^2 + c^2) - c, c = 0.00054 sqrt(dim) (Song & Dhariwal 2023, "Improved
   Techniques for Training Consistency Models"): LPIPS needs a pretrained network that is not
   available offline.

The teacher's frozen EMA weights are copied into the run directory on the first start
(teacher.pt), so a resumed run distils from the same teacher even if the teacher trains on.
When the teacher has trained on, --init-student CHECKPOINT starts a new run from an earlier
run's student instead of from the teacher (warm start, with --retime-steps 0): the student's
time input is already re-timed and its map is close to the new teacher's, so a few hundred
CD steps adapt it, where a run from the teacher needs about two thousand.
--ode-targets (ode_targets.py) adds a direct one-step term to each CD step: the student's
f(sigma_max z) regressed onto the end of the guided teacher's Euler trajectory from that noise
on the same grid, which is the fixed point CD itself converges to (see ode_targets.py).
Outputs: checkpoint.pt, train.log, preview_stepNNNNNN.png (rows of 1-step and 2-step samples
per class). export.py --student writes the diffusers folder.
"""

import argparse
import copy
import os
import signal
import time

import numpy as np
import torch

import consistency
import device as devices
import diffusion
import previews
import train_teacher
import unet

CHECKPOINT = "checkpoint.pt"
TEACHER_COPY = "teacher.pt"


def parse_args():
    p = argparse.ArgumentParser(description="Consistency-distil the fusediff tile teacher.")
    p.add_argument("--data", default="/work/fusediff-train/data/tiles.npz")
    p.add_argument("--teacher-run", default="/work/fusediff-train/teacher")
    p.add_argument("--run-dir", default="/work/fusediff-train/student")
    p.add_argument("--retime-steps", type=int, default=300)
    p.add_argument("--max-steps", type=int, default=2000, help="re-timing plus distillation steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--num-boundaries", type=int, default=18, help="N of the Karras grid")
    p.add_argument("--guidance-scale", type=float, default=2.0)
    p.add_argument("--label-drop", type=float, default=0.1, help="share of rows trained unconditionally")
    p.add_argument("--target-ema", type=float, default=0.95, help="mu of the target network")
    p.add_argument("--ema-decay", type=float, default=0.995, help="decay of the exported EMA weights")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ode-targets", metavar="NPZ", nargs="+",
                   help="endpoints of the teacher's ODE from ode_targets.py (one or more files, solved with "
                        "different seeds): adds the one-step term --ode-weight * d(f(sigma_max z), endpoint) "
                        "to every CD step")
    p.add_argument("--ode-weight", type=float, default=1.0)
    p.add_argument("--init-student", metavar="CHECKPOINT",
                   help="warm start: begin from this distillation checkpoint's student, target and EMA weights "
                        "(a run against an earlier teacher) instead of the teacher; use with --retime-steps 0, "
                        "since its time input is already re-timed")
    devices.add_argument(p)
    return p.parse_args()


def pseudo_huber(a, b):
    dim = a[0].numel()
    c = 0.00054 * dim ** 0.5
    return (((a - b) ** 2).flatten(1).sum(1) + c * c).sqrt() - c


def augment(x0, labels, flip_ok, null_label, label_drop):
    batch, device = x0.shape[0], x0.device
    flip = flip_ok[labels] & (torch.rand(batch, device=device) < 0.5)
    x0 = torch.where(flip.view(-1, 1, 1, 1), x0.flip(3), x0)
    labels = torch.where(torch.rand(batch, device=device) < label_drop, torch.full_like(labels, null_label), labels)
    return x0, labels


def retime_loss(student, teacher, teacher_time, x0, labels, null_label, guidance_scale, grid):
    batch = x0.shape[0]
    # sigma uniform in the grid's rho-space: the same spread of noise levels CD will visit.
    u = torch.rand(batch, dtype=torch.float64, device=x0.device)
    lo, hi = grid[0] ** (1 / consistency.RHO), grid[-1] ** (1 / consistency.RHO)
    sigma = ((lo + u * (hi - lo)) ** consistency.RHO).float()
    x = x0 + sigma.view(-1, 1, 1, 1) * torch.randn_like(x0)
    target = consistency.teacher_denoise(teacher, teacher_time, x, sigma, labels, null_label, guidance_scale)
    return ((consistency.consistency_fn(student, x, sigma, labels) - target) ** 2).mean()


def cd_loss(student, target_net, teacher, teacher_time, x0, labels, null_label, guidance_scale, grid):
    batch = x0.shape[0]
    n = torch.randint(0, len(grid) - 1, (batch,), device=x0.device)
    s_lo, s_hi = grid[n].float(), grid[n + 1].float()
    x_hi = x0 + s_hi.view(-1, 1, 1, 1) * torch.randn_like(x0)
    x_lo = consistency.teacher_euler_step(teacher, teacher_time, x_hi, s_hi, s_lo, labels, null_label, guidance_scale)
    with torch.no_grad():
        target = consistency.consistency_fn(target_net, x_lo, s_lo, labels)
    return pseudo_huber(consistency.consistency_fn(student, x_hi, s_hi, labels), target).mean()


class OdeTargets:
    """Fixed (noise, label, ODE endpoint) triples of ode_targets.py files, checked against this run."""

    def __init__(self, paths, num_boundaries, guidance_scale, teacher_step, device):
        z, labels, endpoints, seeds = [], [], [], set()
        for path in paths:
            data = np.load(path)
            if (int(data["num_boundaries"]) != num_boundaries or float(data["guidance_scale"]) != guidance_scale
                    or int(data["teacher_step"]) != teacher_step):
                raise SystemExit(f"{path} was solved with another grid, guidance scale or teacher than this run")
            # The same seed twice would weight those trajectories double, not add new ones.
            seed = int(data["seed"]) if "seed" in data else None
            if seed in seeds:
                raise SystemExit(f"{path} repeats the noise seed {seed} of another --ode-targets file")
            seeds.add(seed)
            z.append(data["z"])
            labels.append(data["labels"])
            endpoints.append(data["endpoints"])
        self.z = torch.from_numpy(np.concatenate(z)).to(device)
        self.labels = torch.from_numpy(np.concatenate(labels)).long().to(device)
        self.endpoints = torch.from_numpy(np.concatenate(endpoints)).to(device)

    def loss(self, student, batch):
        """Mean d(f_theta(sigma_max z, sigma_max, y), endpoint) over a random batch of the triples."""
        idx = torch.randint(0, len(self.z), (batch,), device=self.z.device)
        sigma = torch.full((batch,), consistency.SIGMA_MAX, device=self.z.device)
        pred = consistency.consistency_fn(student, consistency.SIGMA_MAX * self.z[idx], sigma, self.labels[idx])
        return pseudo_huber(pred, self.endpoints[idx]).mean()


@torch.no_grad()
def save_preview(model, num_classes, num_boundaries, path, per_class=8):
    """Per class: a row of 1-step samples, then a row of 2-step samples (same noise seed)."""
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    rows = []
    for steps in (1, 2):
        x = consistency.sample(model, labels, steps, num_boundaries, generator=torch.Generator().manual_seed(0))
        rows.append(diffusion.to_rgba_uint8(x).reshape(num_classes, per_class, 32, 32, 4))
    previews.contact_sheet(np.stack(rows, 1).reshape(-1, 32, 32, 4), path, columns=per_class, scale=2)


def frozen_copy(model):
    copy_ = copy.deepcopy(model).eval()
    for p in copy_.parameters():
        p.requires_grad_(False)
    return copy_


def main():
    args = parse_args()
    device = devices.resolve(args.device)
    os.makedirs(args.run_dir, exist_ok=True)
    log = train_teacher.Log(os.path.join(args.run_dir, "train.log"))
    ckpt_path = os.path.join(args.run_dir, CHECKPOINT)
    teacher_path = os.path.join(args.run_dir, TEACHER_COPY)

    train_x, train_y, _, _, class_names = train_teacher.load_data(args.data, device)
    num_classes = len(class_names)
    null_label = num_classes
    flip_ok = torch.tensor([name in train_teacher.FLIP_CLASSES for name in class_names] + [False], device=device)

    if not os.path.exists(teacher_path):
        state = devices.load(os.path.join(args.teacher_run, train_teacher.CHECKPOINT))
        torch.save({"config": state["config"], "class_names": state["class_names"], "step": state["step"],
                    "ema": state["ema"]}, teacher_path)
    tstate = devices.load(teacher_path)
    if tstate["class_names"] != class_names:
        raise SystemExit(f"{teacher_path} was trained on other classes than {args.data}")
    config = tstate["config"]
    teacher = unet.UNet2DModel(config)
    teacher.load_state_dict(tstate["ema"])
    teacher = frozen_copy(teacher.to(device))
    teacher_time = consistency.TeacherTime(device)
    grid = torch.from_numpy(consistency.karras_sigmas(args.num_boundaries)).to(device)

    torch.manual_seed(args.seed)
    student = unet.UNet2DModel(config).to(device)
    consistency.student_from_teacher(student, teacher)
    target_net = frozen_copy(student)
    ema = frozen_copy(student)
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
    step, trained_seconds = 0, 0.0
    prior_steps = 0  # distillation steps of the runs this one was warm-started from

    if os.path.exists(ckpt_path):
        state = devices.load(ckpt_path)
        if state["config"] != config or state["num_boundaries"] != args.num_boundaries:
            raise SystemExit(f"{ckpt_path} was made with another config or grid; use a fresh --run-dir")
        student.load_state_dict(state["model"])
        target_net.load_state_dict(state["target"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        devices.set_rng_state(state, device)
        step, trained_seconds = state["step"], state["trained_seconds"]
        prior_steps = state.get("prior_steps", 0)
        log(f"resumed from {ckpt_path} at step {step} on {devices.describe(device)}")
    else:
        log(f"new distillation run on {devices.describe(device)} from teacher step {tstate['step']}; "
            f"grid {grid.tolist()}")
        log(f"args: {vars(args)}")
        if args.init_student:
            init = devices.load(args.init_student)
            if init["config"] != config or init["num_boundaries"] != args.num_boundaries:
                raise SystemExit(f"{args.init_student} has another config or grid than this run")
            student.load_state_dict(init["model"])
            target_net.load_state_dict(init["target"])
            ema.load_state_dict(init["ema"])
            prior_steps = init.get("prior_steps", 0) + init["step"]
            log(f"warm start from {args.init_student}: step {init['step']}, distilled from teacher step {init['teacher_step']}")

    ode = None
    if args.ode_targets:
        ode = OdeTargets(args.ode_targets, args.num_boundaries, args.guidance_scale, tstate["step"], device)
        log(f"one-step term: {len(ode.z)} ODE endpoints from {args.ode_targets}, weight {args.ode_weight}")

    if step >= args.max_steps:
        log(f"already finished: step {step} >= --max-steps {args.max_steps}")
        return

    def checkpoint():
        train_teacher.save_checkpoint(ckpt_path, {
            "step": step, "trained_seconds": trained_seconds, "config": config, "class_names": class_names,
            "num_boundaries": args.num_boundaries, "teacher_step": tstate["step"], "args": vars(args),
            "prior_steps": prior_steps,
            "model": student.state_dict(), "target": target_net.state_dict(), "ema": ema.state_dict(),
            "optimizer": optimizer.state_dict(), **devices.rng_state(device),
        })
        log(f"checkpoint at step {step}")

    stop = {"requested": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(requested=True))

    student.train()
    last_ckpt, last_ckpt_step = time.time(), step
    window_start, window_loss, window_steps, window_ode = time.time(), 0.0, 0, 0.0
    while step < args.max_steps and not stop["requested"]:
        idx = torch.randint(0, len(train_x), (args.batch_size,), device=device)
        x0, labels = augment(train_x[idx], train_y[idx], flip_ok, null_label, args.label_drop)
        retiming = step < args.retime_steps
        if retiming:
            loss = retime_loss(student, teacher, teacher_time, x0, labels, null_label, args.guidance_scale, grid)
        else:
            loss = cd_loss(student, target_net, teacher, teacher_time, x0, labels, null_label,
                           args.guidance_scale, grid)
            if ode is not None:
                ode_loss = ode.loss(student, args.batch_size)
                window_ode += ode_loss.item()
                loss = loss + args.ode_weight * ode_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(student.parameters(), args.grad_clip)
        optimizer.step()
        # During re-timing the target simply follows the student; CD then starts from it.
        train_teacher.ema_update(target_net, student, 0.0 if retiming else args.target_ema)
        train_teacher.ema_update(ema, student, train_teacher.ema_decay(args.ema_decay, step))
        step += 1
        window_loss += loss.item()
        window_steps += 1

        if step % args.log_every == 0:
            elapsed = time.time() - window_start
            trained_seconds += elapsed
            ode_part = f" (ode {window_ode / window_steps:.5f})" if ode is not None and not retiming else ""
            log(f"step {step} {'retime' if retiming else 'cd'} loss {window_loss / window_steps:.5f}{ode_part} "
                f"grad_norm {grad_norm:.3f} steps/s {window_steps / elapsed:.3f} trained {trained_seconds / 3600:.2f}h")
            window_start, window_loss, window_steps, window_ode = time.time(), 0.0, 0, 0.0
        if step % args.eval_every == 0 or step == args.max_steps:
            save_preview(ema, num_classes, args.num_boundaries,
                         os.path.join(args.run_dir, f"preview_step{step:06d}.png"))
            window_start = time.time()
        if time.time() - last_ckpt >= args.checkpoint_minutes * 60:
            checkpoint()
            last_ckpt, last_ckpt_step = time.time(), step

    if last_ckpt_step != step:
        checkpoint()
    log("stopped on signal" if stop["requested"] else f"finished: {step} steps")


if __name__ == "__main__":
    main()
