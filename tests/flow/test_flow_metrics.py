"""Flow metrics against plain numpy computations of the published definitions."""

import numpy as np
import pytest
import torch
from helpers import sparsification_loop

from gbp_torch.tasks.flow.metrics import (
    angular_error,
    endpoint_error,
    epe,
    fl_all,
    known_flow_mask,
    mean_angular_error,
    std_coverage,
    std_sparsification,
)


@pytest.fixture
def fields():
    g = np.random.default_rng(0)
    gt = g.normal(0, 4, (2, 2, 9, 11))
    flow = gt + g.normal(0, 2, gt.shape)
    gt[0, :, 0, :3] = 1.67e9  # Middlebury's unknown sentinel
    mask = g.random((2, 9, 11)) > 0.3
    return flow, gt, mask


def _np_known(gt):
    return (np.abs(gt) <= 1e9).all(1)


def test_epe_and_angular_error_match_numpy(fields):
    flow, gt, mask = fields
    known = _np_known(gt) & mask
    ft, gtt, mt = (torch.from_numpy(x) for x in (flow, gt, mask))
    for b in range(2):
        u, v, ug, vg = flow[b, 0], flow[b, 1], gt[b, 0], gt[b, 1]
        e = np.hypot(u - ug, v - vg)[known[b]]
        cos = (u * ug + v * vg + 1) / np.sqrt((u**2 + v**2 + 1) * (ug**2 + vg**2 + 1))
        ae = np.degrees(np.arccos(np.clip(cos[known[b]], -1, 1)))
        assert epe(ft, gtt, mt)[b].item() == pytest.approx(e.mean(), rel=1e-12)
        assert mean_angular_error(ft, gtt, mt)[b].item() == pytest.approx(ae.mean(), rel=1e-10)
    assert torch.allclose(endpoint_error(ft, ft), torch.zeros(2, 9, 11, dtype=torch.float64))
    assert torch.allclose(angular_error(ft, ft), torch.zeros(2, 9, 11, dtype=torch.float64), atol=1e-5)


def test_fl_all_matches_numpy(fields):
    flow, gt, mask = fields
    known = _np_known(gt) & mask
    ft, gtt, mt = (torch.from_numpy(x) for x in (flow, gt, mask))
    for b in range(2):
        err = np.hypot(*(flow[b] - gt[b]))
        mag = np.hypot(*gt[b])
        bad = (err > 3) & (err > 0.05 * mag)
        assert fl_all(ft, gtt, mt)[b].item() == pytest.approx(bad[known[b]].mean(), rel=1e-12)


def test_coverage_and_masks(fields):
    flow, gt, mask = fields
    g = np.random.default_rng(1)
    std = g.uniform(0.5, 3, flow.shape)
    known = _np_known(gt) & mask
    got = std_coverage(*(torch.from_numpy(x) for x in (flow, std, gt, mask)))
    for b in range(2):
        inside = (np.abs(flow[b] - gt[b]) < 1.96 * std[b])[:, known[b]]
        assert got[b].item() == pytest.approx(inside.mean(), rel=1e-12)
    assert torch.equal(known_flow_mask(torch.from_numpy(gt)), torch.from_numpy(_np_known(gt)))
    # a (B, 1, H, W) mask is accepted as well
    m4 = torch.from_numpy(mask)[:, None]
    assert torch.equal(epe(torch.from_numpy(flow), torch.from_numpy(gt), m4),
                       epe(torch.from_numpy(flow), torch.from_numpy(gt), m4[:, 0]))


def test_std_sparsification_ranks_end_point_errors(fields):
    """Against the numpy definition on the known pixels in the mask (EPE ranked by std_u^2 + std_v^2); a std that
    grows with the EPE scores 0."""
    flow, gt, mask = fields
    std = np.random.default_rng(2).uniform(0.5, 3, flow.shape)
    known = _np_known(gt) & mask
    got = std_sparsification(*(torch.from_numpy(x) for x in (flow, std, gt, mask)))
    for b in range(2):
        err = np.hypot(*(flow[b] - gt[b]))[known[b]]
        assert got[b].item() == pytest.approx(sparsification_loop(err, (std[b] ** 2).sum(0)[known[b]], 10), rel=1e-9)
    err = torch.from_numpy(np.hypot(*(flow - gt).transpose(1, 0, 2, 3)))
    ideal = torch.stack((err, err), 1) + 1e-3
    perfect = std_sparsification(torch.from_numpy(flow), ideal, torch.from_numpy(gt), torch.from_numpy(mask))
    assert torch.allclose(perfect, torch.zeros(2, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="std must"):
        std_sparsification(torch.from_numpy(flow), torch.ones(2, 2, 3, 3), torch.from_numpy(gt))


def test_bad_shapes_raise():
    f = torch.zeros(1, 2, 4, 5)
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        epe(torch.zeros(1, 3, 4, 5), f)
    with pytest.raises(ValueError, match="shape of flow"):
        epe(f, torch.zeros(1, 2, 4, 6))
    with pytest.raises(ValueError, match=r"mask must be"):
        fl_all(f, f, torch.ones(1, 4, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="std must"):
        std_coverage(f, torch.ones(1, 2, 4, 4), f)
