from __future__ import annotations

from pathlib import Path

import pytest

from landmark_afl.inference.inputs import collect_inputs, common_root, overlay_name
from tests.inference.real_inputs import make_real_folder


def test_folder_is_searched_recursively_sorted_and_skips_non_images(tmp_path):
    good, broken = make_real_folder(tmp_path / "in")
    found = collect_inputs(tmp_path / "in")
    # every image-like file, including DICOM without extension and the broken ones (they go to errors.csv);
    # not notes.txt, not random bytes without extension, not DICOMDIR
    assert found == sorted(good + broken)
    assert all(p.is_absolute() for p in found)
    assert not any(p.name in ("DICOMDIR", "notes.txt", "random_noext") for p in found)


def test_single_file_and_list_file(tmp_path):
    (tmp_path / "sub").mkdir()
    a, b = tmp_path / "sub" / "b.png", tmp_path / "a.png"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    assert collect_inputs(a) == [a.resolve()]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two images\nsub/b.png\n\n{b}\nsub/b.png\nmissing.dcm\n")
    # relative to the list's folder, de-duplicated, sorted; a missing listed file is kept (reported later)
    assert collect_inputs(listing) == sorted([a.resolve(), b.resolve(), (tmp_path / "missing.dcm").resolve()])


def test_list_naming_a_folder_and_missing_input_are_errors(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path}\n")
    with pytest.raises(ValueError, match="line 1.*is a folder"):
        collect_inputs(listing)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        collect_inputs(tmp_path / "nope")


def test_overlay_names_keep_the_folder_structure():
    paths = [Path("/d/in/a/x.dcm"), Path("/d/in/b/x.dcm")]
    root = common_root(paths)
    assert root == Path("/d/in")
    assert [overlay_name(p, root) for p in paths] == [Path("a/x.dcm.png"), Path("b/x.dcm.png")]
