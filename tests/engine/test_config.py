import pytest

from landmark_afl.engine.config import ConfigError, TrainConfig, load_config_file, parse_overrides, update_config


def test_precedence_defaults_file_then_command_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.01\nepochs: 3\ninput_size: [320, 256]\n")
    cfg = load_config_file(path)
    assert (cfg.lr, cfg.epochs, cfg.input_size) == (0.01, 3, (320, 256))
    cfg = update_config(cfg, parse_overrides(["epochs=5", "afl=False", "data=/x/y", "encoder_weights=None"]))
    assert (cfg.lr, cfg.epochs, cfg.afl, cfg.data, cfg.encoder_weights) == (0.01, 5, False, "/x/y", None)
    assert TrainConfig().epochs != 5  # defaults untouched (frozen dataclass copies)


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match="Did you mean.*epochs"):
        update_config(TrainConfig(), {"epoch": "3"})


@pytest.mark.parametrize(
    ("item", "message"),
    [("epochs=2.5", "must be int"), ("afl=yes", "True or False"), ("input_size=[256]", "list of 2"),
     ("lr=None", "cannot be None"), ("lr", "key=value")],
)  # fmt: skip
def test_bad_values_name_the_key(item, message):
    with pytest.raises(ConfigError, match=message):
        update_config(TrainConfig(), parse_overrides([item]))


def test_int_for_float_and_never_eval():
    cfg = update_config(TrainConfig(), {"lr": "1", "protocol": "__import__('os').system('false')"})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.protocol.startswith("__import__")  # kept as a plain string, never evaluated


def test_bad_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config_file(bad)
