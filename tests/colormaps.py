"""Colour maps the tests build by hand (the tool only fits them: transforms.colormap)."""
import torch

from transforms.colormap import KNOTS, ColorMap


def colormap_from_matrix(matrix, offset=(0.0, 0.0, 0.0), gamma=(1.0, 1.0, 1.0), knots: int = KNOTS) -> ColorMap:
    """A known printer-camera distortion for the tests: seen = matrix @ (sent ** gamma) + offset,
    with the curves sampled at the knots."""
    m = torch.as_tensor(matrix, dtype=torch.float32).view(3, 3)
    grid = torch.linspace(0, 1, knots)
    curves = torch.stack([grid ** float(g) for g in gamma])  # (3, K)
    return ColorMap(m[:, :, None] * curves[None], torch.as_tensor(offset, dtype=torch.float32))


def write_colormap(cmap: ColorMap, path) -> None:
    cmap.to_record().write(path)
