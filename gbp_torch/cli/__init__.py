"""Console entry points (registered in pyproject.toml): ``gbp-demo``, ``gbp-denoise``, ``gbp-stereo``,
``gbp-flow``.

Every argument and file is checked before anything is computed; a bad one ends the program with a
one-line ``PROG: error: ...`` on stderr and exit status 2 (argparse's own usage errors also exit 2).
An unexpected failure later prints one line and exits 1; set ``GBP_DEBUG=1`` to see the traceback.
No output path may be an input, and outputs must be distinct, in an existing folder.
"""

from .common import CLIError, run
from .denoise import denoise_main
from .flow import flow_main
from .stereo import stereo_main


def demo_main() -> None:
    """``gbp-demo``: the main job on the shipped samples (denoising, stereo, flow)."""
    from ..demo import main

    run("gbp-demo", main, None)


__all__ = ["CLIError", "demo_main", "denoise_main", "stereo_main", "flow_main"]
