"""Tests of videodeblur.io.paths: refusing unsafe outputs, atomic output files.
"""

from __future__ import annotations

import errno
import os

import pytest

from media import (
    make_clip,
)
from videodeblur.errors import InputError, OutputError
from videodeblur.io import (
    atomic_output,
    check_paths,
)


def test_check_paths_refusals(tmp_path, monkeypatch):
    src = make_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    link = tmp_path / "link.mp4"
    link.symlink_to(src)
    with pytest.raises(OutputError, match="same file as the input"):
        check_paths(src, link, overwrite=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="same file as the input"):
        check_paths("clip.mp4", "./clip.mp4", overwrite=True)
    sub = tmp_path / "sub"
    sub.mkdir()
    with pytest.raises(OutputError, match="same file as the input"):
        check_paths("clip.mp4", "sub/../clip.mp4", overwrite=True)
    other = tmp_path / "other.mp4"
    other.write_bytes(b"x")
    with pytest.raises(OutputError, match="exists; pass overwrite=True to overwrite"):
        check_paths(src, other, overwrite=False)
    check_paths(src, other, overwrite=True)
    with pytest.raises(OutputError, match="does not exist"):
        check_paths(src, tmp_path / "missing" / "out.mp4", overwrite=True)
    with pytest.raises(OutputError, match="is a directory"):
        check_paths(src, sub, overwrite=True)
    with pytest.raises(InputError, match="no such file"):
        check_paths(tmp_path / "absent.mp4", tmp_path / "o.mp4", overwrite=False)
    check_paths(src, tmp_path / "new.mp4", overwrite=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_check_paths_unwritable_directory(tmp_path):
    src = make_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_paths(src, ro / "o.mp4", overwrite=False)
    finally:
        ro.chmod(0o700)


def test_atomic_output_success_leaves_only_the_target(tmp_path):
    target = tmp_path / "out.mp4"
    with atomic_output(target) as temp:
        assert temp.parent == tmp_path
        assert temp.suffix == ".mp4" and temp.name.startswith(".out.partial-")
        temp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_atomic_output_removes_temp_on_exception(tmp_path, exc_type):
    target = tmp_path / "out.mkv"
    target.write_bytes(b"old")
    with pytest.raises(exc_type):
        with atomic_output(target) as temp:
            temp.write_bytes(b"partial")
            raise exc_type("boom")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]


def test_atomic_output_maps_disk_full(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(OutputError, match="no space left"):
        with atomic_output(target) as temp:
            temp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []
