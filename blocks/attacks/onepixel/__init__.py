"""The one-pixel attack (Su, Vargas, Sakurai, IEEE TEVC 2019, arXiv 1710.08864), batched over images.

A search for K pixels (x, y, r, g, b) that flip a classifier. Strategies: "probe" (default,
probe.py), "random" (Sparse-RS at one pixel, sparse_rs.py), "paper" (the paper's differential
evolution) and "best1bin" (scipy's DE), both in de.py. Every scored candidate passes one keeper
per image (problem.py), so a win, once seen, is never lost; the budget is counted in model
evaluations per image (config.py).

The public versions (torchattacks OnePixel, ART PixelAttack) run scipy's DE one image at a time
and write every candidate into its image in Python loops. Here the candidates of all images are
one tensor; every round the candidates of all still-running images are written into image copies
with one advanced-indexing assignment per forward chunk, and images that stopped drop out of the
batch. report.py writes the files of `blocks onepixel` (imported on its own: it is not loaded here).

Layout (each module imports only those above it): config, result, problem, fast, de, corners,
sparse_rs, probe, attack; report.
"""
from common.lazy import lazy

# Imported on first use: config.py imports no torch, and `blocks onepixel` reads its defaults
# from it before torch is imported.
_LAZY = {"OnePixelConfig": "blocks.attacks.onepixel.config", "OnePixelResult": "blocks.attacks.onepixel.result",
         "one_pixel_attack": "blocks.attacks.onepixel.attack", "prepare_images": "blocks.attacks.onepixel.attack"}

__all__ = list(_LAZY)


__getattr__ = lazy(__name__, _LAZY)
