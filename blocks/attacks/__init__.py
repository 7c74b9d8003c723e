"""Attacks. Each module keeps its own settings dataclass and a function over tensors."""
from blocks.attacks.onepixel import OnePixelConfig, OnePixelResult, one_pixel_attack, prepare_images
