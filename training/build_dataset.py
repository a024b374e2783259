"""Build the 32x32 RGBA game-tile dataset from Debian's crawl-tiles-data sprite sheets.

Usage:
    /usr/bin/python3 build_dataset.py [--tiles-dir /usr/share/crawl/dat/tiles]
                                      [--out /work/fusediff-train/data]

Writes <out>/tiles.npz with
    train_images uint8 [N, 32, 32, 4]  straight (non-premultiplied) RGBA, RGB = 0 where A = 0
    train_labels int64 [N]
    val_images, val_labels             the deterministic ~10% held-out split
    class_names  str   [C]
plus <out>/manifest.json (counts, sheet checksums) and <out>/preview_<class>.png.

How tiles are obtained.  The package ships the game's texture atlases, not
single tiles.  Dungeon Crawl's packer (rltiles tool, tile_page::place_images)
stores untrimmed 32x32 tiles on a regular grid in floor.png, wall.png and
feat.png, so those are cut on the 32-pixel grid.  main.png (items) and
player.png (monsters, player-doll parts) hold tiles trimmed to their opaque
bounding box and packed into columns, with no record of where one ends: those
are segmented (see `segment_sprites`) and each sprite is centred on a 32x32
transparent canvas.

Which regions of each sheet feed which class is a table (SOURCES) tuned by eye
for crawl-tiles-data 2:0.28.0 (Debian bookworm); the sheet sizes are checked so
a different package version fails loudly instead of silently mislabelling.
"""

import argparse
import hashlib
import json
import os

import numpy as np
from PIL import Image

import previews

TILE = 32
CLASS_NAMES = ["floor", "wall", "feature", "item", "monster"]

# Sheet sizes of crawl-tiles-data 2:0.28.0-1.1; SOURCES regions are only valid for these.
EXPECTED_SIZES = {
    "floor.png": (1024, 960),
    "wall.png": (1024, 1344),
    "feat.png": (1024, 608),
    "main.png": (1024, 1000),
    "player.png": (1024, 2083),
}

# (class, sheet, how to cut, regions as (x0, y0, x1, y1) in sheet pixels).
# A grid cell belongs to a region if it lies inside it; a sprite if its box centre does.
SOURCES = [
    # Floors and walls: whole sheets; overlays on them are removed by the opacity test.
    ("floor", "floor.png", "grid", [(0, 0, 1024, 960)]),
    ("wall", "wall.png", "grid", [(0, 0, 1024, 1344)]),
    # Dungeon features (trees, doors, statues, altars, stairs, fountains, portals).
    # Below y=416 the sheet holds blood-splatter and tint overlays, not objects.
    ("feature", "feat.png", "grid", [(0, 0, 1024, 416), (0, 416, 224, 448)]),
    # Items (jewellery, armour, weapons, missiles, wands, scrolls, potions, books,
    # misc, runes, gold).  Below y=716: corpses, then spell effects and clouds.
    ("item", "main.png", "sprites", [(0, 0, 1024, 716)]),
    # Monsters.  Skipped: y < 640 demonspawn body parts (composited at run time)
    # and wing overlays, y 792-1024 tentacle/vine segments, y >= 1790 player-doll
    # bodies and equipment.  Stray tentacle segments near y 780 fail the size test.
    ("monster", "player.png", "sprites", [(0, 640, 1024, 792), (0, 1024, 1024, 1790)]),
]

OPAQUE_TEXTURE_FRACTION = 0.95   # floors/walls: share of fully opaque pixels required
# Objects: pixels with alpha >= 128 required.  Monsters need a quarter of the tile,
# which removes tentacle segments and "?" placeholders but keeps small creatures.
MIN_VISIBLE_PIXELS = {"feature": 64, "item": 64, "monster": 256}
SILHOUETTE_LUMA_STD = 10.0       # objects: flatter than this are placeholder silhouettes
VAL_MODULUS = 10                 # a tile is held out when hash % 10 == 0


# --------------------------------------------------------------------------- segmentation


def label_components(mask):
    """8-connected component labels of a boolean image (union-find over horizontal runs)."""
    parent = []

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    runs, previous = [], []
    for y in range(mask.shape[0]):
        edges = np.diff(np.concatenate([[0], mask[y].astype(np.int8), [0]]))
        current = []
        for x0, x1 in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            rid = len(parent)
            parent.append(rid)
            runs.append((y, x0, x1))
            current.append((x0, x1, rid))
            for px0, px1, pid in previous:
                if px0 <= x1 and px1 >= x0:  # overlapping or diagonal-touching runs
                    ra, rb = find(rid), find(pid)
                    if ra != rb:
                        parent[ra] = rb
        previous = current
    labels = np.zeros(mask.shape, np.int32)
    ids = {}
    for rid, (y, x0, x1) in enumerate(runs):
        labels[y, x0:x1] = ids.setdefault(find(rid), len(ids) + 1)
    return labels, len(ids)


