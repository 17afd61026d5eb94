"""Denoising evaluation conditions: a test set and a noise (Gaussian sigma or salt-and-pepper rate)."""

from __future__ import annotations

from dataclasses import dataclass

from .datasets import NoiseSpec

KINDS = ("gaussian", "saltpepper")


@dataclass(frozen=True)
class Condition:
    """One evaluation setting: a dataset and a noise (``level``: sigma on 0-255, or a rate in %)."""

    dataset: str
    kind: str  # "gaussian" | "saltpepper"
    level: float

    @property
    def label(self) -> str:
        return f"{self.dataset} " + (f"sigma {self.level:g}" if self.kind == "gaussian" else f"s&p {self.level:g}%")

    def noise(self, sp_sigma: float) -> NoiseSpec:
        if self.kind == "gaussian":
            return NoiseSpec("gaussian", sigma=self.level)
        return NoiseSpec("saltpepper", sigma=sp_sigma, rate=self.level / 100.0)


def default_conditions() -> list[Condition]:
    """BSD68 and Set12 at sigma 15/25/50, BSD68 salt-and-pepper at 10/20/30 %."""
    gauss = [Condition(d, "gaussian", s) for d in ("bsd68", "set12") for s in (15.0, 25.0, 50.0)]
    return gauss + [Condition("bsd68", "saltpepper", r) for r in (10.0, 20.0, 30.0)]


def parse_conditions(text: str) -> list[Condition]:
    """``SET:KIND:LEVEL,...`` (e.g. ``bsd68:gaussian:25,bsd68:saltpepper:20``) -> conditions."""
    conditions = []
    for spec in text.split(","):
        parts = spec.split(":")
        if len(parts) != 3 or parts[1] not in KINDS:
            raise ValueError(f"--conditions wants SET:gaussian|saltpepper:LEVEL items, got {spec!r}")
        conditions.append(Condition(parts[0], parts[1], float(parts[2])))
    return conditions
