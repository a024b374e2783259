"""Quality of generated tiles: class accuracy and tile-FID, against the held-out real tiles.

Usage:
    OMP_NUM_THREADS=2 /usr/bin/python3 evaluate.py [--classifier .../classifier.pt] \
        NAME=PREFIX [NAME=PREFIX ...]      # PREFIX.images.npy / PREFIX.labels.npy (generate_tiles.mjs)

For every set: the share of tiles the classifier (classifier.py) assigns to the class they
were generated for, and the Frechet distance (Heusel et al. 2017) between the Gaussian fitted
to the set's classifier features and the one fitted to the real training tiles:
    FD = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))
("tile-FID"). The first row is the floor: the held-out real tiles scored the same way. It is
not zero, because a finite sample of real tiles never matches the reference set's
statistics exactly, and it is computed from fewer tiles (412) than the generated sets, which
biases it upward a little; compare generated sets with each other at equal size.
"""

import argparse
import json
import os

import numpy as np
import torch

import classifier


def frechet_distance(f1, f2):
    f1, f2 = f1.double(), f2.double()
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = torch.cov(f1.T), torch.cov(f2.T)
    # Tr((S1 S2)^(1/2)) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2))), all symmetric PSD: no complex sqrtm.
    e, v = torch.linalg.eigh(s1)
    r1 = v @ torch.diag(e.clamp(min=0).sqrt()) @ v.T
    middle = torch.linalg.eigvalsh(r1 @ s2 @ r1).clamp(min=0).sqrt().sum()
    return ((mu1 - mu2) ** 2).sum().item() + (torch.trace(s1) + torch.trace(s2) - 2 * middle).item()


def score(model, images_uint8, labels, reference_features):
    logits, feats = classifier.predict(model, classifier.canonical(images_uint8))
    accuracy = (logits.argmax(1) == torch.as_tensor(labels)).float().mean().item()
    return {"tiles": len(labels), "class_accuracy": accuracy,
            "tile_fid": frechet_distance(feats, reference_features)}


def main():
    p = argparse.ArgumentParser(description="Score generated tile sets.")
    p.add_argument("--data", default="/work/fusediff-train/data/tiles.npz")
    p.add_argument("--classifier", default="/work/fusediff-train/classifier/classifier.pt")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("sets", nargs="*", help="NAME=PREFIX")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    model, _ = classifier.load(args.classifier)
    data = np.load(args.data)
    _, reference = classifier.predict(model, classifier.canonical(data["train_images"]))
    results = {"held-out real tiles (floor)": score(model, data["val_images"], data["val_labels"], reference)}
    for spec in args.sets:
        name, prefix = spec.split("=", 1)
        images = np.load(prefix + ".images.npy")
        labels = np.load(prefix + ".labels.npy")
        results[name] = score(model, images, labels, reference)

    print(f"| setting | tiles | class accuracy | tile-FID |\n| --- | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {r['tiles']} | {100 * r['class_accuracy']:.1f} % | {r['tile_fid']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
