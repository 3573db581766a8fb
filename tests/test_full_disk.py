"""A full disk mid-stage: one line naming the file, a non-zero exit, no temporary file left and
nothing written earlier lost. A real 48 KiB tmpfs where the test may mount one (root, as in CI);
elsewhere the same ENOSPC is raised at the rename of the atomic write."""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from common import io as common_io
from common.cli import run_cli
from preprocess import build
from tests.mpdfake import make_playlists, write_slices


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)], capture_output=True).returncode == 0
    if not mounted:
        def replace(src, dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(common_io.os, "replace", replace)
    try:
        yield mount
    finally:
        if mounted:
            subprocess.run(["umount", str(mount)], check=True)


def test_build_on_a_full_disk_is_one_line_and_keeps_old_files(tmp_path, small_disk, capsys):
    mpd = write_slices(tmp_path / "mpd", make_playlists(400, n_tracks=3000, seed=1), per_slice=200)
    out = small_disk / "art"
    out.mkdir()
    (out / "notes.txt").write_text("kept")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[preprocess]\nval_per_category = 0\nmin_track_count = 1\nmin_artist_count = 1\nworkers = 1\n")
    with pytest.raises(SystemExit) as exc:
        run_cli(build.main, ["--mpd", str(mpd), "--out", str(out), "--config", str(cfg)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert err.startswith(f"error: {out}/") and "No space left on device" in err and "\n" not in err
    assert (out / "notes.txt").read_text() == "kept"
    assert not [p.name for p in Path(out).iterdir() if p.name.endswith(".tmp")]