def _tight_box(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


def _split_oversize(mask, oy, ox, out):
    """Cut a blob larger than a tile into tile-sized pieces.

    The packer places rectangles side by side, so two touching sprites meet on a
    straight vertical or horizontal line, crossed by few 8-connected pixel links;
    a cut through the middle of a sprite crosses many.  Cut where the fewest
    links cross (preferring cuts that leave both sides tile-sized), recursively.
    """
    y0, x0, y1, x1 = _tight_box(mask)
    mask, oy, ox = mask[y0:y1, x0:x1], oy + y0, ox + x0
    h, w = mask.shape
    if h <= TILE and w <= TILE:
        out.append((oy, ox, oy + h, ox + w))
        return
    vertical = w > TILE and (w >= h or h <= TILE)
    m = mask if vertical else mask.T
    n = m.shape[1]
    right = np.pad(m[:, 1:], ((1, 1), (0, 0)))
    links = (m[:, :-1] & (right[:-2] | right[1:-1] | right[2:])).sum(0)  # across cut c|c+1
    cuts = np.arange(1, n)
    too_big = (cuts > TILE) | (n - cuts > TILE)
    score = 4 * links + 2 * too_big + np.abs(cuts - n / 2) / n  # last term: tie-break to the middle
    c = int(cuts[np.argmin(score)])
    if vertical:
        _split_oversize(mask[:, :c], oy, ox, out)
        _split_oversize(mask[:, c:], oy, ox + c, out)
    else:
        _split_oversize(mask[:c], oy, ox, out)
        _split_oversize(mask[c:], oy + c, ox, out)


def _merge_fragments(boxes):
    """Merge boxes that overlap while the union still fits a tile.

    A sprite may be several components (sparkles, a detached hilt); their boxes
    lie inside the sprite's rectangle and so overlap the main body's box.
    Packed rectangles never overlap, so overlapping boxes of one tile's size
    almost always belong together.  Smallest boxes are merged first.
    """
    boxes = np.array(boxes)
    alive = np.ones(len(boxes), bool)
    changed = True
    while changed:
        changed = False
        for i in np.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])):
            if not alive[i]:
                continue
            b = boxes[i]
            overlap = alive & (boxes[:, 0] < b[2]) & (boxes[:, 2] > b[0]) & \
                (boxes[:, 1] < b[3]) & (boxes[:, 3] > b[1])
            overlap[i] = False
            for j in np.flatnonzero(overlap):
                u = [min(b[0], boxes[j, 0]), min(b[1], boxes[j, 1]),
                     max(b[2], boxes[j, 2]), max(b[3], boxes[j, 3])]
                if u[2] - u[0] <= TILE and u[3] - u[1] <= TILE:
                    boxes[i] = u
                    b = boxes[i]
                    alive[j] = False
                    changed = True
    return boxes[alive]


def segment_sprites(sheet):
    """Boxes (y0, x0, y1, x1), each at most 32x32, of the sprites packed in an RGBA sheet."""
    labels, count = label_components(sheet[..., 3] > 0)
    ys, xs = np.nonzero(labels)
    ids = labels[ys, xs]
    y0 = np.full(count + 1, 1 << 30)
    x0 = np.full(count + 1, 1 << 30)
    y1 = np.zeros(count + 1, np.int64)
    x1 = np.zeros(count + 1, np.int64)
    np.minimum.at(y0, ids, ys)
    np.minimum.at(x0, ids, xs)
    np.maximum.at(y1, ids, ys + 1)
    np.maximum.at(x1, ids, xs + 1)
    pieces = []
    for k in range(1, count + 1):
        _split_oversize(labels[y0[k]:y1[k], x0[k]:x1[k]] == k, y0[k], x0[k], pieces)
    return _merge_fragments(pieces)


# --------------------------------------------------------------------------- tiles


def _cell_inside(x, y, regions):
    return any(rx0 <= x and ry0 <= y and x + TILE <= rx1 and y + TILE <= ry1
               for rx0, ry0, rx1, ry1 in regions)


def _point_inside(x, y, regions):
    return any(rx0 <= x < rx1 and ry0 <= y < ry1 for rx0, ry0, rx1, ry1 in regions)


def grid_tiles(sheet, regions):
    h, w = sheet.shape[:2]
    for y in range(0, h - TILE + 1, TILE):
        for x in range(0, w - TILE + 1, TILE):
            if _cell_inside(x, y, regions):
                yield sheet[y:y + TILE, x:x + TILE]


