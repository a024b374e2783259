"""fusediff's one-step consistency sampler on the exported student == this recipe's own.

Usage:
    OMP_NUM_THREADS=2 /usr/bin/python3 check_sampler_parity.py [--model ../models/tiles32]

fusediff generates tiles (its `consistency` sampler, one step) and hands over the Gaussian
noise it started from (its Philox generator, `randn(shape, seeds, stream 0)`); the same
noise goes through consistency.consistency_fn in PyTorch; both are rounded to 8 bits. A
difference would mean the engine and the recipe disagree on the parametrisation (c_skip,
c_out, c_in, the time input 250 ln sigma, sigma_max) — the one thing a forward-only reference
test cannot catch. Needs the built package (npm run build).
"""

import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
import torch

import consistency
import unet

NODE_SCRIPT = r"""
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [dist, model, out, seeds, labels] = process.argv.slice(2);
const { loadPipeline, randn } = await import(pathToFileURL(dist).href);
const s = JSON.parse(seeds), l = JSON.parse(labels);
const pipe = await loadPipeline(model);
const res = await pipe.generate({ seeds: s, classLabels: l, sampler: 'consistency', steps: 1, guidanceScale: 1, channels: 4 });
const z = await (await randn([s.length, 4, 32, 32], s, 0)).toFloat32Array();
writeFileSync(out + '.noise', Buffer.from(z.buffer));
const images = new Uint8Array(s.length * 32 * 32 * 4);
res.images.forEach((im, i) => images.set(im.data, i * 4096));
writeFileSync(out + '.images', images);
pipe.dispose();
"""


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description="Compare fusediff's consistency sampler with the recipe's.")
    p.add_argument("--model", default=os.path.join(here, "..", "models", "tiles32"))
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    seeds = list(range(1, 17))
    labels = [i % 6 for i in range(16)]  # every class and the null class
    with open(os.path.join(args.model, "scheduler", "scheduler_config.json")) as f:
        sigma_max = json.load(f)["sigma_max"]
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "gen.mjs")
        with open(script, "w") as f:
            f.write(NODE_SCRIPT)
        out = os.path.join(tmp, "run")
        subprocess.run(["node", script, os.path.join(here, "..", "dist", "index.js"), args.model, out,
                        json.dumps(seeds), json.dumps(labels)], check=True)
        noise = torch.from_numpy(np.fromfile(out + ".noise", np.float32).reshape(16, 4, 32, 32))
        theirs = np.fromfile(out + ".images", np.uint8).reshape(16, 32, 32, 4)
    model = unet.load_pretrained(os.path.join(args.model, "unet"))
    sigma = torch.full((16,), float(np.float32(sigma_max)))
    with torch.no_grad():
        x0 = consistency.consistency_fn(model, noise * sigma.view(-1, 1, 1, 1), sigma, torch.tensor(labels)).clamp(-1, 1)
    ours = ((x0 + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    print(f"16 tiles: max difference {diff.max()} (8-bit levels), {100 * (diff > 0).mean():.3f} % of values differ")
    if diff.max() > 1:
        raise SystemExit("fusediff and the recipe disagree")


if __name__ == "__main__":
    main()
