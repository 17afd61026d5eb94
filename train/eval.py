"""Evaluate a model of any task: one front end, one evaluation module per task.

    python -m train.eval [--task TASK] ARGS...
    python -m train.eval ckpt=logs/train/runs/<run>/checkpoints/last.ckpt --limit 4 --no-classical
    python -m train.eval --pretrained gbp_denoiser_gaussian --blind --self-ensemble
    python -m train.eval model=cnn model.net.depth=3 --limit 1 --no-classical   # untrained model (smoke test)
    python -m train.eval --task denoise --help                                  # the task's own options

The task is ``--task``; else the one recorded in the ``ckpt=`` checkpoint; else the ``task`` key of the
config that ``task=`` / ``experiment=`` overrides compose (conf/task/); else denoise (also for checkpoints
written before tasks had names). ARGS go, unchanged, to ``run(argv)`` of the task's evaluation module
(:data:`TASKS`, imported only when chosen), e.g. train/denoise/evaluate.py.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from .config import DEFAULT_TASK, compose_config, config_task

#: task -> its evaluation module, which provides ``run(argv: list[str])``
TASKS: dict[str, str] = {"denoise": "train.denoise.evaluate", "stereo": "train.stereo.evaluate",
                         "flow": "train.flow.evaluate"}


def evaluator(task: str) -> ModuleType:
    """The evaluation module of ``task``; ValueError naming the known tasks for any other."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(sorted(TASKS))}")
    return importlib.import_module(TASKS[task])


def _pop_task_flag(argv: list[str]) -> str | None:
    """Remove ``--task NAME`` / ``--task=NAME`` from ``argv`` (in place); the last one given, or None."""
    task = None
    i = 0
    while i < len(argv):
        if argv[i] == "--task":
            if i + 1 == len(argv):
                raise ValueError(f"--task needs a value; known tasks: {', '.join(sorted(TASKS))}")
            task = argv[i + 1]
            del argv[i:i + 2]
        elif argv[i].startswith("--task="):
            task = argv.pop(i).split("=", 1)[1]
        else:
            i += 1
    return task


def resolve_task(argv: Sequence[str]) -> tuple[str, list[str]]:
    """(the task, the arguments for its evaluation module); see the module docstring for the order."""
    rest = list(argv)
    task = _pop_task_flag(rest)
    if task is not None:
        return task, rest
    ckpt = next((a.split("=", 1)[1] for a in rest if a.startswith("ckpt=")), None)
    if ckpt:
        from .checkpoint import checkpoint_task

        task = checkpoint_task(ckpt)
        if task:
            return task, rest
    chooser = [a for a in rest if a.lstrip("+~").split("=", 1)[0] in ("task", "experiment") and "=" in a]
    return (config_task(compose_config(chooser)) if chooser else DEFAULT_TASK), rest


def run(argv: Sequence[str] | None = None):
    """Evaluate: the chosen task's ``run`` on the remaining arguments; returns what it returns."""
    task, rest = resolve_task(sys.argv[1:] if argv is None else argv)
    return evaluator(task).run(rest)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m train.eval``."""
    try:
        task, rest = resolve_task(sys.argv[1:] if argv is None else argv)
        module = evaluator(task)
    except ValueError as e:
        sys.exit(f"train.eval: error: {e}")
    if {"-h", "--help"} & set(rest):
        print(__doc__.split("\n\n")[0] + f"\n\nknown tasks: {', '.join(sorted(TASKS))}; options of task {task!r}:\n")
    try:
        module.run(rest)
    except FileNotFoundError as e:  # a dataset or checkpoint that is not there: one line, not a traceback
        sys.exit(f"train.eval --task {task}: error: {e}")


if __name__ == "__main__":
    main()
