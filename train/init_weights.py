"""Warm-start a network from another run's weights (fine-tuning, or a wider input layer).

``init_weights=PATH`` in the training config loads the network weights of a Lightning
checkpoint (``.ckpt``, keys ``net.*``) or of an exported model (``checkpoints/*.pt``)
before fitting. Unlike ``ckpt_path`` it restores no optimizer, scheduler or step: a
new run starts from these weights. A convolution that now takes more input channels
(e.g. a sigma map added as a second channel) gets the old weights for the first
channels and zeros for the new ones, so the warm-started network computes exactly
what the old one did until training moves the new weights. Parameters the source lacks
(a branch added to the network, e.g. a zero-initialised ``ContextBranch``) keep their
fresh initialisation and are listed in the log; the source may not hold parameters
the network lacks. ``init_weights_module=NAME`` loads them into that submodule of the
network instead (e.g. ``local``: a shipped local denoiser inside a non-local one); a source that is a whole
model holding that submodule (keys ``NAME.*``, e.g. a shipped learned stereo model's ``matching``) gives just
that submodule's weights. Both may be
lists of the same length, loaded in order (e.g. a model's factor net from one run and its matching
features, ``init_weights_module=[null, matching]``, from another).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


def read_net_state(path: str | Path) -> dict[str, Tensor]:
    """Network state dict from a Lightning checkpoint (``net.`` prefix stripped) or an exported ``.pt``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"init_weights: no file {path}")
    raw = torch.load(path, map_location="cpu", weights_only=False)
    if "state_dict" not in raw:
        raise ValueError(f"init_weights: {path} holds no 'state_dict' (expected a Lightning .ckpt or an exported .pt)")
    state = raw["state_dict"]
    if any(k.startswith("net.") for k in state):
        state = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}
    return state


def load_init_weights(net: nn.Module, path: str | Path, module: str | None = None) -> None:
    """Copy the weights at ``path`` into ``net`` (or its submodule ``module``), in place; see the module docstring."""
    if module:
        try:
            net = net.get_submodule(module)
        except AttributeError as e:
            raise ValueError(f"init_weights_module: the network has no submodule {module!r}") from e
    source = read_net_state(path)
    if module and any(k.startswith(f"{module}.") for k in source):
        source = {k[len(module) + 1:]: v for k, v in source.items() if k.startswith(f"{module}.")}
    target = net.state_dict()
    missing = sorted(set(target) - set(source))
    unexpected = sorted(set(source) - set(target))
    if unexpected or len(missing) == len(target):
        raise ValueError(f"init_weights: {path} does not fit the network: missing {missing}, unexpected {unexpected}")
    if missing:
        log.info("init_weights: %d parameters not in %s keep their initialisation: %s", len(missing), path, missing)
    for key, new in target.items():
        if key in missing:
            continue
        old = source[key]
        if old.shape == new.shape:
            new.copy_(old)
        elif old.dim() == 4 and new.dim() == 4 and old.shape[1] < new.shape[1] and \
                old.shape[:1] + old.shape[2:] == new.shape[:1] + new.shape[2:]:
            new.zero_()
            new[:, : old.shape[1]].copy_(old)
        else:
            raise ValueError(f"init_weights: {key} has shape {tuple(old.shape)} in {path}, "
                             f"the network needs {tuple(new.shape)}")
    net.load_state_dict(target)


def load_init_sources(net: nn.Module, paths, modules=None) -> None:
    """:func:`load_init_weights` for a path or a list of paths, with a module name or a list of names (or None)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    modules = [modules] * len(paths) if modules is None or isinstance(modules, str) else list(modules)
    if len(modules) != len(paths):
        raise ValueError(f"init_weights_module: {len(modules)} names for {len(paths)} init_weights paths")
    for path, module in zip(paths, modules):
        load_init_weights(net, path, module)
