"""Train the class-conditional 32x32 RGBA teacher UNet (v-prediction, cosine schedule).

Usage:
    cd training && nohup nice -n 19 env OMP_NUM_THREADS=2 /usr/bin/python3 train_teacher.py \
        [--data /work/fusediff-train/data/tiles.npz] [--run-dir /work/fusediff-train/teacher] &
    # on a CUDA GPU (picked automatically with the default --device auto), a larger model:
    python3 train_teacher.py --run-dir RUN --channels 64,128,256 --layers-per-block 2 --batch-size 256

The run directory (default $FUSEDIFF_TEACHER_DIR or /work/fusediff-train/teacher)
receives checkpoint.pt (model, EMA, optimizer, step, RNG state; rewritten
atomically every --checkpoint-minutes and on SIGTERM/SIGINT), train.log (loss,
steps/s, held-out loss) and preview_stepNNNNNN.png sample grids.  Starting the
same command again resumes from checkpoint.pt; a finished run (step ==
--max-steps) exits at once.

Recipe (see README.md for the reasons):
  * data: straight RGBA scaled to [-1, 1]; horizontal flips only for floor,
    wall and monster tiles (items and features have a fixed orientation/text);
  * conditioning: num_class_embeds = classes + 1; the last id is the null class,
    labels are dropped to it with p = 0.1 for classifier-free guidance
    (Ho & Salimans 2022);
  * objective: MSE on v (Salimans & Ho 2022) with t ~ U{0..999} on the cosine
    schedule (Nichol & Dhariwal 2021);
  * AdamW, linear warm-up, gradient-norm clipping, EMA of the weights.
"""

import argparse
import copy
import os
import signal
import time

import numpy as np
import torch
import torch.nn.functional as F

import device as devices
import diffusion
import previews
import unet

# The teacher network; block_out_channels, layers_per_block and the block types come from
# --channels / --layers-per-block (teacher_config), num_class_embeds from the dataset.
TEACHER_CONFIG = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "attention_head_dim": 32,
    "norm_num_groups": 16,
    "attn_norm_num_groups": 16,
    "resnet_time_scale_shift": "scale_shift",
    "time_embedding_type": "positional",
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "dropout": 0.0,
}
FLIP_CLASSES = ("floor", "wall", "monster")
CHECKPOINT = "checkpoint.pt"


def teacher_config(channels, layers_per_block, num_classes):
    """UNet2DModel config: one resolution level per entry of `channels` (each halving the
    32x32 input), self-attention at the lowest resolution only (where it is cheapest and the
    receptive field needs it), the null class as the last class id."""
    groups, head = TEACHER_CONFIG["norm_num_groups"], TEACHER_CONFIG["attention_head_dim"]
    if not 2 <= len(channels) <= 5:
        raise SystemExit(f"--channels: 2 to 5 levels for 32x32 tiles, got {len(channels)}")
    if any(c <= 0 or c % groups for c in channels) or channels[-1] % head:
        raise SystemExit(f"--channels {channels}: every level must be a multiple of {groups} (GroupNorm groups) "
                         f"and the last of {head} (attention head size)")
    if layers_per_block < 1:
        raise SystemExit("--layers-per-block must be at least 1")
    levels = len(channels)
    return dict(TEACHER_CONFIG, block_out_channels=list(channels), layers_per_block=layers_per_block,
                down_block_types=["DownBlock2D"] * (levels - 1) + ["AttnDownBlock2D"],
                up_block_types=["AttnUpBlock2D"] + ["UpBlock2D"] * (levels - 1),
                num_class_embeds=num_classes + 1)


