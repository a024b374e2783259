"""The whole recipe end to end in about a minute, on a CPU or a GPU: a check that it runs, not
a training run.

Usage:
    OMP_NUM_THREADS=2 /usr/bin/python3 smoke_test.py [--device cpu|cuda] [--keep DIR]

On a synthetic dataset (random tiles in the layout build_dataset.py writes), every script runs
as its README step runs it, through its command line, with a tiny model (--channels 16,32):
train_teacher.py (stopped and resumed), distill.py (re-timing, CD), ode_targets.py (targets,
then the gap), distill.py warm-started with the one-step term, export.py for both kinds; then
fusediff (the built package, npm run build) loads both exports and its forward must match the
PyTorch output export.py saved, within 10x PyTorch's own float32 error. The scripts' device is
--device (default auto: the GPU when PyTorch sees one); the comparison runs on the CPU.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import safetensors_io

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ["floor", "wall", "feature", "item", "monster"]

NODE_SCRIPT = r"""
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [dist, model, io] = process.argv.slice(2);
const { loadPipeline, loadUNet, Tensor } = await import(pathToFileURL(dist).href);
const spec = JSON.parse(readFileSync(io + '.json', 'utf8'));
const sample = new Float32Array(readFileSync(io + '.sample').buffer.slice(0));
const unet = await loadUNet(model);
const x = Tensor.fromFloat32(sample, spec.shape);
const y = await unet.forward(x, spec.timestep, { classLabels: spec.class_labels });
writeFileSync(io + '.out', Buffer.from((await y.toFloat32Array()).buffer));
unet.dispose();
const pipe = await loadPipeline(model);
const res = await pipe.generate({ classLabels: ['wall', 'monster'], seeds: [1, 2], channels: 4 });
if (res.images.length !== 2 || res.images[0].data.length !== 32 * 32 * 4) throw new Error('generate() returned no tiles');
pipe.dispose();
"""


def synthetic_dataset(path, seed=0):
    """Random 32x32 RGBA tiles per class (a coloured square on transparency), in
    build_dataset.py's npz layout."""
    rng = np.random.default_rng(seed)

    def tiles(count):
        labels = np.arange(count) % len(CLASSES)
        images = np.zeros((count, 32, 32, 4), np.uint8)
        for i, k in enumerate(labels):
            lo = 2 + 2 * k
            images[i, lo:32 - lo, lo:32 - lo, :3] = rng.integers(0, 256, 3)
            images[i, lo:32 - lo, lo:32 - lo, 3] = 255
        return images, labels.astype(np.int64)

    train_images, train_labels = tiles(60)
    val_images, val_labels = tiles(10)
    np.savez(path, class_names=np.array(CLASSES), train_images=train_images, train_labels=train_labels,
             val_images=val_images, val_labels=val_labels)


def run(*args):
    print("+ " + " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=HERE, check=True)


def expect_log(run_dir, *phrases):
    """The run's train.log says what the step should have done (a resume, a warm start)."""
    with open(os.path.join(run_dir, "train.log")) as f:
        text = f.read()
    missing = [p for p in phrases if p not in text]
    if missing:
        raise SystemExit(f"{run_dir}/train.log lacks {missing}")


def check_with_fusediff(export_dir, work):
    """fusediff's forward on the export's reference input vs PyTorch's float64 output."""
    ref, _ = safetensors_io.read(os.path.join(export_dir, "reference_io.safetensors"))
    sample = ref["sample"].astype(np.float32)
    io = os.path.join(work, "io")
    sample.tofile(io + ".sample")
    with open(io + ".json", "w") as f:
        json.dump({"shape": list(sample.shape), "timestep": ref["timestep"].tolist(),
                   "class_labels": ref["class_labels"].tolist()}, f)
    script = os.path.join(work, "check.mjs")
    with open(script, "w") as f:
        f.write(NODE_SCRIPT)
    subprocess.run(["node", script, os.path.join(HERE, "..", "dist", "index.js"), export_dir, io], check=True)
    ours = np.fromfile(io + ".out", np.float32).reshape(sample.shape)
    out64 = ref["out_f64"]
    torch_err = float(np.abs(ref["out_torch_f32"] - out64).max())
    err = float(np.abs(ours - out64).max())
    tolerance = max(10 * torch_err, 1e-5)
    print(f"{export_dir}: fusediff vs PyTorch float64 max |diff| {err:.2e} (tolerance {tolerance:.2e})")
    if not err <= tolerance:
        raise SystemExit(f"{export_dir}: fusediff's forward does not match the recipe's")


def main():
    p = argparse.ArgumentParser(description="Run the training recipe end to end on a tiny model.")
    p.add_argument("--device", default="auto")
    p.add_argument("--keep", metavar="DIR", help="work here and keep the files (default: a temporary folder)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        os.makedirs(work, exist_ok=True)
        data = os.path.join(work, "tiles.npz")
        teacher, student, student2 = (os.path.join(work, d) for d in ("teacher", "student", "student2"))
        synthetic_dataset(data)
        dev = ["--device", args.device]
        tiny = ["--data", data, "--batch-size", "8", "--checkpoint-minutes", "0"]
        teach = ["train_teacher.py", *tiny, "--run-dir", teacher, "--channels", "16,32", "--eval-every", "3", *dev]
        run(*teach, "--max-steps", "3")
        run(*teach, "--max-steps", "5")  # resumes from the step-3 checkpoint
        expect_log(teacher, "resumed from", "checkpoint.pt at step 3 on", "finished: 5 steps")
        run("distill.py", *tiny, "--teacher-run", teacher, "--run-dir", student, "--retime-steps", "2",
            "--max-steps", "4", "--eval-every", "4", *dev)
        targets = os.path.join(work, "ode_targets.npz")
        run("ode_targets.py", "--run-dir", student, "--count", "6", "--batch-size", "4", "--out", targets, *dev)
        run("distill.py", *tiny, "--teacher-run", teacher, "--run-dir", student2, "--init-student",
            os.path.join(student, "checkpoint.pt"), "--retime-steps", "0", "--max-steps", "2", "--eval-every", "2",
            "--ode-targets", targets, *dev)
        expect_log(student2, "warm start from", "one-step term: 6 ODE endpoints", "finished: 2 steps")
        run("ode_targets.py", "--run-dir", student2, "--gap", os.path.join(student2, "checkpoint.pt"),
            "--count", "6", "--batch-size", "4", *dev)
        exports = {"student": os.path.join(work, "export-student"), "teacher": os.path.join(work, "export-teacher")}
        run("export.py", "--kind", "student", "--run-dir", student2, "--out", exports["student"])
        run("export.py", "--kind", "teacher", "--half", "--run-dir", teacher, "--out", exports["teacher"])
        for path in exports.values():
            check_with_fusediff(path, work)
    print("recipe smoke test passed")


if __name__ == "__main__":
    main()
