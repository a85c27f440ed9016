"""A run keeps the protocol it was trained with, even when the protocol file changes or disappears."""

import numpy as np

from landmark_afl.protocols import load_protocol
from landmark_afl.recipes.landmarks import load_trained_run
from tests.run_fixture import make_untrained_run


def test_trained_protocol_comes_from_the_checkpoint(tmp_path):
    spec = load_protocol("lower").to_dict()
    spec["name"] = "site_custom"  # a user protocol that is not (or no longer) in protocols/
    run = load_trained_run(make_untrained_run(tmp_path / "run", ["a", "b"], "site_custom", protocol_spec=spec))
    protocol = run.protocol_for(None)
    assert protocol.name == "site_custom" and protocol.to_dict() == spec
    image = np.random.default_rng(0).uniform(0, 4095, (64, 48)).astype(np.float32)
    np.testing.assert_array_equal(protocol(image), load_protocol("lower")(image))
    assert run.protocol_for("high").name == "high"


def test_older_checkpoint_without_spec_looks_the_name_up(tmp_path):
    run = load_trained_run(make_untrained_run(tmp_path / "run", ["a"], "low"))
    assert run.protocol_for(None).to_dict() == load_protocol("low").to_dict()


def test_a_run_of_another_task_is_refused_by_name(tmp_path):
    import pytest

    from landmark_afl.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    run = make_untrained_run(tmp_path / "run", ["a", "b"])
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    state.pop("version")
    save_checkpoint(run / "checkpoints" / "best.pt", {**state, "recipe": "digits"})
    with pytest.raises(CheckpointError, match="trained with --task digits"):
        load_trained_run(run)
