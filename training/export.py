"""Export the teacher's or the student's EMA weights as a diffusers pipeline folder, plus a
reference input/output pair.

Usage:
    OMP_NUM_THREADS=2 /usr/bin/python3 export.py --kind teacher|student [--half]
        [--run-dir /work/fusediff-train/<kind>] [--out /work/fusediff-train/export/tiles32-<kind>]

Writes
    <out>/model_index.json                   DDIMPipeline (teacher) or ConsistencyModelPipeline
                                             (student), plus a "_fusediff" block: class names, null
                                             label, default sampler / steps / guidance, trained steps
    <out>/unet/config.json                   UNet2DModel config (every key, diffusers 0.27.2)
    <out>/unet/diffusion_pytorch_model.safetensors   float32 (float16 with --half)
    <out>/scheduler/scheduler_config.json    teacher: DDIMScheduler (cosine, v-prediction, trailing);
                                             student: CMStochasticIterativeScheduler (consistency.py)
    <out>/reference_io.safetensors           fixed input -> PyTorch output, for checking the C++ engine
    <out>/samples.png                        a sample grid, for eyeballing

reference_io.safetensors follows the fixture naming of shared/fixtures/diffusers
(README 3.2): sample F32 [4,4,32,32] (torch.Generator seed 0), timestep [4] (I64 teacher
times, or F32 consistency times 250 ln sigma for the student), class_labels I64 [4] (the
last one is the null class), out_torch_f32 (the model in float32, as shipped — after the
float16 rounding with --half) and out_f64 (the same weights widened to float64).
"""

import argparse
import json
import os

import torch

import consistency
import device as devices
import diffusion
import distill
import safetensors_io
import train_teacher
import unet

CHECKPOINT = "checkpoint.pt"  # the same name in both run directories


def main():
    parser = argparse.ArgumentParser(description="Export the teacher or the student to a diffusers folder.")
    parser.add_argument("--kind", choices=("teacher", "student"), default="teacher")
    parser.add_argument("--run-dir", help="default /work/fusediff-train/<kind>")
    parser.add_argument("--out", help="default /work/fusediff-train/export/tiles32-<kind>")
    parser.add_argument("--half", action="store_true",
                        help="store the weights as float16 (exact widening on load; halves the size)")
    args = parser.parse_args()
    run_dir = args.run_dir or f"/work/fusediff-train/{args.kind}"
    out = args.out or f"/work/fusediff-train/export/tiles32-{args.kind}"
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    state = devices.load(os.path.join(run_dir, CHECKPOINT))
    model = unet.UNet2DModel(state["config"])
    model.load_state_dict(state["ema"])
    model.eval()
    class_names = state["class_names"]
    null_label = len(class_names)
    if args.half:  # what ships is what the reference outputs below are computed with
        model.half().float()

    unet.save_pretrained(model, os.path.join(out, "unet"), dtype=torch.float16 if args.half else torch.float32)
    os.makedirs(os.path.join(out, "scheduler"), exist_ok=True)
    fusediff_block = {
        "description": "class-conditional 32x32 RGBA game tiles (Dungeon Crawl Stone Soup tiles)",
        "class_names": class_names,
        "null_class_label": null_label,
        "output": "4 channels, straight (non-premultiplied) RGBA in [-1, 1]: byte = round((x + 1) * 127.5)",
    }
    if args.kind == "teacher":
        scheduler = diffusion.ddim_scheduler_config(unet.DIFFUSERS_VERSION)
        pipeline_class = "DDIMPipeline"
        # 10 steps: with guidance 2 this under-trained teacher degrades with more steps (DDIM-50
        # floors lose their alpha; training/README "Evaluation"), DDIM-10 is its best measured setting.
        fusediff_block.update(default_guidance_scale=2.0, default_sampler="ddim", default_steps=10,
                              trained_steps=state["step"])
        # DDPM/DDIM times: integers on the training grid
        timestep = torch.tensor([999, 500, 120, 0], dtype=torch.int64)
    else:
        scheduler = consistency.scheduler_config(state["num_boundaries"], unet.DIFFUSERS_VERSION)
        pipeline_class = "ConsistencyModelPipeline"
        fusediff_block.update(default_guidance_scale=1.0, default_sampler="consistency", default_steps=1,
                              guidance_distilled=state["args"]["guidance_scale"],
                              trained_steps=state.get("prior_steps", 0) + state["step"],
                              teacher_steps=state["teacher_step"])
        # consistency times 250 ln(sigma) for sigma_max, 2.73, 0.14 and sigma_min
        timestep = consistency.model_time(torch.tensor([consistency.SIGMA_MAX, 2.73, 0.14, consistency.SIGMA_MIN]))
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), scheduler)
    write_json(os.path.join(out, "model_index.json"), {
        "_class_name": pipeline_class,
        "_diffusers_version": unet.DIFFUSERS_VERSION,
        # diffusers ignores keys starting with "_"; fusediff reads this block.
        "_fusediff": fusediff_block,
        "scheduler": ["diffusers", scheduler["_class_name"]],
        "unet": ["diffusers", "UNet2DModel"],
    })

    sample = torch.randn(4, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 2, 4, null_label], dtype=torch.int64)
    with torch.no_grad():
        out32 = model(sample, timestep, labels)
        out64 = model.to(torch.float64)(sample.double(), timestep, labels)
    model.to(torch.float32)
    safetensors_io.write(os.path.join(out, "reference_io.safetensors"), {
        "sample": sample, "timestep": timestep, "class_labels": labels,
        "out_torch_f32": out32, "out_f64": out64,
    }, {"kind": "unet2d_forward", "step": str(state["step"])})

    if args.kind == "teacher":
        train_teacher.save_preview(model, len(class_names), os.path.join(out, "samples.png"))
    else:
        distill.save_preview(model, len(class_names), state["num_boundaries"], os.path.join(out, "samples.png"))
    print(f"exported {args.kind} step {state['step']} EMA weights to {out} "
          f"(max|f32 - f64| = {(out32.double() - out64).abs().max().item():.2e})")


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
