"""Colour denoising with a gray denoiser: in an opponent colour space whose channels' noise stays independent.

White Gaussian noise of std sigma in each of R, G, B becomes, after the transform

    Y  = (R + G + B) / 3                 (noise std sigma / sqrt(3))
    C1 = (R - B) / 2 + 1/2               (noise std sigma / 2)
    C2 = (R - 2 G + B) / 4 + 1/2         (noise std sigma sqrt(6) / 4)

(orthogonal rows, so the three noises stay independent), a luminance channel that carries most of the
image's detail at a lower noise level and two smooth chroma channels that denoise well. Each channel goes
through the gray model with its own noise level, then back to RGB. On the 12 colour photos of the data root
(noisy inputs rounded to 8 bits) the default model gains 1.1-1.3 dB over denoising R, G and B separately
at sigma 15 / 25 / 50 (``benchmarks/bench_colour_denoise.py``). Blind, the noise level is measured on Y, C1
and C2 themselves: noise that is the same in R, G and B (as demosaicking and JPEG leave much of it) lies all in
Y, and estimates made on R, G and B and carried over would put a third of its variance there (on the
RubberWhale crop at sigma 25: 32.6 dB against 24.0 dB). Only for sigma-conditioned Gaussian models:
a model trained for one noise level, or for impulse noise (which the transform would spread over all three
channels), runs on R, G and B separately.

Clipped input (every value in [0, 1] and some at exactly 0 or 1, as in 8-bit files): a sigma-conditioned model
estimates each channel's clipped mean, which :func:`~.clipping.unclip` maps back to the clean value, with the
variance scaled to match (gray images too).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...io.image import SAMPLE_BITS
from ...vision import as_unit_float
from .clipping import is_clipped, unclip, unclip_
from .noise_level import estimate_noise_sigma
from .output import DenoiseOutput, as_denoise_output

#: rows: Y, C1, C2 in terms of (R, G, B); orthogonal rows
OPPONENT = ((1 / 3, 1 / 3, 1 / 3), (1 / 2, 0.0, -1 / 2), (1 / 4, -1 / 2, 1 / 4))
#: added to the chroma channels so that they lie in [0, 1] like the gray images the models were trained on
OPPONENT_OFFSET = (0.0, 0.5, 0.5)


def _matrix(like: Tensor) -> Tensor:
    return torch.tensor(OPPONENT, dtype=like.dtype, device=like.device)


def _offset(like: Tensor) -> Tensor:
    return torch.tensor(OPPONENT_OFFSET, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def to_opponent(rgb: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) Y, C1, C2, each in [0, 1]."""
    return torch.einsum("ij,bjhw->bihw", _matrix(rgb), rgb) + _offset(rgb)


def from_opponent(opp: Tensor) -> Tensor:
    """Inverse of :func:`to_opponent`."""
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_matrix(opp)), opp - _offset(opp))


def opponent_sigma(sigma_rgb: Tensor) -> Tensor:
    """Noise stds (B, 3) of Y, C1, C2 for independent noise of stds ``sigma_rgb`` (B, 3) (or (B,): one for all
    three) in R, G and B."""
    s = sigma_rgb.unsqueeze(1).expand(-1, 3) if sigma_rgb.dim() == 1 else sigma_rgb
    return (s.square() @ _matrix(s).square().T).sqrt()


def opponent_variance_to_rgb(var: Tensor) -> Tensor:
    """Per-pixel variances (B, 3, H, W) of independent Y, C1, C2 estimates -> those of R, G, B."""
    inv2 = torch.linalg.inv(_matrix(var)).square()
    return torch.einsum("ij,bjhw->bihw", inv2, var)


