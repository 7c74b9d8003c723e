"""The card the `held` views train on is the card `blocks print` prints: a patch printed with the
print defaults, rendered from the PDF, against transforms.held's card texture at the same texel
density. Markers (ids, corners), the patch's box and the card's size agree to about a texel; so do
the colours (both before the print response, which the trainer applies to the whole card alike)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from printing import SheetSettings, make_sheet, patch_from_array, render_region
from printing.layout import CARD_BORDER_MM
from printing.markers import detect_markers
from transforms.card import card_texture
from transforms.held import HeldCard

P = 128  # patch px: 2.56 texels per mm on a 50 mm block, so a 0.5 mm drift is over a texel
K = 4  # printed render: K render px per training texel
TOL = 1.0  # texels: snapping the card's lengths to whole texels moves an edge by half a texel at most


@pytest.fixture(scope="module")
def cards():
    """(printed card, training card) as (C', C', 3) float RGB in [0, 1] on the training texel grid, the
    printed card's side in texels and the corners of each one's markers {id: (4, 2)} in texels,
    both relative to the patch's top-left corner."""
    rng = np.random.default_rng(0)
    cells = rng.integers(20, 236, (8, 8, 3), dtype=np.uint8)  # no paper white in the patch
    pixels = np.repeat(np.repeat(cells, P // 8, 0), P // 8, 1)
    sheet = make_sheet([patch_from_array(pixels)], SheetSettings(captions=False))  # blocks print's defaults
    block = sheet.info.blocks[0]
    texels = P / block.size_mm  # per mm
    xs = [m.x_mm for m in block.markers] + [m.x_mm + m.size_mm for m in block.markers]
    ys = [m.y_mm for m in block.markers] + [m.y_mm + m.size_mm for m in block.markers]
    x0, y0 = min(xs) - CARD_BORDER_MM, min(ys) - CARD_BORDER_MM  # where the card is cut
    dpi = K * texels * 25.4
    img, (ox, oy) = render_region(sheet.pdf, block.page, dpi, x0, y0, max(xs) - x0 + CARD_BORDER_MM,
                                  max(ys) - y0 + CARD_BORDER_MM)
    printed_side = (max(xs) - min(xs) + 2 * CARD_BORDER_MM) * texels

    def to_texels(px, origin_mm, patch_mm):  # render px (OpenCV: centres at integers) -> texels from the patch
        return ((px + 0.5) * 25.4 / dpi + origin_mm - patch_mm) * texels

    found = detect_markers(img)
    printed_markers = {int(i): np.stack([to_texels(c[:, 0], ox, block.x_mm), to_texels(c[:, 1], oy, block.y_mm)], 1)
                       for i, c in zip(found.ids, found.corners)}

    patch = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    train, off = card_texture(patch, HeldCard().card)
    train = train.permute(1, 2, 0).numpy()
    big = (np.repeat(np.repeat(train, K, 0), K, 1) * 255).round().astype(np.uint8)
    found = detect_markers(big)
    train_markers = {int(i): (c + 0.5) / K - off for i, c in zip(found.ids, found.corners)}

    # the printed render sampled at the training card's texel centres (bilinear, in render px)
    t = np.arange(train.shape[0], dtype=np.float32) + 0.5 - off  # texel centres, from the patch corner
    gx = (t / texels + block.x_mm - ox) * dpi / 25.4 - 0.5
    gy = (t / texels + block.y_mm - oy) * dpi / 25.4 - 0.5
    mx, my = np.meshgrid(gx, gy)
    printed = cv2.remap(img, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255)).astype(np.float32) / 255
    return dict(printed=printed, train=train, off=off, printed_side=printed_side,
                printed_markers=printed_markers, train_markers=train_markers)


def test_the_markers_sit_where_the_print_puts_them(cards):
    printed, train = cards["printed_markers"], cards["train_markers"]
    assert sorted(printed) == sorted(train) == [0, 1, 2, 3]  # block 0's ids, at the same corners
    for i in printed:
        err = np.abs(printed[i] - train[i]).max()
        assert err <= TOL, f"marker {i}: corners {err:.2f} texels apart\n{printed[i]}\n{train[i]}"


def test_the_card_is_cut_as_wide_as_the_print_and_the_patch_box_agrees(cards):
    train, off = cards["train"], cards["off"]
    assert abs(train.shape[0] - cards["printed_side"]) <= 2 * TOL, (train.shape[0], cards["printed_side"])
    # the patch's box in the printed render: its cells differ from the paper everywhere inside
    inside = np.abs(cards["printed"] - 1).max(2) > 0.05
    rows = np.flatnonzero(inside[:, off + P // 2])
    cols = np.flatnonzero(inside[off + P // 2])
    patch_rows = rows[(rows >= off - 2) & (rows < off + P + 2)]
    patch_cols = cols[(cols >= off - 2) & (cols < off + P + 2)]
    assert abs(patch_rows[0] - off) <= TOL and abs(patch_rows[-1] - (off + P - 1)) <= TOL
    assert abs(patch_cols[0] - off) <= TOL and abs(patch_cols[-1] - (off + P - 1)) <= TOL


def test_the_printed_card_and_the_training_card_look_the_same(cards):
    """Texel by texel, away from edges (where half a texel of snapping may fall either side): the
    patch's colours, the paper's white and the markers' black."""
    printed, train = cards["printed"], cards["train"]
    flat = cv2.erode((cv2.Laplacian(train.mean(2), cv2.CV_32F) == 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert flat.mean() > 0.5  # most of the card is away from an edge
    diff = np.abs(printed - train).max(2)[flat]
    assert np.quantile(diff, 0.99) < 3 / 255 and (diff > 0.25).mean() < 0.002, (np.quantile(diff, 0.99), (diff > 0.25).mean())
