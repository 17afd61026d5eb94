"""The drop-in example: a CNN + MultigridGBP (implicit backward) trains end to end and beats the CNN alone."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from refine_dense_map import Refined, evaluate, train  # noqa: E402


def test_gbp_refinement_trains_and_beats_the_backbone_alone():
    steps, size = 100, 24
    gbp = Refined(use_gbp=True, backward="implicit")
    untrained = evaluate(gbp, size=size)
    train(gbp, steps, size=size)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gbp.parameters())
    trained = evaluate(gbp, size=size)
    backbone = Refined(use_gbp=False)
    train(backbone, steps, size=size)
    assert trained < 0.8 * untrained  # end-to-end training through GBP helps
    assert trained < 0.8 * evaluate(backbone, size=size)  # and beats the same network without GBP
