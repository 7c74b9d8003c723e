"""Random transforms that stand between a patch and the classifier.

- placement:   where the patch lands in a scene (scale, rotation, position, perspective)
- photometric: light, lens, sensor and codec effects, differentiable
- params:      views as data: the Params batch and the ViewModel protocol (sample, then render)
- eot:         the presets (none, digital, print, webcam, camera, camera+scene, held), each a view model,
               used to train and judge patches
- colormap:    measured printer-to-camera colour maps
- rectified:   the rectified, camera-resolution block views `blocks capture --sheet` classifies
- camera:      the virtual camera that films printed sheets for `blocks simulate`
"""
from transforms.colormap import ColorMap, fit_colormap
from transforms.eot import PRESETS, preset, random_views
from transforms.params import ViewModel
from transforms.photometric import Photometric, frame_effects, texture_effects
from transforms.rectified import CameraViews, rectified_views
from transforms.placement import Placement, place, random_backgrounds, sample_homographies

__all__ = ["ViewModel", "PRESETS", "preset", "random_views", "Photometric",
           "frame_effects", "texture_effects", "Placement", "place", "random_backgrounds",
           "sample_homographies", "ColorMap", "fit_colormap", "CameraViews", "rectified_views"]
