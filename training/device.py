"""Where the recipe runs: `--device auto|cpu|cuda|cuda:N` for the training scripts.

The recipe is one code path on a CPU and on a CUDA GPU; only the throughput differs. So that
it stays one path:
  * the model, its optimizer state, the dataset tensors and the schedule tables live on the
    run's device;
  * per-step randomness (batch indices, noise, flips, label drops) is drawn on that device from
    the global generator, which --seed seeds and the checkpoint saves (CPU and, on a GPU, CUDA
    state);
  * fixed-seed randomness (held-out loss, previews, ODE-target noise, the exported reference
    input) is drawn on the CPU from an explicit torch.Generator and then moved, so those
    numbers depend on the seed, not on the device;
  * checkpoints are loaded onto the CPU (map_location) and then copied into the models, so a
    run started on a GPU resumes or exports on a CPU and the other way round.
On a GPU, float32 matrix products and convolutions may use TF32 (10-bit mantissa inputs,
float32 accumulation): that is how GPU training of such models is normally run, it changes
the loss curve by less than the batch noise, and exported weights are plain float32 either
way. The CPU uses OMP_NUM_THREADS threads (default 2).
"""

import os

import torch


def add_argument(parser):
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda or cuda:N; auto (default) picks cuda when this PyTorch sees a GPU")


def resolve(name):
    """The torch.device for a --device value, with the backend set up for training."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise SystemExit(f"--device {name}: {e}")
    if device.type == "cpu":
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    elif device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {name}: this PyTorch ({torch.__version__}, CUDA {torch.version.cuda}) "
                             "sees no CUDA device; use --device cpu")
        if device.index is None:  # name the device: torch.cuda.set_device refuses a bare "cuda"
            device = torch.device("cuda", torch.cuda.current_device())
        if device.index >= torch.cuda.device_count():
            raise SystemExit(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolution once
    else:
        raise SystemExit(f"--device {name}: the recipe runs on cpu or cuda")
    return device


def describe(device):
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)}, PyTorch {torch.__version__})"
    return f"cpu ({torch.get_num_threads()} threads, PyTorch {torch.__version__})"


def load(path):
    """torch.load onto the CPU, whatever device the file was saved from."""
    return torch.load(path, map_location="cpu")


def rng_state(device):
    """The global generators' state, for a checkpoint."""
    state = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(checkpoint, device):
    """Restores rng_state(); a run resumed on another kind of device keeps the CPU state and
    starts the GPU's from --seed (the checkpoint has none for it)."""
    torch.set_rng_state(checkpoint["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in checkpoint:
        torch.cuda.set_rng_state(checkpoint["cuda_rng"], device)
