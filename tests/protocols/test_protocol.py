"""Protocol files: validation errors, determinism, output range, user protocols, the shipped four."""

from __future__ import annotations

import numpy as np
import pytest

from landmark_afl.protocols import SHIPPED, Protocol, ProtocolError, list_protocols, load_protocol


def write(path, text: str):
    path.write_text(text)
    return path


@pytest.fixture
def image16() -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:400, 0:300]
    return (20000 + 15000 * np.sin(xx / 30.0) * np.cos(yy / 50.0) + rng.normal(0, 300, xx.shape)).astype(np.float32)


def test_shipped_protocols_listed_strongest_first():
    assert list_protocols()[:4] == list(SHIPPED) == ["higher", "high", "low", "lower"]
    for name in SHIPPED:
        p = load_protocol(name)
        assert p.name == name and p.description and p.steps


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("scale", [255.0, 4095.0, 65535.0])
def test_output_float32_in_unit_range_and_deterministic(name, scale, image16):
    image = image16 / 65535.0 * scale
    before = image.copy()
    p = load_protocol(name)
    out = p(image, {"voi_window": None})
    assert out.dtype == np.float32 and out.shape == image.shape
    assert out.min() >= 0.0 and out.max() <= 1.0 and np.isfinite(out).all()
    assert out.std() > 0.05  # not collapsed
    np.testing.assert_array_equal(p(image, None), out)  # deterministic, meta None accepted
    np.testing.assert_array_equal(image, before)  # input untouched


@pytest.mark.parametrize("name", SHIPPED)
def test_constant_and_tiny_images(name):
    p = load_protocol(name)
    for img in (np.full((64, 48), 700.0, np.float32), np.arange(12, dtype=np.float32).reshape(3, 4)):
        out = p(img)
        assert out.dtype == np.float32 and np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


def test_bad_image_inputs():
    p = load_protocol("low")
    with pytest.raises(ValueError, match="2-D"):
        p(np.zeros((4, 4, 3), np.float32))
    bad = np.ones((8, 8), np.float32)
    bad[2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        p(bad)


@pytest.mark.parametrize(
    ("steps", "needles"),
    [
        ("  - percentile_window\n  - clahee\n", ["unknown step 'clahee'", "did you mean 'clahe'", "unsharp_mask"]),
        (
            "  - percentile_window\n  - clahe: {clip: 2}\n",
            ["unknown parameter 'clip'", "clip_limit, tile_grid, bins", "did you mean 'clip_limit'"],
        ),
        ("  - percentile_window\n  - clahe: {clip_limit: high}\n", ["clip_limit = 'high'", "float in [1, 100]"]),
        ("  - percentile_window\n  - clahe: {tile_grid: 8.5}\n", ["tile_grid = 8.5", "int in [1, 64]"]),
        ("  - percentile_window\n  - gamma: {gamma: 0}\n", ["gamma = 0", "float in [0.1, 10]"]),
        ("  - percentile_window\n  - gamma: {gamma: true}\n", ["gamma = True"]),
        ("  - percentile_window: {lo: 99, hi: 1}\n", ["lo (99) must be below hi (1)"]),
        ("  - normalize: {method: zscor}\n", ["method = 'zscor'", "did you mean 'zscore'"]),
        ("  - gamma: {gamma: 0.8}\n  - percentile_window\n", ["step 1 (gamma)", "put a window step before it"]),
        ("  - gaussian_blur\n", ["no step maps the image to [0, 1]"]),
        ("  - gamma: 0.8\n", ["parameters must be a mapping"]),
        ("  - {gamma: {}, invert: {}}\n", ["write a step as"]),
    ],
)
def test_validation_errors_name_file_and_fix(tmp_path, steps, needles):
    path = write(tmp_path / "mine.yaml", "name: mine\ndescription: x\nsteps:\n" + steps)
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message


def test_file_level_errors(tmp_path):
    with pytest.raises(ProtocolError, match="unknown key 'step'.*did you mean 'steps'"):
        load_protocol(write(tmp_path / "a.yaml", "name: a\nstep: [invert]\n"))
    with pytest.raises(ProtocolError, match="'steps' must be a non-empty list"):
        load_protocol(write(tmp_path / "b.yaml", "name: b\nsteps: []\n"))
    with pytest.raises(ProtocolError, match="not valid YAML at line 4"):
        load_protocol(write(tmp_path / "c.yaml", "name: c\nsteps:\n  - [percentile_window\n"))
    with pytest.raises(ProtocolError, match="set `name: d` or rename"):
        load_protocol(write(tmp_path / "d.yaml", "name: other\nsteps: [percentile_window]\n"))
    with pytest.raises(ProtocolError, match="protocol file not found"):
        load_protocol(tmp_path / "missing.yaml")


def test_unknown_name_lists_available():
    with pytest.raises(ProtocolError, match=r"unknown protocol 'hihg'.*higher, high, low, lower.*did you mean 'high'"):
        load_protocol("hihg")


def test_user_protocol_from_path_and_from_env_folder(tmp_path, monkeypatch, image16):
    text = (
        "name: soft\ndescription: a user's own\nsteps:\n  - normalize: {method: zscore, z_range: 2.5}\n"
        "  - gamma: {gamma: 0.5}\n  - invert\n"
    )
    path = write(tmp_path / "soft.yaml", text)
    p = load_protocol(path)
    assert [s.name for s in p.steps] == ["normalize", "gamma", "invert"]
    assert p.steps[1].params == {"gamma": 0.5}
    x = image16.astype(np.float64)
    expected = 1 - np.sqrt(np.clip((x - x.mean()) / (5 * x.std()) + 0.5, 0, 1))
    np.testing.assert_allclose(p(image16), expected, atol=1e-4)

    monkeypatch.setenv("LANDMARK_AFL_PROTOCOLS", str(tmp_path))
    assert list_protocols() == ["soft"]
    assert load_protocol("soft") == p
    write(tmp_path / "high.yaml", "name: high\nsteps: [percentile_window]\n")
    assert list_protocols() == ["high", "soft"]


def test_to_dict_round_trip_resolves_defaults():
    p = load_protocol("higher")
    data = p.to_dict()
    assert data["steps"][2] == {"clahe": {"clip_limit": 2.5, "tile_grid": 8, "bins": 256}}
    q = Protocol.from_dict(data, source="roundtrip")
    assert q.steps == p.steps and q.name == p.name
