"""The Middlebury reader and the stereo evaluation front end (one small scene, SGBM skipped)."""

import pytest

from gbp_torch.tasks.stereo.middlebury import load_scene


def _have_data():
    try:
        load_scene("tsukuba")
        return True
    except FileNotFoundError:
        return False


def test_missing_root_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="stereo/middlebury2003"):
        load_scene("tsukuba", tmp_path)


@pytest.mark.skipif(not _have_data(), reason="Middlebury 2003 data not under the data root")
def test_reader_and_eval_front_end(capsys, tmp_path):
    sc = load_scene("tsukuba")
    assert sc.left.shape == (1, 3, 288, 384) and sc.gt.shape == (1, 1, 288, 384) and sc.max_disp == 15
    assert float(sc.gt.max()) == pytest.approx(14.0)
    assert set(sc.masks) == {"nonocc", "all", "disc"}
    assert bool((sc.masks["nonocc"] <= sc.masks["all"]).all())
    from train.eval import run

    rows = run(["--task", "stereo", "--scenes", "tsukuba", "--no-sgbm", "--threads", "1",
                "--json", str(tmp_path / "m.json")])
    assert [r["method"] for r in rows] == ["gbp"]
    assert 0 <= rows[0]["bad1_nonocc"] < 100
    assert "tsukuba" in capsys.readouterr().out
    import json

    metrics = json.loads((tmp_path / "m.json").read_text())  # the MANIFEST's keys: hand-set = "handset"
    assert metrics["middlebury_tsukuba_handset_bad1_nonocc"] == pytest.approx(rows[0]["bad1_nonocc"], abs=1e-4)
    assert metrics["middlebury_tsukuba_handset_coverage"] == pytest.approx(rows[0]["coverage"], abs=1e-4)