def channel_list(text):
    try:
        return [int(c) for c in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def parse_args():
    p = argparse.ArgumentParser(description="Train the fusediff tile teacher UNet.")
    p.add_argument("--data", default="/work/fusediff-train/data/tiles.npz")
    p.add_argument("--run-dir", default=os.environ.get("FUSEDIFF_TEACHER_DIR", "/work/fusediff-train/teacher"))
    p.add_argument("--max-steps", type=int, default=8000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--label-drop", type=float, default=0.1)
    p.add_argument("--checkpoint-minutes", type=float, default=10.0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--eval-every", type=int, default=1000, help="held-out loss and preview grid")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels", type=channel_list, default=[32, 64, 128],
                   help="block_out_channels, one level per entry (default 32,64,128: the shipped 2.9M-parameter teacher)")
    p.add_argument("--layers-per-block", type=int, default=1)
    devices.add_argument(p)
    return p.parse_args()


class Log:
    """Appends to <run-dir>/train.log and echoes to stdout."""

    def __init__(self, path):
        self.path = path

    def __call__(self, message):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


def load_data(path, device="cpu"):
    """(train images, train labels, held-out images, held-out labels, class names) on `device`
    (a few thousand 32x32 tiles: tens of MB, so the whole set lives there)."""
    data = np.load(path)
    class_names = [str(c) for c in data["class_names"]]

    def prep(images):  # uint8 NHWC straight RGBA -> float NCHW in [-1, 1]
        return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1).to(device)

    return (prep(data["train_images"]), torch.from_numpy(data["train_labels"]).to(device),
            prep(data["val_images"]), torch.from_numpy(data["val_labels"]).to(device), class_names)


def ema_decay(base, step):
    """Warm-up of the EMA decay, so early averages are not dominated by the random init."""
    return min(base, (1 + step) / (10 + step))


@torch.no_grad()
def ema_update(ema, model, decay):
    for e, p in zip(ema.parameters(), model.parameters()):
        e.mul_(decay).add_(p, alpha=1 - decay)


def training_loss(model, x0, labels, abar, null_label, label_drop, flip_ok):
    batch, device = x0.shape[0], x0.device
    flip = flip_ok[labels] & (torch.rand(batch, device=device) < 0.5)
    x0 = torch.where(flip.view(-1, 1, 1, 1), x0.flip(3), x0)
    labels = torch.where(torch.rand(batch, device=device) < label_drop, torch.full_like(labels, null_label), labels)
    t = torch.randint(0, diffusion.NUM_TRAIN_TIMESTEPS, (batch,), device=device)
    eps = torch.randn_like(x0)
    a = abar[t]
    x_t = diffusion.add_noise(x0, eps, a)
    return F.mse_loss(model(x_t, t.float(), labels), diffusion.v_target(x0, eps, a))


@torch.no_grad()
def heldout_loss(model, images, labels, abar, batch_size=128):
    """v-MSE on the held-out split with fixed t and noise, so values are comparable over time."""
    g = torch.Generator().manual_seed(1234)
    t = torch.randint(0, diffusion.NUM_TRAIN_TIMESTEPS, (images.shape[0],), generator=g).to(images.device)
    eps = torch.randn(images.shape, generator=g).to(images.device)
    total = 0.0
    for i in range(0, images.shape[0], batch_size):
        sl = slice(i, i + batch_size)
        a = abar[t[sl]]
        x_t = diffusion.add_noise(images[sl], eps[sl], a)
        out = model(x_t, t[sl].float(), labels[sl])
        total += F.mse_loss(out, diffusion.v_target(images[sl], eps[sl], a), reduction="sum").item()
    return total / images.numel()


@torch.no_grad()
def save_preview(model, num_classes, path, per_class=8):
    """One row of samples per class (DDIM 25 steps, guidance 2), shown at 2x."""
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    x = diffusion.ddim_sample(model, labels, null_label=num_classes, num_steps=25, guidance_scale=2.0,
                              generator=torch.Generator().manual_seed(0))
    previews.contact_sheet(diffusion.to_rgba_uint8(x), path, columns=per_class, scale=2)


def save_checkpoint(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a kill mid-write leaves the previous checkpoint intact


def main():
    args = parse_args()
    device = devices.resolve(args.device)
    os.makedirs(args.run_dir, exist_ok=True)
    log = Log(os.path.join(args.run_dir, "train.log"))
    ckpt_path = os.path.join(args.run_dir, CHECKPOINT)

    train_x, train_y, val_x, val_y, class_names = load_data(args.data, device)
    num_classes = len(class_names)
    null_label = num_classes
    flip_ok = torch.tensor([name in FLIP_CLASSES for name in class_names] + [False], device=device)
    config = teacher_config(args.channels, args.layers_per_block, num_classes)
    abar = diffusion.cosine_alphas_cumprod().to(device)

    torch.manual_seed(args.seed)
    model = unet.UNet2DModel(config).to(device)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    step, trained_seconds = 0, 0.0

    if os.path.exists(ckpt_path):
        state = devices.load(ckpt_path)
        if state["config"] != config or state["class_names"] != class_names:
            raise SystemExit(f"{ckpt_path} was made with another model config (--channels, --layers-per-block) "
                             "or dataset; use the run's own options or a fresh --run-dir")
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        devices.set_rng_state(state, device)
        step, trained_seconds = state["step"], state["trained_seconds"]
        log(f"resumed from {ckpt_path} at step {step} on {devices.describe(device)}")
    else:
        log(f"new run on {devices.describe(device)}: {unet.count_parameters(model)} parameters, config {config}")
        log(f"data: {len(train_x)} train / {len(val_x)} held-out tiles, classes {class_names}")
        log(f"args: {vars(args)}")

    if step >= args.max_steps:
        log(f"already finished: step {step} >= --max-steps {args.max_steps}")
        return

    def checkpoint():
        save_checkpoint(ckpt_path, {
            "step": step, "trained_seconds": trained_seconds, "config": config,
            "class_names": class_names, "args": vars(args),
            "model": model.state_dict(), "ema": ema.state_dict(),
            "optimizer": optimizer.state_dict(), **devices.rng_state(device),
        })
        log(f"checkpoint at step {step}")

    stop = {"requested": False}

    def request_stop(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    model.train()
    last_ckpt, last_ckpt_step = time.time(), step
    window_start, window_loss, window_steps = time.time(), 0.0, 0
    while step < args.max_steps and not stop["requested"]:
        lr = args.lr * min(1.0, (step + 1) / args.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, len(train_x), (args.batch_size,), device=device)
        loss = training_loss(model, train_x[idx], train_y[idx], abar, null_label, args.label_drop, flip_ok)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        ema_update(ema, model, ema_decay(args.ema_decay, step))
        step += 1
        window_loss += loss.item()
        window_steps += 1

        if step % args.log_every == 0:
            elapsed = time.time() - window_start
            trained_seconds += elapsed
            log(f"step {step} loss {window_loss / window_steps:.4f} grad_norm {grad_norm:.3f} lr {lr:.2e} "
                f"steps/s {window_steps / elapsed:.3f} trained {trained_seconds / 3600:.2f}h")
            window_start, window_loss, window_steps = time.time(), 0.0, 0
        if step % args.eval_every == 0 or step == args.max_steps:
            log(f"step {step} heldout_v_mse ema {heldout_loss(ema, val_x, val_y, abar):.4f}")
            save_preview(ema, num_classes, os.path.join(args.run_dir, f"preview_step{step:06d}.png"))
            window_start = time.time()  # evaluation time is not training time
        if time.time() - last_ckpt >= args.checkpoint_minutes * 60:
            checkpoint()
            last_ckpt, last_ckpt_step = time.time(), step

    if last_ckpt_step != step:
        checkpoint()
    log("stopped on signal" if stop["requested"] else f"finished: {step} steps")


if __name__ == "__main__":
    main()
