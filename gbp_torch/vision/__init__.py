"""Image geometry for stereo and optical flow: pure functions of tensors, torch only.

- :mod:`.warp`: backward warping by flow or disparity, with validity masks.
- :mod:`.pyramid`: anti-aliased Gaussian pyramids; resizing flow / disparity
  fields with their values scaled.
- :mod:`.gradients`: 5-point image derivatives.
- :mod:`.constancy`: brightness / gradient constancy linearised into the
  per-pixel ``(z, a)`` data terms of :func:`gbp_torch.grid.solve`.
- :mod:`.median`: plain and guide-weighted median filters of flow / disparity fields.
- :mod:`.windows`: sliding-window sums by shifted adds (box and separable filters).
- :mod:`.census`: census transforms and their Hamming distances (popcounts).
- :mod:`.luma`: the BT.601 gray level of colour images.
- :mod:`.exposure`: one image's exposure matched to another's (a gain and a bias per channel, where they differ).

Conventions: images (B, C, H, W); flow (B, 2, H, W) in pixels, u to the right,
v down, pixel centres at integer coordinates; disparity (B, 1, H, W) or
(B, H, W), left(x) matching right(x - d).
"""

from ._checks import as_unit_float
from .constancy import DataTerm, disparity_data_term, flow_data_term
from .exposure import match_exposure
from .gradients import image_gradients
from .luma import luma
from .median import colour_guide, field_slopes, median_filter, weighted_median_filter
from .pyramid import gaussian_blur, gaussian_pyramid, pyramid_sizes, upsample_disparity, upsample_flow
from .warp import Warped, pixel_grid, warp, warp_disparity

__all__ = ["warp", "warp_disparity", "pixel_grid", "Warped", "gaussian_pyramid", "pyramid_sizes", "gaussian_blur",
           "upsample_flow", "upsample_disparity", "image_gradients", "flow_data_term", "disparity_data_term",
           "DataTerm", "median_filter", "weighted_median_filter", "field_slopes", "colour_guide", "as_unit_float",
           "match_exposure", "luma"]
