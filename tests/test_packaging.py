"""A regular (not editable) install carries the shipped weights and samples: built as a wheel, installed into a
folder of its own and imported from elsewhere, the pretrained API and the CLI work without the repository."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, cwd=out)
    (path,) = out.glob("gbp_torch-*.whl")
    return path


def test_the_wheel_holds_every_manifest_checkpoint_and_the_samples(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((REPO / "checkpoints" / "MANIFEST").read_text())
    assert "gbp_torch/shipped/checkpoints/MANIFEST" in names
    for entry in manifest.values():
        assert f"gbp_torch/shipped/checkpoints/{entry['file']}" in names
    samples = {p.relative_to(REPO).as_posix() for p in (REPO / "samples").rglob("*") if p.is_file()}
    assert samples and {f"gbp_torch/shipped/{s}" for s in samples} <= names
    # only the library: the repository's training tools would install a top-level package named "train"
    assert {n.split("/")[0] for n in names if not n.startswith("gbp_torch-")} == {"gbp_torch"}


def test_an_installed_wheel_loads_the_default_models_away_from_the_repository(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", str(wheel), "--no-deps", "-q", "--target", str(target)],
                   check=True)
    script = (
        "import gbp_torch, torch\n"
        "from gbp_torch import pretrained\n"
        "from gbp_torch.io import read_gray\n"
        "from gbp_torch.paths import samples_dir\n"
        f"assert gbp_torch.__file__.startswith({str(target)!r}), gbp_torch.__file__\n"
        "clean = read_gray(samples_dir() / 'denoise' / 'set12_01_cameraman.png')[None, None, :48, :48]\n"
        "noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))\n"
        "with torch.no_grad():\n"
        "    out = pretrained.denoiser()(noisy, torch.tensor([0.1])).mean\n"
        "assert (out - clean).square().mean() < 0.5 * (noisy - clean).square().mean()\n"
        "pretrained.flow(); pretrained.stereo('gbp_stereo')\n"
        "print('ok')\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
