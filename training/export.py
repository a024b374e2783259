"""Export the teacher's EMA weights as a diffusers pipeline folder, plus a reference I/O pair.

Usage:
    OMP_NUM_THREADS=2 /usr/bin/python3 export.py [--run-dir /work/fusediff-train/teacher]
                                                 [--out /work/fusediff-train/export/tiles32]

Writes
    <out>/model_index.json                   DDIMPipeline: unet + scheduler, plus "_fusediff" metadata
    <out>/unet/config.json                   UNet2DModel config (every key, diffusers 0.27.2)
    <out>/unet/diffusion_pytorch_model.safetensors
    <out>/scheduler/scheduler_config.json    DDIMScheduler: cosine schedule, v-prediction, trailing
    <out>/reference_io.safetensors           fixed input -> PyTorch output, for checking the C++ engine
    <out>/samples.png                        a sample grid (DDIM 25 steps, guidance 2), for eyeballing

reference_io.safetensors follows the fixture naming of shared/fixtures/diffusers
(README 3.2): sample F32 [4,4,32,32] (torch.Generator seed 0), timestep I64 [4],
class_labels I64 [4] (the last one is the null class), out_torch_f32 (the model
in float32, as shipped) and out_f64 (the same weights widened to float64).
"""

import argparse
import json
import os

import torch

import diffusion
import safetensors_io
import train_teacher
import unet


def main():
    parser = argparse.ArgumentParser(description="Export the teacher to a diffusers folder.")
    parser.add_argument("--run-dir", default=os.environ.get("FUSEDIFF_TEACHER_DIR", "/work/fusediff-train/teacher"))
    parser.add_argument("--out", default="/work/fusediff-train/export/tiles32")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    state = torch.load(os.path.join(args.run_dir, train_teacher.CHECKPOINT))
    model = unet.UNet2DModel(state["config"])
    model.load_state_dict(state["ema"])
    model.eval()
    class_names = state["class_names"]
    null_label = len(class_names)

    unet.save_pretrained(model, os.path.join(args.out, "unet"))
    os.makedirs(os.path.join(args.out, "scheduler"), exist_ok=True)
    write_json(os.path.join(args.out, "scheduler", "scheduler_config.json"),
               diffusion.ddim_scheduler_config(unet.DIFFUSERS_VERSION))
    write_json(os.path.join(args.out, "model_index.json"), {
        "_class_name": "DDIMPipeline",
        "_diffusers_version": unet.DIFFUSERS_VERSION,
        # diffusers ignores keys starting with "_"; fusediff reads this block.
        "_fusediff": {
            "description": "class-conditional 32x32 RGBA game tiles (Dungeon Crawl Stone Soup tiles)",
            "class_names": class_names,
            "null_class_label": null_label,
            "default_guidance_scale": 2.0,
            "output": "4 channels, straight (non-premultiplied) RGBA in [-1, 1]: byte = round((x + 1) * 127.5)",
            "trained_steps": state["step"],
        },
        "scheduler": ["diffusers", "DDIMScheduler"],
        "unet": ["diffusers", "UNet2DModel"],
    })

    sample = torch.randn(4, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    timestep = torch.tensor([999, 500, 120, 0], dtype=torch.int64)
    labels = torch.tensor([0, 2, 4, null_label], dtype=torch.int64)
    with torch.no_grad():
        out32 = model(sample, timestep, labels)
        out64 = model.to(torch.float64)(sample.double(), timestep, labels)
    model.to(torch.float32)
    safetensors_io.write(os.path.join(args.out, "reference_io.safetensors"), {
        "sample": sample, "timestep": timestep, "class_labels": labels,
        "out_torch_f32": out32, "out_f64": out64,
    }, {"kind": "unet2d_forward", "step": str(state["step"])})

    train_teacher.save_preview(model, len(class_names), os.path.join(args.out, "samples.png"))
    print(f"exported step {state['step']} EMA weights to {args.out} "
          f"(max|f32 - f64| = {(out32.double() - out64).abs().max().item():.2e})")


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
