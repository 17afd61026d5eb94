"""Progress bars of long work: shown on request, silent without tqdm, never changing a result."""

import sys

import pytest
import torch

from gbp_torch.progress import progress_bar
from gbp_torch.tasks.flow import HandsetFlow
from gbp_torch.tasks.stereo.handset import HandsetStereo


def test_bar_only_when_enabled_and_tqdm_present(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    for enabled, total in ((False, 5), (True, 1)):
        bar = progress_bar(total, "work", "step", enabled)
        bar.update()
        bar.close()
        assert "work" not in capsys.readouterr().err
    bar = progress_bar(3, "work", "step")
    bar.update()
    bar.close()
    assert "work" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed: import fails
    bar = progress_bar(3, "work", "step")
    bar.update()
    bar.close()
    assert "work" not in capsys.readouterr().err


def test_flow_and_stereo_bars_leave_the_results_alone(capsys):
    pytest.importorskip("tqdm")
    g = torch.Generator().manual_seed(0)
    f1 = torch.nn.functional.interpolate(torch.rand(1, 1, 12, 12, generator=g), size=(48, 48), mode="bicubic")
    f2 = torch.roll(f1, 1, dims=-1)
    for model, args, name in ((HandsetFlow(), (f1, f2), "flow"), (HandsetStereo(), (f1, f2, 6), "stereo")):
        with torch.no_grad():
            quiet = model(*args)
            assert name not in capsys.readouterr().err
            model.progress = True
            shown = model(*args)
        assert name in capsys.readouterr().err
        a, b = (quiet.flow, shown.flow) if name == "flow" else (quiet.disparity, shown.disparity)
        assert torch.equal(a, b)
