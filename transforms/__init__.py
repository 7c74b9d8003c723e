"""Random transforms that stand between a patch and the classifier: placement, light, camera."""
from transforms.eot import EOT, PRESETS, preset, random_views
from transforms.photometric import Photometric, apply_photometric, frame_effects, texture_effects
from transforms.placement import Placement, place, random_backgrounds, sample_homographies

__all__ = ["EOT", "PRESETS", "preset", "random_views", "Photometric", "apply_photometric", "frame_effects", "texture_effects",
           "Placement", "place", "random_backgrounds", "sample_homographies"]
