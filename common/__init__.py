"""Shared ground: errors, atomic files and image reading, Ctrl-C handling.

A leaf: it imports nothing of ours, so blocks/, transforms/, printing/ and capture/ all build on
it without pointing back up at each other.
"""
import os as _os

MAX_IMAGE_PIXELS = 64_000_000  # 64 megapixels: a header claiming more is refused before decoding
# OpenCV reads its own ceiling when cv2 is first imported, and every command imports this package
# before cv2: a decoder we did not check stops there too. 8192 x 8192 (above MAX_IMAGE_PIXELS): the
# largest frame `blocks simulate --size` makes, which its JPEG step decodes again. A user's own wins.
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(8192 * 8192))
