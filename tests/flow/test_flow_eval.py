"""The flow evaluation front end on a tiny Middlebury-layout data root made here, and the readers' errors."""

import pytest
import torch

from gbp_torch.io import write_flo, write_image
from gbp_torch.tasks.flow import datasets
from train.flow import evaluate


@pytest.fixture
def root(tmp_path):
    g = torch.Generator().manual_seed(0)
    scene = tmp_path / "flow" / "middlebury" / "Tiny"
    scene.mkdir(parents=True)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 14, generator=g), size=(40, 48), mode="bicubic")
    frame1 = base.clamp(0, 1)[0]
    frame2 = torch.roll(frame1, shifts=(1, 2), dims=(1, 2))  # flow (2, 1) away from the wrapped border
    flow = torch.zeros(2, 40, 48)
    flow[0], flow[1] = 2.0, 1.0
    flow[:, :3, :3] = float("nan")  # unknown
    write_image(scene / "frame10.png", frame1)
    write_image(scene / "frame11.png", frame2)
    write_flo(scene / "flow10.flo", flow)
    return tmp_path


def test_reader_and_front_end(root, capsys):
    (sample,) = datasets.middlebury(root)
    assert sample.name == "Tiny" and sample.frame1.shape == (3, 40, 48)
    assert not sample.valid[:3, :3].any() and sample.valid.sum() == 40 * 48 - 9
    rows = evaluate.run(["--datasets", "middlebury", "--root", str(root), "--no-baselines"])
    printed = capsys.readouterr().out
    assert "Tiny" in printed and "mean" in printed and "gbp-handset EPE" in printed
    scores = rows[0]["scores"]["gbp-handset"]
    assert scores["epe"] < 0.5 and 0 <= scores["cov"] <= 1


def test_missing_dataset_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="flow/sintel"):
        datasets.sintel("clean", tmp_path)
    with pytest.raises(FileNotFoundError, match="flow/kitti"):
        datasets.kitti(tmp_path)
    with pytest.raises(ValueError, match="clean' or 'final"):
        datasets.sintel("albedo", tmp_path)


def test_registered_in_train_eval():
    from train.eval import TASKS

    assert TASKS["flow"] == "train.flow.evaluate"
