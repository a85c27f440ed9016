"""A run folder with an untrained (randomly initialised) landmark model, for tests of evaluate / report / predict.

It has the layout of a real run (config.yaml, checkpoints/best.pt and last.pt with the full run metadata) without
the minutes of training; tests that need a *trained* model train one through the CLI and are marked slow.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from landmark_afl.engine.checkpoint import save_checkpoint
from landmark_afl.engine.config import config_to_dict, update_config
from landmark_afl.recipes.landmarks import LandmarkConfig, build_task


def make_untrained_run(
    run_dir: Path, landmarks: list[str], protocol: str = "high", seed: int = 0, protocol_spec=None, **overrides
) -> Path:
    """Write a run folder whose checkpoints hold a freshly initialised model for ``landmarks``.

    ``protocol_spec`` (``Protocol.to_dict()``) is what a real run stores; None stands for an older checkpoint
    without it, whose protocol is then looked up by name.
    """
    values = {"input_size": (64, 64), "protocol": protocol, "seed": seed, **overrides}
    cfg = update_config(LandmarkConfig(), values)
    torch.manual_seed(seed)
    task = build_task(cfg, len(landmarks), pretrained=False)  # random weights, never downloaded
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    state = {
        "recipe": "landmarks",
        "task": task.state_dict(),
        "task_extra": task.extra_state(),
        "epoch": 1,
        "step": 1,
        "metrics": {},
        "config": config_to_dict(cfg),
        "landmarks": list(landmarks),
        "dataset_name": "test",
        "data_dir": "",
        "protocol": protocol,
        "protocol_spec": protocol_spec,
        "codec": task.codec.config(),
        "loss_activation": task.loss.activation,
        "spacing_fallback": None,
    }
    for name in ("best", "last"):
        save_checkpoint(run_dir / "checkpoints" / f"{name}.pt", state)
    return run_dir
