"""The engine on CUDA gives the CPU's answer (skipped without a GPU)."""

import pytest
import torch

from gbp_torch import DifferenceFactors, FactorGraph, NonlinearFactors, PriorFactors


def _graph(device: str) -> tuple[FactorGraph, object]:
    gen = torch.Generator().manual_seed(0)
    g = FactorGraph()
    x = g.add_variables(30, 2, init=torch.randn(30, 2, generator=gen, dtype=torch.float64).to(device))
    g.add(PriorFactors(x.all(), torch.randn(30, 2, generator=gen, dtype=torch.float64).to(device), 0.5))
    g.add(DifferenceFactors(x[:-1], x[1:], torch.randn(29, 2, generator=gen, dtype=torch.float64).to(device), 3.0,
                            robust="huber", k=torch.full((29,), 1.5, dtype=torch.float64, device=device)))
    anchors = torch.randn(30, 2, generator=gen, dtype=torch.float64).to(device)
    ranges = torch.rand(30, 1, generator=gen, dtype=torch.float64).to(device) + 1.0
    g.add(NonlinearFactors(x.all(), lambda v, a: (v - a).norm().reshape(1), ranges, 2.0, params=[anchors]))
    return g, x


@pytest.mark.cuda
def test_engine_on_cuda_matches_cpu():
    g_cpu, x_cpu = _graph("cpu")
    g_gpu, x_gpu = _graph("cuda")
    r_cpu = g_cpu.solve(iters=60, damping=0.2)
    r_gpu = g_gpu.solve(iters=60, damping=0.2)
    assert r_gpu.mean(x_gpu).device.type == "cuda"
    torch.testing.assert_close(r_gpu.mean(x_gpu).cpu(), r_cpu.mean(x_cpu), atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(r_gpu.cov(x_gpu).cpu(), r_cpu.cov(x_cpu), atol=1e-9, rtol=1e-9)