class ColourDenoiser(nn.Module):
    """A gray denoiser ``(B, 1, H, W), sigma (B,) | None -> DenoiseOutput`` applied to colour images.

    Args:
        gray: the gray denoiser. With ``gray.sigma_input`` (a sigma-conditioned Gaussian model) RGB images
            are denoised in the opponent space (module docstring); otherwise channel by channel.

    Forward: ``noisy`` (B, C, H, W) in [0, 1] (C = 1 or 3; other C channel by channel) and one of
    ``sigma``: the noise std of each of R, G and B on the 0-1 scale (a number, (B,) or (B, C)), or
    ``channel_sigma`` (B, C): the stds of the channels given to ``gray`` (:meth:`channel_names`), or neither
    (blind: :meth:`estimate_sigma`, measured on those channels, so noise correlated across R, G and B, as
    demosaicking leaves it, gets its true luminance level) -> :class:`~.output.DenoiseOutput` with mean and var
    (B, C, H, W). One channel goes through ``gray`` at a time (the memory of one gray image). For clipped input
    (:func:`~.clipping.is_clipped`) a sigma-conditioned model's output is unclipped (:func:`~.clipping.unclip`).
    """

    def __init__(self, gray: nn.Module):
        super().__init__()
        self.gray = gray

    @property
    def opponent(self) -> bool:
        """Whether RGB images go through the opponent space."""
        return bool(getattr(self.gray, "sigma_input", False))

    def forward(self, noisy: Tensor, sigma: Tensor | float | None = None, *,
                channel_sigma: Tensor | None = None) -> DenoiseOutput:
        if not isinstance(noisy, Tensor) or noisy.dim() != 4:
            raise ValueError(f"noisy must be a (B, C, H, W) tensor, got "
                             f"{tuple(noisy.shape) if isinstance(noisy, Tensor) else type(noisy).__name__}")
        if sigma is not None and channel_sigma is not None:
            raise ValueError("give sigma (of R, G, B) or channel_sigma (of the channels denoised), not both")
        opponent = noisy.shape[1] == 3 and self.opponent
        own = noisy.dtype in SAMPLE_BITS  # integer samples: the float image is this method's own
        clipped = is_clipped(noisy)  # on integer samples before the float copy (the same answer, a quarter the reads)
        noisy = as_unit_float(noisy, "noisy")
        channels = to_opponent(noisy) if opponent else noisy
        if channel_sigma is not None:
            given = self._sigmas(noisy, channel_sigma, "channel_sigma")
        elif sigma is not None:
            given = self._sigmas(noisy, sigma, "sigma")
            given = opponent_sigma(given) if opponent else given
        else:  # blind: a sigma-conditioned model gets the channels' own estimates, others their own blind mode
            given = self._estimate(channels) if self.opponent else None
        del noisy  # big images: only the channels (and the caller's samples) stay beside the gray model
        # without autograd each channel's estimate replaces its input where that is this method's tensor
        in_place = (opponent or own) and not torch.is_grad_enabled()
        mean, var = self._channels(channels, given, in_place)
        del channels
        if opponent:
            mean = from_opponent(mean)
            var = None if var is None else opponent_variance_to_rgb(var)
        if given is not None and self.opponent:
            # clipped input: the model estimated each channel's clipped mean; the noise stds of R, G, B come
            # from the channels' (independent in the opponent space, so shared noise counts fully in each)
            noise = opponent_variance_to_rgb(given.square()[..., None, None])[..., 0, 0].sqrt() if opponent else given
            fix = unclip if torch.is_grad_enabled() else unclip_  # in place on this method's tensors, unless
            mean, var = fix(mean, var, noise, clipped)  # autograd needs them
        return DenoiseOutput(mean, var)

    def channel_names(self, channels: int) -> tuple[str, ...]:
        """Names of the channels that go through ``gray`` for an image of ``channels`` channels."""
        if channels == 3:
            return ("Y", "C1", "C2") if self.opponent else ("R", "G", "B")
        return ("gray",) if channels == 1 else tuple(f"channel {k}" for k in range(channels))

    def estimate_sigma(self, noisy: Tensor) -> Tensor:
        """Blind noise stds (B, C) of the channels that go through ``gray`` (:meth:`channel_names`: Y, C1, C2 for
        the opponent space), by :func:`~.noise_level.estimate_noise_sigma`, the sigma-conditioned models' own
        estimator."""
        noisy = as_unit_float(noisy, "noisy")
        return self._estimate(to_opponent(noisy) if noisy.shape[1] == 3 and self.opponent else noisy)

    @staticmethod
    def _estimate(channels: Tensor) -> Tensor:
        bsz, c = channels.shape[:2]
        return estimate_noise_sigma(channels.reshape(bsz * c, 1, *channels.shape[-2:])).view(bsz, c)

    def _sigmas(self, noisy: Tensor, sigma, name: str) -> Tensor:
        """``sigma`` (a number, (B,) or (B, C)) as checked (B, C) stds."""
        bsz, c = noisy.shape[:2]
        s = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device)
        if s.numel() == 1:
            s = s.reshape(1).expand(bsz)
        if s.shape not in ((bsz,), (bsz, c)):
            raise ValueError(f"{name} must be a number, B = {bsz} or (B, C) = ({bsz}, {c}) values, got shape "
                             f"{tuple(s.shape)}")
        if not bool(((s >= 0) & torch.isfinite(s)).all()):
            raise ValueError(f"{name} must be finite and >= 0 (noise stds on the 0-1 scale), got {s.tolist()}")
        return s.view(bsz, 1).expand(bsz, c) if s.dim() == 1 else s

    def _channels(self, images: Tensor, sigma: Tensor | None, in_place: bool = False) -> tuple[Tensor, Tensor | None]:
        """Each channel of ``images`` (B, C, H, W) through the gray model with its sigma (B, C) or None: mean and
        variance (B, C, H, W) (None without variances), written channel by channel (the means into ``images``
        itself with ``in_place``: a channel is not read again once denoised)."""
        mean = images if in_place else None
        var = None
        for k in range(images.shape[1]):
            out = as_denoise_output(self.gray(images[:, k:k + 1], None if sigma is None else sigma[:, k]))
            if k == 0:
                mean = out.mean.new_empty(images.shape) if mean is None else mean
                var = None if out.var is None else out.var.new_empty(images.shape)
            mean[:, k:k + 1] = out.mean
            if var is not None and out.var is None:  # a channel without variance: none for the image
                var = None
            elif var is not None:
                var[:, k:k + 1] = out.var
            del out
        return mean, var