def sprite_tiles(sheet, regions):
    for y0, x0, y1, x1 in segment_sprites(sheet):
        if not _point_inside((x0 + x1) / 2, (y0 + y1) / 2, regions):
            continue
        tile = np.zeros((TILE, TILE, 4), np.uint8)
        oy, ox = (TILE - (y1 - y0)) // 2, (TILE - (x1 - x0)) // 2
        tile[oy:oy + y1 - y0, ox:ox + x1 - x0] = sheet[y0:y1, x0:x1]
        yield tile


def keep_tile(tile, class_name):
    alpha = tile[..., 3]
    if class_name in ("floor", "wall"):
        return (alpha == 255).mean() >= OPAQUE_TEXTURE_FRACTION
    visible = alpha >= 128
    if visible.sum() < MIN_VISIBLE_PIXELS[class_name]:
        return False
    luma = tile[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return luma[visible].std() >= SILHOUETTE_LUMA_STD


def canonical(tile):
    """Zero the colour of fully transparent pixels so equal-looking tiles are equal arrays."""
    tile = tile.copy()
    tile[tile[..., 3] == 0, :3] = 0
    return tile


def load_sheet(tiles_dir, name):
    path = os.path.join(tiles_dir, name)
    image = Image.open(path).convert("RGBA")
    if image.size != EXPECTED_SIZES[name]:
        raise SystemExit(f"{path}: size {image.size}, expected {EXPECTED_SIZES[name]} "
                         "(crawl-tiles-data 2:0.28.0); re-tune SOURCES for this version")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return np.array(image), digest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles-dir", default="/usr/share/crawl/dat/tiles")
    parser.add_argument("--out", default="/work/fusediff-train/data")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    seen = set()
    tiles = {name: [] for name in CLASS_NAMES}
    checksums = {}
    dropped = {"filtered": 0, "duplicate": 0}
    for class_name, sheet_name, mode, regions in SOURCES:
        sheet, checksums[sheet_name] = load_sheet(args.tiles_dir, sheet_name)
        cut = grid_tiles if mode == "grid" else sprite_tiles
        for tile in cut(sheet, regions):
            tile = canonical(tile)
            if not keep_tile(tile, class_name):
                dropped["filtered"] += 1
                continue
            key = tile.tobytes()
            if key in seen:
                dropped["duplicate"] += 1
                continue
            seen.add(key)
            tiles[class_name].append(tile)

    split = {"train": ([], []), "val": ([], [])}
    counts = {}
    for label, class_name in enumerate(CLASS_NAMES):
        for tile in tiles[class_name]:
            # Held-out membership depends on the tile's pixels only, so it is stable
            # under any change to ordering or to other classes.
            digest = int(hashlib.sha1(tile.tobytes()).hexdigest()[:8], 16)
            part = "val" if digest % VAL_MODULUS == 0 else "train"
            split[part][0].append(tile)
            split[part][1].append(label)
            counts.setdefault(class_name, {"train": 0, "val": 0})[part] += 1
        previews.contact_sheet(tiles[class_name], os.path.join(args.out, f"preview_{class_name}.png"), columns=32)

    np.savez_compressed(
        os.path.join(args.out, "tiles.npz"),
        train_images=np.stack(split["train"][0]), train_labels=np.array(split["train"][1], np.int64),
        val_images=np.stack(split["val"][0]), val_labels=np.array(split["val"][1], np.int64),
        class_names=np.array(CLASS_NAMES))
    manifest = {"class_names": CLASS_NAMES, "counts": counts, "dropped": dropped,
                "tiles_dir": args.tiles_dir, "sheet_sha256": checksums,
                "format": "uint8 [N,32,32,4] straight RGBA, RGB zeroed where A = 0"}
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    print(f"{'class':10s} {'train':>6s} {'val':>5s} {'total':>6s}")
    for class_name in CLASS_NAMES:
        c = counts.get(class_name, {"train": 0, "val": 0})
        print(f"{class_name:10s} {c['train']:6d} {c['val']:5d} {c['train'] + c['val']:6d}")
    total_train = sum(c["train"] for c in counts.values())
    total_val = sum(c["val"] for c in counts.values())
    print(f"{'all':10s} {total_train:6d} {total_val:5d} {total_train + total_val:6d}")
    print(f"dropped: {dropped['filtered']} near-empty/overlay/silhouette, {dropped['duplicate']} exact duplicates")
    print(f"wrote {os.path.join(args.out, 'tiles.npz')}")


if __name__ == "__main__":
    main()
