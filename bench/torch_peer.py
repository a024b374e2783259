"""PyTorch peer of `npm run bench` (dev only: Debian's python3-torch, no download).

Runs the recipe's plain-PyTorch UNet2DModel (training/unet.py, diffusers' architecture and
weight names) on the same diffusers folder and the same input as fusediff, so the bench can
quote ours/PyTorch next to ours/onnxruntime-node.

    torch_peer.py MODEL_DIR INPUT.f32 B,C,H,W TIMESTEP CLASS OUTPUT.f32

INPUT.f32 holds the sample as raw little-endian float32 (NCHW); CLASS is a class id for every
image, or -1 for an unconditional model. The peer loads the model, runs one forward, writes its
output as raw float32 to OUTPUT.f32 and prints "ready <torch version>". Then each line "run" on
stdin runs one forward and prints its seconds (timed here, so the pipe's latency is not
counted); end of input quits.

Threads: torch.set_num_threads(OMP_NUM_THREADS). The caller sets OMP_WAIT_POLICY=PASSIVE so
that idle OpenMP threads sleep instead of spinning between calls, as fusediff's pool and
onnxruntime-node (spinning off) do in the same bench.
"""

import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "training"))
import unet  # noqa: E402  (the recipe's UNet2DModel)


def main():
    model_dir, input_path, shape_arg, timestep, label, output_path = sys.argv[1:7]
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    shape = [int(v) for v in shape_arg.split(",")]
    sample = torch.from_numpy(np.fromfile(input_path, dtype="<f4").reshape(shape))
    timesteps = torch.full((shape[0],), float(timestep))
    labels = torch.full((shape[0],), int(label), dtype=torch.long) if int(label) >= 0 else None
    if not os.path.exists(os.path.join(model_dir, "config.json")):
        model_dir = os.path.join(model_dir, "unet")  # a pipeline folder
    model = unet.load_pretrained(model_dir)

    def forward():
        with torch.inference_mode():
            return model(sample, timesteps, labels)

    forward().numpy().astype("<f4").tofile(output_path)
    print(f"ready {torch.__version__}", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            raise SystemExit(f"unknown command {line.strip()!r}")
        start = time.perf_counter()
        forward()
        print(f"{time.perf_counter() - start:.6f}", flush=True)


if __name__ == "__main__":
    main()
