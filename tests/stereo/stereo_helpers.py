"""Independent renderings of simple stereo pairs for the stereo tests."""

import torch
import torch.nn.functional as F


def texture(h: int, w: int, seed: int = 0, blur: float = 1.0) -> torch.Tensor:
    """A random, slightly blurred texture (1, 1, H, W) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(1, 1, h, w, generator=g, dtype=torch.float64)
    r = 3
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / blur) ** 2)
    k = k / k.sum()
    t = F.conv2d(F.pad(t, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    t = F.conv2d(F.pad(t, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return (t - t.min()) / (t.max() - t.min())


def sample_x(tex: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """tex (1, 1, H, W) sampled at continuous columns x (H, W) on each row (bicubic, reflected)."""
    h, w = tex.shape[-2:]
    y = torch.arange(x.shape[0], dtype=torch.float64).view(-1, 1).expand_as(x)
    grid = torch.stack([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], -1)[None]
    return F.grid_sample(tex, grid, mode="bicubic", padding_mode="reflection", align_corners=True)


def planar_pair(h: int, w: int, a: float, b: float, c: float, seed: int = 0):
    """Left = texture, right rendered for the plane d = a + b x + c y: right(x_r) = tex(x_l),
    x_l = (x_r + a + c y) / (1 - b). Returns left, right (1, 1, H, W) float32, gt (1, 1, H, W)."""
    tex = texture(h, w + 40, seed)[..., 20:20 + w]
    x = torch.arange(w, dtype=torch.float64).view(1, -1).expand(h, w)
    y = torch.arange(h, dtype=torch.float64).view(-1, 1).expand(h, w)
    xl = (x + a + c * y) / (1 - b)
    right = sample_x(tex, xl)
    left = sample_x(tex, x)
    gt = (a + b * x + c * y)[None, None]
    return left.float(), right.float(), gt.float()


class RecordingBar:
    """A stand-in for :func:`gbp_torch.progress.progress_bar` that records totals, updates and closing in ``steps``:
    ``monkeypatch.setattr(module, "progress_bar", RecordingBar.factory(steps))``."""

    def __init__(self, steps: list):
        self.steps = steps

    @classmethod
    def factory(cls, steps: list):
        return lambda total, desc, unit, enabled: steps.append(total) or cls(steps)

    def update(self, n=1):
        self.steps.append(n)

    def close(self):
        self.steps.append("closed")
