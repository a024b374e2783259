"""A small tile classifier: the judge of generated tiles (class accuracy, tile-FID features).

Usage:
    OMP_NUM_THREADS=2 /usr/bin/python3 classifier.py [--data .../tiles.npz] [--out .../classifier.pt]

Trained on the real training split only; its held-out accuracy is printed and stored. Its
penultimate layer (global average of the last conv block, FEATURES wide) is the feature
space of the tile-FID in evaluate.py, the way FID uses an Inception network's pool features
(Heusel et al. 2017) — but trained on this domain, since no ImageNet network is available
offline and an ImageNet network would not know what separates a wall tile from a floor tile.

Inputs are canonicalised like the dataset (RGB zeroed where alpha is zero) so a generated
tile and a real one are seen the same way.
"""

import argparse
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import device as devices
import train_teacher

FEATURES = 128


class TileClassifier(nn.Module):
    def __init__(self, num_classes, width=32):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU())

        self.blocks = nn.ModuleList([block(4, width), block(width, 2 * width), block(2 * width, FEATURES)])
        self.head = nn.Linear(FEATURES, num_classes)

    def features(self, x):
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i + 1 < len(self.blocks):
                x = F.avg_pool2d(x, 2)
        return x.mean((2, 3))

    def forward(self, x):
        return self.head(self.features(x))


def canonical(images_uint8):
    """uint8 [N, 32, 32, 4] straight RGBA -> float NCHW in [-1, 1], RGB zeroed under alpha 0."""
    images = np.array(images_uint8, dtype=np.uint8, copy=True)
    images[images[..., 3] == 0, :3] = 0
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def predict(model, x, batch_size=256):
    """(logits, features) for float NCHW tiles."""
    logits, feats = [], []
    for i in range(0, len(x), batch_size):
        f = model.features(x[i:i + batch_size])
        feats.append(f)
        logits.append(model.head(f))
    return torch.cat(logits), torch.cat(feats)


def load(path):
    state = devices.load(path)
    model = TileClassifier(len(state["class_names"]))
    model.load_state_dict(state["model"])
    return model.eval(), state


def main():
    p = argparse.ArgumentParser(description="Train the tile classifier used for evaluation.")
    p.add_argument("--data", default="/work/fusediff-train/data/tiles.npz")
    p.add_argument("--out", default="/work/fusediff-train/classifier/classifier.pt")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.manual_seed(args.seed)

    data = np.load(args.data)
    class_names = [str(c) for c in data["class_names"]]
    train_x, train_y = canonical(data["train_images"]), torch.from_numpy(data["train_labels"])
    val_x, val_y = canonical(data["val_images"]), torch.from_numpy(data["val_labels"])
    flip_ok = torch.tensor([name in train_teacher.FLIP_CLASSES for name in class_names])

    model = TileClassifier(len(class_names))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps_per_epoch = -(-len(train_x) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.epochs * steps_per_epoch)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(train_x))
        total = 0.0
        for i in range(0, len(perm), args.batch_size):
            idx = perm[i:i + args.batch_size]
            x, y = train_x[idx], train_y[idx]
            flip = flip_ok[y] & (torch.rand(len(y)) < 0.5)
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            loss = F.cross_entropy(model(x), y, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        model.eval()
        acc = (predict(model, val_x)[0].argmax(1) == val_y).float().mean().item()
        print(f"epoch {epoch + 1} loss {total / len(train_x):.4f} held-out accuracy {acc:.4f} "
              f"({time.time() - start:.0f} s)", flush=True)

    logits = predict(model, val_x)[0]
    pred = logits.argmax(1)
    per_class = {name: (pred[val_y == k] == k).float().mean().item() for k, name in enumerate(class_names)}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    torch.save({"model": model.state_dict(), "class_names": class_names, "heldout_accuracy": acc,
                "heldout_per_class": per_class, "args": vars(args)}, args.out)
    print(f"held-out accuracy {acc:.4f}; per class {per_class}; saved {args.out}")


if __name__ == "__main__":
    main()
