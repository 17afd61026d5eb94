"""Gradient-domain editing with the grid solver's edge offsets: paste a patch of one image into another seamlessly.

Inside the pasted region the result takes the source's differences along every edge (``offsets``), outside it the
target's values (a strong data term); the solve spreads the mismatch at the region's border smoothly over the
region (Poisson image editing, Perez, Gangnet and Blake 2003), so no seam shows:

    python examples/poisson_blend.py [-o blend.png]

It pastes the house of a shipped Set12 sample onto the cameraman's sky and writes the naive copy and the seamless
blend side by side.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from gbp_torch.grid import MULTIGRID, solve
from gbp_torch.io import read_gray, write_image
from gbp_torch.paths import shipped_dir

#: the pasted region of the example (rows, columns of the 256 x 256 cameraman: sky only)
REGION = (slice(10, 94), slice(152, 248))


def poisson_blend(target: torch.Tensor, source: torch.Tensor, region: torch.Tensor, pin: float = 1e4,
                  iters: int = 20) -> torch.Tensor:
    """``target`` with ``source``'s differences inside ``region``; all (B, H, W), region bool. Edges that touch the
    region take the source's differences, the others the target's; pixels outside it are held to the target by a
    data precision ``pin`` (0 inside). ``iters`` multigrid FCG steps (a fixed count: a relative-residual tolerance
    would be dominated by the pinned pixels' large right-hand side)."""
    inside = region.to(target.dtype)
    touch_h = torch.maximum(inside[..., :, 1:], inside[..., :, :-1])
    touch_v = torch.maximum(inside[..., 1:, :], inside[..., :-1, :])
    guide_h = torch.lerp(target.diff(dim=-1), source.diff(dim=-1), touch_h)
    guide_v = torch.lerp(target.diff(dim=-2), source.diff(dim=-2), touch_v)
    a = pin * (1 - inside)
    return solve(target, a, 1.0, offsets=(guide_h, guide_v), iters=iters, config=MULTIGRID).mean


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default="poisson_blend.png")
    args = ap.parse_args(argv)
    samples = shipped_dir("samples") / "denoise"
    target = read_gray(samples / "set12_01_cameraman.png").float()[None]  # (1, 256, 256)
    house = read_gray(samples / "set12_02_house.png").float()[None]
    source = torch.zeros_like(target)
    source[..., 6:98, 148:252] = house[..., 70:162, 80:184]  # a window and wall of the house, moved onto the sky
    region = torch.zeros_like(target, dtype=torch.bool)
    region[..., REGION[0], REGION[1]] = True
    copy = torch.where(region, source, target)
    blend = poisson_blend(target, source, region).clamp(0, 1)
    side_by_side = torch.cat([copy, F.pad(blend, (4, 0), value=1.0)], -1)
    write_image(args.output, side_by_side)
    print(f"wrote {args.output}: the naive copy (left) and the seamless blend (right)")


if __name__ == "__main__":
    main()
