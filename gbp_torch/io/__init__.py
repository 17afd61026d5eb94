"""Reading and writing images, disparity and flow maps (Pillow, torchvision for 16-bit colour PNGs, numpy).

Images: :func:`read_image` / :func:`read_gray` (float32 in [0, 1]; 8-bit / 255, 16-bit / 65535),
:func:`write_image` (8- or 16-bit PNG, optionally with the alpha channel that :func:`read_alpha` reads).
Float maps: :func:`read_pfm` / :func:`write_pfm`.
Flow: :func:`read_flo` / :func:`write_flo` (Middlebury), :func:`read_kitti_flow` /
:func:`write_kitti_flow` (16-bit PNG), :func:`read_flow` / :func:`write_flow` by extension.
Disparity: :func:`read_disparity` / :func:`write_disparity` by extension (``.pfm``, ``.png`` x256
16-bit, ``.npy``). Colour coding: :func:`write_disparity_color`, :func:`write_std_map`,
:func:`flow_to_color`. Unknown values are NaN throughout.
"""

from .color import (
    colorize,
    finite_quantile,
    flow_to_color,
    turbo,
    write_disparity_color,
    write_flow_color,
    write_std_map,
)
from .dense import (
    DISPARITY_EXTENSIONS,
    FLOW_EXTENSIONS,
    read_disparity,
    read_flow,
    write_disparity,
    write_flow,
)
from .flo import flow_valid, read_flo, read_kitti_flow, write_flo, write_kitti_flow
from .image import encode_png, read_alpha, read_gray, read_image, read_png_raw, read_samples, write_image, write_png16
from .pfm import read_pfm, write_pfm

__all__ = [
    "DISPARITY_EXTENSIONS", "FLOW_EXTENSIONS", "colorize", "encode_png", "finite_quantile", "flow_to_color",
    "flow_valid", "read_alpha", "read_disparity", "read_flo", "read_flow", "read_gray", "read_image",
    "read_kitti_flow", "read_pfm", "read_png_raw", "read_samples", "turbo", "write_disparity", "write_disparity_color",
    "write_flo", "write_flow", "write_flow_color", "write_image", "write_kitti_flow", "write_pfm", "write_png16",
    "write_std_map",
]
