"""Atomic writes: the target holds the old content or the new, never half, and no temp file is left."""
import os

import pytest

from genretrieve.atomic import atomic_path, replace_folder, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "manifest.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["manifest.json"]
    write_text(target, "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["manifest.json"]


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    write_text(tmp_path / "a.json", "{}")
    assert (tmp_path / "a.json").stat().st_mode & 0o044 == 0o044 & ~_umask()  # readable by others as the umask allows


def test_replace_folder_swaps_in_the_new_folder(tmp_path):
    (tmp_path / "live").mkdir()
    (tmp_path / "live" / "old.txt").write_text("old")
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "new.txt").write_text("new")
    replace_folder(tmp_path / "staging", tmp_path / "live")
    assert os.listdir(tmp_path / "live") == ["new.txt"] and sorted(os.listdir(tmp_path)) == ["live"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
