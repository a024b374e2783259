"""Contact sheets of RGBA tiles over a grey checkerboard, so transparency stays visible."""

import numpy as np
from PIL import Image


def contact_sheet(tiles, path, columns, scale=1):
    """Write uint8 [N, h, w, 4] straight-RGBA tiles as an RGB PNG grid, row-major."""
    tiles = np.asarray(tiles)
    n, h, w = tiles.shape[:3]
    rows = max(1, -(-n // columns))
    grid = np.zeros((rows * h, columns * w, 4), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    checker = (np.indices(grid.shape[:2]) // 8).sum(0) % 2 * 40 + 100
    alpha = grid[..., 3:4] / 255.0
    rgb = (grid[..., :3] * alpha + checker[..., None] * (1 - alpha)).round().astype(np.uint8)
    image = Image.fromarray(rgb)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    image.save(path)
