"""Check unet.py against diffusers' golden outputs (shared/fixtures/diffusers/models/*).

For every model folder: build the UNet from config.json, load the weights with
strict name matching (so every diffusers parameter name must exist here and
vice versa), run each input set of io.safetensors in float64 and require
max|out - setK.out_f64| <= the set's tolerance from cases.json.  Then write the
model back with save_pretrained and require the same config.json content and
bit-identical weights, which checks the diffusers-folder writer.

Run:  OMP_NUM_THREADS=2 /usr/bin/python3 test_unet_matches_diffusers.py [fixtures_dir]
Exit status 0 when every case passes.
"""

import json
import os
import sys
import tempfile

import numpy as np
import torch

import safetensors_io
import unet

DEFAULT_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "shared", "fixtures", "diffusers", "models")
MODELS = ["unet_basic", "unet_cm_mirror", "unet_fourier_1ch", "unet_learned_var_cond"]


def check_model(folder):
    """Return a list of (set prefix, max abs error, tolerance) for one fixture model."""
    model = unet.load_pretrained(folder, dtype=torch.float64)
    io, _ = safetensors_io.read(os.path.join(folder, "io.safetensors"))
    with open(os.path.join(folder, "cases.json")) as f:
        cases = json.load(f)
    results = []
    for input_set in cases["input_sets"]:
        prefix = input_set["prefix"]
        sample = torch.from_numpy(io[prefix + "sample"]).to(torch.float64)
        timestep = torch.from_numpy(io[prefix + "timestep"]).to(torch.float64)
        labels = io.get(prefix + "class_labels")
        labels = torch.from_numpy(labels) if labels is not None else None
        with torch.no_grad():
            out = model(sample, timestep, labels).numpy()
        expected = io[prefix + "out_f64"]
        if out.shape != expected.shape:
            raise AssertionError(f"{folder} {prefix}: shape {out.shape} != {expected.shape}")
        results.append((prefix, float(np.max(np.abs(out - expected))), input_set["tolerance"]))
    return results


def check_roundtrip(folder):
    """save_pretrained(load_pretrained(folder)) must reproduce config and weights exactly."""
    model = unet.load_pretrained(folder, dtype=torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        unet.save_pretrained(model, tmp)
        with open(os.path.join(folder, "config.json")) as a, open(os.path.join(tmp, "config.json")) as b:
            if json.load(a) != json.load(b):
                raise AssertionError(f"{folder}: config.json differs after save_pretrained")
        original, _ = safetensors_io.read(os.path.join(folder, unet.WEIGHTS_NAME))
        written, meta = safetensors_io.read(os.path.join(tmp, unet.WEIGHTS_NAME))
    if meta != {"format": "pt"} or original.keys() != written.keys():
        raise AssertionError(f"{folder}: tensor names or metadata differ after save_pretrained")
    for name, array in original.items():
        if not np.array_equal(array, written[name]):
            raise AssertionError(f"{folder}: tensor {name} differs after save_pretrained")


def main():
    fixtures = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_FIXTURES
    failures = 0
    for name in MODELS:
        for prefix, err, tol in check_model(os.path.join(fixtures, name)):
            ok = err <= tol
            failures += not ok
            print(f"{'PASS' if ok else 'FAIL'} {name} {prefix:6s} max|err| = {err:.3e}  (tol {tol:.1e})")
        check_roundtrip(os.path.join(fixtures, name))
        print(f"PASS {name} save_pretrained round trip")
    print("all cases pass" if failures == 0 else f"{failures} case(s) FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
