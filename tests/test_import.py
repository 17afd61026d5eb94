"""`import gbp_torch` pulls in torch only: no hydra, lightning or wandb (checked in a fresh interpreter)."""

import json
import subprocess
import sys

HEAVY = ("hydra", "lightning", "pytorch_lightning", "wandb", "omegaconf")


def _modules_after(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_does_not_pull_heavy_dependencies():
    mods = _modules_after("import gbp_torch\nassert gbp_torch.FactorGraph and gbp_torch.__version__")
    assert "gbp_torch" in mods and "torch" in mods
    leaked = [m for m in mods if m.split(".")[0] in HEAVY]
    assert leaked == [], f"import gbp_torch imported {leaked}"


def test_public_api_is_exported():
    import gbp_torch

    for name in gbp_torch.__all__:
        assert hasattr(gbp_torch, name), name
    assert {"FactorGraph", "LinearFactors", "NonlinearFactors", "Gaussian", "RobustKernel"} <= set(gbp_torch.__all__)
