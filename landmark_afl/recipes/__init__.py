"""Recipes, one module per task, chosen by ``landmark-afl train --task NAME`` from a plain dict.

The registry maps a task name to the module that defines its ``RECIPE``; a module is imported only when its task
is asked for, so choosing one task never loads another's data readers.
"""

from __future__ import annotations

import importlib

RECIPES: dict[str, str] = {
    "landmarks": "landmark_afl.recipes.landmarks",
    "coco": "landmark_afl.recipes.coco",
    "mpii": "landmark_afl.recipes.mpii",
    "cifar": "landmark_afl.recipes.cifar",
    "digits": "landmark_afl.recipes.digits",
}
DEFAULT_TASK = "landmarks"


def get_recipe(name: str):
    """The ``Recipe`` of task ``name``; an unknown name lists the valid ones."""
    if name not in RECIPES:
        import difflib

        close = difflib.get_close_matches(name, RECIPES, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ValueError(f"unknown task {name!r}.{hint} Valid tasks: {', '.join(RECIPES)}")
    return importlib.import_module(RECIPES[name]).RECIPE
