"""``videodeblur run A B ... -o OUTDIR/`` and a folder as input: each file restored, one line each."""

from __future__ import annotations

import pytest

from media import frame_pts, make_clip, packet_hashes
from videodeblur.cli import main as cli_main

FAST = ["-q", "--set", "output.preset=ultrafast", "--set", "psf.radius=2"]


@pytest.fixture
def folder(tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    make_clip(shots / "a.mp4", frames=6, audio=True)
    make_clip(shots / "b.mkv", frames=8, audio=True, seed=2)
    (shots / "notes.txt").write_text("not a video")
    (shots / ".hidden.mp4").write_bytes(b"")
    return shots


def summary_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(("wrote ", "videodeblur: error", "videodeblur: all",
                                                                  "videodeblur: 1 of", "videodeblur: 2 of"))]


def test_several_files_into_a_folder(folder, tmp_path, capsys):
    out = tmp_path / "restored"
    assert cli_main(["run", str(folder / "a.mp4"), str(folder / "b.mkv"), "-o", f"{out}/", *FAST]) == 0
    for name in ("a.mp4", "b.mkv"):
        assert frame_pts(out / name) == frame_pts(folder / name)
        assert packet_hashes(out / name) == packet_hashes(folder / name)
    lines = summary_lines(capsys.readouterr().err)
    assert [line.split(":")[0] for line in lines] == [f"wrote {out / 'a.mp4'}", f"wrote {out / 'b.mkv'}",
                                                      "videodeblur"]
    assert lines[-1] == f"videodeblur: all 2 files restored into {out}"


def test_a_folder_as_input_takes_its_videos(folder, tmp_path, capsys):
    out = tmp_path / "restored"
    out.mkdir()
    assert cli_main(["run", str(folder), "-o", str(out), *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mkv"]


def test_a_failing_file_is_reported_and_the_rest_are_done(folder, tmp_path, capsys):
    (folder / "broken.mov").write_bytes(b"this is not a video")
    out = tmp_path / "restored"
    code = cli_main(["run", str(folder), "-o", f"{out}/", *FAST])
    assert code == 3  # the first failure's: a bad input
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "b.mkv"]  # no partial file for broken.mov
    lines = summary_lines(capsys.readouterr().err)
    assert len(lines) == 4
    assert lines[2].startswith(f"videodeblur: error: input '{folder / 'broken.mov'}' (3/3): ")
    assert lines[3] == f"videodeblur: 1 of 3 files failed: {folder / 'broken.mov'}"


def test_existing_outputs_need_y_and_names_must_not_collide(folder, tmp_path, capsys):
    out = tmp_path / "restored"
    out.mkdir()
    (out / "a.mp4").write_bytes(b"keep")
    assert cli_main(["run", str(folder), "-o", str(out), *FAST]) == 4
    assert (out / "a.mp4").read_bytes() == b"keep" and (out / "b.mkv").exists()
    assert "exists; pass -y" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    make_clip(other / "a.mp4", frames=4, audio=False)
    assert cli_main(["run", str(folder / "a.mp4"), str(other / "a.mp4"), "-o", str(tmp_path / "x") + "/", *FAST]) == 2
    assert "would both be written to" in capsys.readouterr().err
    assert cli_main(["run", str(tmp_path / "restored"), "-o", str(tmp_path / "missing" / "deeper") + "/", *FAST]) == 4
