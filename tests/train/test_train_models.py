import pytest
import torch

from gbp_torch.tasks.denoise.cnn import DenoiseCNN
from gbp_torch.tasks.denoise.median import MedianDenoiser
from gbp_torch.tasks.denoise.output import DenoiseOutput, as_denoise_output


def test_cnn_default_parameter_count_and_residual_shape():
    net = DenoiseCNN()
    assert sum(p.numel() for p in net.parameters()) == 125_617
    x = torch.rand(2, 1, 20, 17)
    assert net(x).shape == (2, 1, 20, 17)


def test_cnn_variance_head_and_sigma_input():
    net = DenoiseCNN(depth=3, width=4, sigma_input=True, predict_var=True)
    out = net(torch.rand(2, 1, 8, 8), torch.tensor([0.1, 0.2]))
    assert isinstance(out, DenoiseOutput) and out.var.shape == (2, 1, 8, 8) and bool((out.var > 0).all())
    with pytest.raises(ValueError, match="pass sigma"):
        net(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        net(torch.rand(1, 8, 8))


def test_as_denoise_output_accepts_tensors_and_mean_var_objects():
    t = torch.zeros(1, 1, 2, 2)
    assert as_denoise_output(t).mean is t and as_denoise_output(t).var is None

    class R:
        mean, var = t, t + 1

    assert as_denoise_output(R()).var[0, 0, 0, 0] == 1
    with pytest.raises(TypeError):
        as_denoise_output(3.0)


def test_median_baseline_matches_scipy():
    """The median3 baseline is a 3x3 median with replicated borders (scipy's "nearest")."""
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(2, 1, 9, 7, dtype=torch.float64)
    ref = torch.from_numpy(ndimage.median_filter(x[1, 0].numpy(), size=3, mode="nearest"))
    torch.testing.assert_close(MedianDenoiser(3)(x)[1, 0], ref)
