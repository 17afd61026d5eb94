"""Record the shipped models' outputs on a fixed input (run once, before a refactor).

    python tests/data/record_pretrained_reference.py                              # every shipped denoiser
    python tests/data/record_pretrained_reference.py gbp_denoiser_nonlocal        # add / replace these only

Writes ``tests/data/pretrained_reference.pt``: per model, the mean and variance on a
48x40 crop of a shipped sample with seeded noise (sigma 25), with the true sigma and
blind. ``tests/test_pretrained_reference.py`` checks that every later version of the
code gives the same outputs to 1e-5.
"""

import sys
from pathlib import Path

import torch

from gbp_torch.io import read_gray
from gbp_torch.paths import samples_dir
from gbp_torch.pretrained import load, names_of

OUT = Path(__file__).with_name("pretrained_reference.pt")


def reference_input() -> tuple[torch.Tensor, torch.Tensor]:
    clean = read_gray(samples_dir() / "denoise" / "set12_02_house.png")[100:148, 60:100].double()
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(123), dtype=torch.float64)
    noisy = (clean + 25 / 255 * noise).float()[None, None]
    return noisy, torch.tensor([25 / 255])


def main(names: list[str]) -> None:
    torch.set_num_threads(1)
    noisy, sigma = reference_input()
    out = {"noisy": noisy, "sigma": sigma, "models": {}}
    if names:  # keep the other models' records (made by earlier code) as they are
        out = torch.load(OUT, weights_only=True)
    denoisers = names_of("denoise")
    for name in names or denoisers:
        model = load(name)
        rec = {}
        with torch.no_grad():
            for key, s in (("known", sigma), ("blind", None)):
                res = model(noisy, s)
                rec[key + "_mean"] = res.mean.clone()
                rec[key + "_var"] = None if getattr(res, "var", None) is None else res.var.clone()
        out["models"][name] = rec
    torch.save(out, OUT)
    print(f"wrote {OUT}: {sorted(out['models'])}")


if __name__ == "__main__":
    main(sys.argv[1:])
