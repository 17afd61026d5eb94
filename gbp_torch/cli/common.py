"""What every command shares: one-line errors, input / output / device checks, model lookup."""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from ..io.image import SAMPLE_BITS, first_line
from .allocator import keep_freed_memory


class CLIError(Exception):
    """A bad argument or file: reported as one line, exit status 2."""


def run(prog: str, body: Callable[[list[str] | None], None], argv: list[str] | None) -> None:
    """Run ``body`` (with :func:`~.allocator.keep_freed_memory`); a CLIError or any other exception becomes one
    line on stderr and an exit, a warning one line ``PROG: warning: MESSAGE`` (not the library's file and line)."""
    keep_freed_memory()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(prog)
            body(argv)
    except CLIError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as e:  # noqa: BLE001 - the promise is: no traceback (GBP_DEBUG=1 shows it)
        if os.environ.get("GBP_DEBUG"):
            raise
        print(f"{prog}: error: {type(e).__name__}: {first_line(e)} (GBP_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        raise SystemExit(1) from None


def _one_line_warning(prog: str):
    """A ``warnings.showwarning`` that prints ``PROG: warning: MESSAGE`` on stderr."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001 - the hook's signature
        print(f"{prog}: warning: {message}", file=sys.stderr if file is None else file)

    return show


def same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def read_input(path: Path, what: str, gray: bool = False, samples: bool = False):
    """(image (C, H, W) float in [0, 1], bit depth) of an input file, or a CLIError that says why not. With
    ``samples`` the image is its integer samples (uint8 / uint16, :func:`~gbp_torch.io.read_samples`)."""
    from ..io import read_gray, read_image, read_samples

    if not path.exists():
        raise CLIError(f"{what} not found: {path}")
    if not path.is_file():
        raise CLIError(f"{what} is not a file: {path}")
    try:
        if gray:
            img, bits = read_gray(path, return_bits=True)
            return img[None], bits
        if samples:
            img = read_samples(path)
            return img, SAMPLE_BITS[img.dtype]
        return read_image(path, return_bits=True)
    except (ValueError, OSError, RuntimeError) as e:
        raise CLIError(f"{what} {path}: {first_line(e)}") from None


def check_outputs(outputs: Sequence[tuple[str, Path | None, Sequence[str]]], inputs: Sequence[Path]) -> None:
    """Each (flag, path, allowed extensions): a known extension, not a directory, in an existing
    writable folder, not one of the inputs, and different from the other outputs."""
    seen: list[tuple[str, Path]] = []
    for flag, path, allowed in outputs:
        if path is None:
            continue
        if path.is_dir():
            raise CLIError(f"{flag} {path} is a directory; give a file name")
        ext = path.suffix.lower()
        if ext not in allowed:
            raise CLIError(f"{flag} {path}: unsupported extension {ext or '(none)'!r}; use {' / '.join(allowed)}")
        if path.exists() and not path.is_file():
            raise CLIError(f"{flag} {path} exists and is not a regular file")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise CLIError(f"{flag} {path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise CLIError(f"{flag} {path}: not writable")
        for inp in inputs:
            if same_file(path, inp):
                raise CLIError(f"{flag} {path} is the input {inp}; refusing to overwrite an input")
        for other_flag, other in seen:
            if same_file(path, other):
                raise CLIError(f"{flag} and {other_flag} are the same file {path}")
        seen.append((flag, path))


def check_device(device: str):
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise CLIError(f"--device {device!r}: {first_line(e)}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CLIError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CLIError(f"--device {device}: MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise CLIError(f"--device {device}: use cpu or cuda")
    return dev


def optional_class(module: str, name: str):
    """``module.name`` if that module exists, else None (an error inside an existing module is reported)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.startswith(e.name):
            return None
        raise CLIError(f"{module} could not be imported: {first_line(e)}") from None
    return getattr(mod, name, None)


def resolve_model(task: str, name: str | None, device, handset_module: str, handset_class: str):
    """The model for ``task`` (``stereo`` / ``flow``): ``--model handset`` (or no name and no
    pretrained loader) is the hand-set class; otherwise ``gbp_torch.pretrained.<task>(name, device)``."""
    from .. import pretrained

    handset = optional_class(handset_module, handset_class)
    factory = getattr(pretrained, task, None)
    if handset is not None and (name == "handset" or (name is None and factory is None)):
        model = handset()
    elif factory is not None:
        try:
            model = factory(device=device) if name is None else factory(name, device=device)
        except KeyError as e:
            raise CLIError(f"unknown --model {name!r}: {first_line(e)}"
                           + ("; or 'handset'" if handset is not None else "")) from None
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(f"--model {name or '(default)'}: {first_line(e)}") from None
    elif handset is None:
        raise CLIError(f"{task} model not available: neither gbp_torch.pretrained.{task} nor "
                       f"{handset_module}.{handset_class} exists in this installation")
    else:
        raise CLIError(f"unknown --model {name!r}; known: handset")
    if hasattr(model, "to"):
        model = model.to(device)
    if hasattr(model, "eval"):
        model.eval()
    return model


def pair(a, b, names: tuple[str, str], paths: tuple[Path, Path]):
    """Two images of one size with the same number of channels (gray is repeated to RGB if needed)."""
    if a.shape[1:] != b.shape[1:]:
        raise CLIError(f"{names[0]} {paths[0]} is {a.shape[2]}x{a.shape[1]} (WxH) but {names[1]} {paths[1]} is "
                       f"{b.shape[2]}x{b.shape[1]}; they must have the same size")
    if a.shape[0] != b.shape[0]:
        a, b = a.expand(3, -1, -1), b.expand(3, -1, -1)
    return a, b
