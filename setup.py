"""Build hook only (the metadata is in pyproject.toml): a wheel carries the shipped weights and samples.

``checkpoints/`` and ``samples/`` sit beside the package in the repository, where an editable install reads
them. A regular install (``pip install .`` or from a git URL) copies only packages, so the build step copies
both folders into the wheel as ``gbp_torch/shipped/``, where :func:`gbp_torch.paths.shipped_dir` finds them.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("checkpoints", "samples")


class BuildWithShippedFolders(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the repository's folders
            return
        root = Path(__file__).resolve().parent
        for name in SHIPPED:
            shutil.copytree(root / name, Path(self.build_lib) / "gbp_torch" / "shipped" / name, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithShippedFolders})
