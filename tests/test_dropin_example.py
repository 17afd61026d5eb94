"""The drop-in example: a CNN + MultigridGBP (implicit backward) trains end to end and beats the CNN alone."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from refine_dense_map import Refined, evaluate, train  # noqa: E402


def test_gbp_refinement_trains_and_beats_the_backbone_alone():
    import torch

    steps, size = 100, 24
    torch.manual_seed(0)  # the networks' initial weights: not whatever earlier tests left in the global generator
    gbp = Refined(use_gbp=True, backward="implicit")
    untrained = evaluate(gbp, size=size)
    train(gbp, steps, size=size)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gbp.parameters())
    trained = evaluate(gbp, size=size)
    torch.manual_seed(0)
    backbone = Refined(use_gbp=False)
    train(backbone, steps, size=size)
    assert trained < 0.8 * untrained  # end-to-end training through GBP helps
    assert trained < 0.8 * evaluate(backbone, size=size)  # and beats the same network without GBP


def test_disparity_refiner_example_trains_end_to_end_and_beats_its_input():
    import torch
    from refine_disparity import evaluate, train

    from gbp_torch.refine import GridRefiner

    torch.manual_seed(0)
    refiner = GridRefiner(dim=1, feature_channels=1, width=16, depth=4, data_scale=1.0, smooth_scale=4.0)
    _, untrained, _ = evaluate(refiner, size=32)
    train(refiner, steps=40, size=32)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in refiner.parameters())
    initial, refined, cover = evaluate(refiner, size=32)
    assert refined < 0.8 * initial, (initial, refined)  # better than the network it refines
    assert refined < 0.75 * untrained, (untrained, refined)  # and it is the training that does it
    assert 0.5 < cover <= 1.0


def test_flow_refiner_example_trains_end_to_end_and_beats_its_input():
    import torch
    from refine_flow import evaluate, pool, train

    from gbp_torch.refine import GridRefiner

    torch.manual_seed(0)
    train_pairs, test_pairs = pool(16, 40, seed=0), pool(12, 40, seed=1)
    refiner = GridRefiner(dim=2, feature_channels=2, width=16, depth=4, precision="full", data_scale=4.0,
                          smooth_scale=16.0)
    _, untrained, _ = evaluate(refiner, test_pairs)
    train(refiner, train_pairs, steps=40)
    initial, refined, cover = evaluate(refiner, test_pairs)
    assert refined < 0.9 * initial, (initial, refined)  # better than the flow it refines
    assert refined < 0.85 * untrained, (untrained, refined)  # thanks to the training
    assert 0.3 < cover <= 1.0
