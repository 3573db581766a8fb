"""Submission reading, rule checks (verify), the writer, and evaluate's input checks."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from common.errors import PipelineError
from submission import evaluate, verify
from submission.csvio import read_submission
from submission.writer import finalize, write_rows, write_submission
from tests import mpdfake

ROOT = Path(__file__).resolve().parents[1]
N_VOCAB = 1000
VOCAB = np.array([mpdfake.uri("track", t) for t in range(N_VOCAB)])
SEED_COUNTS = [0, 1, 5, 5, 10, 10, 1, 5]


def make_challenge(tmp: Path, n: int = 8) -> list[dict]:
    """n challenge entries over mpdfake playlists, seeds = the first few tracks; also writes truth and MPD."""
    pls = mpdfake.make_playlists(n, n_tracks=300, seed=5)
    mpdfake.write_slices(tmp / "mpd", pls)
    entries, truth = [], []
    for i, pl in enumerate(pls):
        k = min(SEED_COUNTS[i % len(SEED_COUNTS)], pl["num_tracks"] - 1)
        entry = {"pid": pl["pid"], "name": pl["name"], "num_tracks": pl["num_tracks"], "num_samples": k,
                 "num_holdouts": pl["num_tracks"] - k, "tracks": pl["tracks"][:k]}
        entries.append(entry)
        truth.append({"pid": pl["pid"], "tracks": pl["tracks"][k:]})
    (tmp / "challenge.json").write_text(json.dumps({"playlists": entries}))
    (tmp / "truth.json").write_text(json.dumps({"playlists": truth}))
    return entries


def seed_ids(entries: list[dict]) -> list[list[int]]:
    index = {u: i for i, u in enumerate(VOCAB.tolist())}
    return [[index[t["track_uri"]] for t in e["tracks"]] for e in entries]


def seeds_csr(entries: list[dict]) -> sp.csr_matrix:
    ids = seed_ids(entries)
    rows = np.repeat(np.arange(len(ids)), [len(s) for s in ids])
    cols = np.concatenate([np.asarray(s, dtype=np.int64) for s in ids])
    vals = np.concatenate([np.arange(1, len(s) + 1) for s in ids])
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(ids), N_VOCAB))


def valid_rows(entries: list[dict], seed: int = 0) -> dict[int, list[str]]:
    rng = np.random.default_rng(seed)
    out = {}
    for e, seeds in zip(entries, seed_ids(entries)):
        pool = np.setdiff1d(rng.permutation(N_VOCAB), seeds, assume_unique=True)
        out[e["pid"]] = VOCAB[rng.permutation(pool)[:500]].tolist()
    return out


def write_csv(path: Path, rows: dict[int, list[str]], head: tuple[str, ...] = ("team_info,team,me@example.com",),
              sep: str = ",") -> Path:
    lines = list(head) + [sep.join([str(p)] + r) for p, r in rows.items()]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def run_verify(capsys, sub: Path, challenge: Path) -> tuple[int, str]:
    code = verify.main(["--submission", str(sub), "--challenge", str(challenge)])
    return code, capsys.readouterr().out


# ---------------------------------------------------------------- verify
def test_broken_submission_lists_every_problem(tmp_path, capsys):
    entries = make_challenge(tmp_path)
    rows = valid_rows(entries)
    pids = [e["pid"] for e in entries]
    del rows[pids[0]]  # missing pid
    rows[pids[1]][7] = rows[pids[1]][2]  # duplicate track
    rows[pids[2]] = rows[pids[2]][:499]  # 499 tracks
    seed = entries[3]["tracks"][2]["track_uri"]
    rows[pids[3]][10] = seed  # a seed included
    rows[pids[4]][0] = "spotify:track:tooshort"  # malformed uri
    rows[pids[5]][1] = "spotify:album:" + "a" * 22  # malformed: not a track uri
    sub = write_csv(tmp_path / "sub.csv", rows, head=("# no team_info here",))
    with sub.open("a") as fh:
        fh.write(f"{pids[6]}," + ",".join(rows[pids[6]]) + "\n")  # duplicate pid
        fh.write("424242," + ",".join(rows[pids[6]]) + "\n")  # unknown pid
        fh.write("x1," + ",".join(rows[pids[6]]) + "\n")  # bad pid
    code, out = run_verify(capsys, sub, tmp_path / "challenge.json")
    assert code == 1
    assert "team_info (1):\n  missing team_info" in out
    assert f"missing pid (1):\n  pid {pids[0]}: no row" in out
    assert f"(pid {pids[1]}): track {rows[pids[1]][2]} listed more than once" in out
    assert f"wrong number of tracks (1):\n  line 3 (pid {pids[2]}): 499 tracks, expected 500" in out
    assert f"seed track included (1):\n  line 4 (pid {pids[3]}): seed track {seed}" in out
    assert "malformed track uri (2):" in out
    assert "malformed track uri 'spotify:track:tooshort' (track #1)" in out
    assert f"malformed track uri 'spotify:album:{'a' * 22}' (track #2)" in out
    assert f"duplicate pid (1):\n  line 9 (pid {pids[6]}): pid already listed on line 7" in out
    assert "unknown pid (1):\n  line 10 (pid 424242)" in out
    assert "bad pid (1):\n  line 11: pid 'x1'" in out
    assert out.splitlines()[0] == f"{sub}: INVALID, 10 problem(s) of 9 kind(s)"


def test_listing_is_capped_per_kind_but_counts_all(tmp_path, capsys):
    entries = make_challenge(tmp_path)
    rows = valid_rows(entries)
    pid = entries[0]["pid"]
    rows[pid][:30] = [f"spotify:track:bad{i}" for i in range(30)]
    code, out = run_verify(capsys, write_csv(tmp_path / "sub.csv", rows), tmp_path / "challenge.json")
    assert code == 1
    assert "malformed track uri (30):" in out
    assert sum("malformed track uri 'spotify:track:bad" in line for line in out.splitlines()) == verify.SHOW_PER_KIND
    assert "  ... and 10 more" in out


def test_misplaced_and_malformed_team_info(tmp_path, capsys):
    entries = make_challenge(tmp_path)
    rows = valid_rows(entries)
    sub = write_csv(tmp_path / "sub.csv", rows, head=())
    with sub.open("a") as fh:
        fh.write("team_info,late team,me@example.com\n")
    code, out = run_verify(capsys, sub, tmp_path / "challenge.json")
    assert code == 1 and "missing team_info" in out and "misplaced team_info (1):" in out
    sub = write_csv(tmp_path / "sub2.csv", rows, head=("team_info,only-a-name",))
    code, out = run_verify(capsys, sub, tmp_path / "challenge.json")
    assert code == 1 and "malformed team_info 'team_info,only-a-name'" in out


@pytest.mark.parametrize("head, sep, name", [
    (("team_info,my team,me@example.com",), ",", "sub.csv"),
    (("# comment", "", "team_info,creative,my team,me@example.com", "# another"), ", ", "sub.csv"),
    (("team_info,main,my team,me@example.com",), ",", "sub.csv.gz"),
])
def test_valid_submission_passes(tmp_path, capsys, head, sep, name):
    entries = make_challenge(tmp_path)
    sub = write_csv(tmp_path / name, valid_rows(entries), head=head, sep=sep)
    code, out = run_verify(capsys, sub, tmp_path / "challenge.json")
    assert code == 0, out
    assert out == f"{sub}: OK, {len(entries)} playlists x 500 tracks, team 'my team'\n"


def test_gzip_recognised_by_content_and_blank_lines_skipped(tmp_path):
    entries = make_challenge(tmp_path)
    rows = valid_rows(entries)
    plain = write_csv(tmp_path / "a.csv", rows, head=("", "team_info,t,e@x.org", ""))
    misnamed = tmp_path / "b.csv"
    misnamed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = read_submission(plain), read_submission(misnamed)
    assert a.team_info == b.team_info == ("t", "e@x.org")
    assert (a.pid == b.pid).all() and (a.uris[a.codes] == b.uris[b.codes]).all()
    assert a.line[0] == 4 and len(a) == len(entries) and (a.n_tracks == 500).all()


def _same(a, b) -> None:
    assert a.team_info == b.team_info and a.stray_team_info == b.stray_team_info
    assert a.pid_text == b.pid_text and (a.line == b.line).all() and (a.indptr == b.indptr).all()
    assert a.uris[a.codes].tolist() == b.uris[b.codes].tolist()
    assert sorted(a.uris.tolist()) == sorted(b.uris.tolist())


def test_byte_level_reader_matches_text_reader(tmp_path, monkeypatch):
    entries = make_challenge(tmp_path)
    rows = valid_rows(entries)
    pids = [e["pid"] for e in entries]
    rows[pids[1]][3] = rows[pids[1]][0]  # a repeat inside a canonical row
    rows[pids[2]][4] = " " + rows[pids[2]][4][:-1]  # a blank at a field's edge (36 bytes wide)
    rows[pids[3]][0], rows[pids[3]][1] = rows[pids[3]][0] + "x", rows[pids[3]][1][:-1]  # 37 + 35 bytes
    rows[pids[4]][9] = "spotify:track:\u00e9" + "a" * 20  # non-ASCII, 36 bytes in UTF-8
    rows[pids[5]] = rows[pids[5]][:300]
    text = "\ufeffteam_info,t,e@x.org\r\n" + "\r\n".join(f"{p}," + ",".join(r) for p, r in rows.items())
    path = tmp_path / "mixed.csv"
    path.write_bytes(text.encode())
    fast, slow = read_submission(path), read_submission(path, fast=False)
    _same(fast, slow)
    assert fast.team_info == ("t", "e@x.org") and len(fast) == len(entries)
    assert fast.uris[fast.codes[fast.indptr[2] + 4]] == rows[pids[2]][4].strip()
    monkeypatch.setattr("submission.csvio._MIX", np.zeros(5, dtype=np.uint64))  # every field hashes alike
    _same(read_submission(write_csv(tmp_path / "plain.csv", valid_rows(entries))),
          read_submission(tmp_path / "plain.csv", fast=False))
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"team_info,t,e@x.org\n1,spotify:track:\xe9\n")
    with pytest.raises(PipelineError, match="line 2: not UTF-8"):
        read_submission(bad)


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_verify_cli_exit_codes(tmp_path):
    entries = make_challenge(tmp_path)
    rows = valid_rows(entries)
    challenge = str(tmp_path / "challenge.json")
    good = write_csv(tmp_path / "good.csv.gz", rows)
    done = _cli("submission.verify", "--submission", str(good), "--challenge", challenge)
    assert done.returncode == 0 and "OK" in done.stdout
    rows[entries[1]["pid"]] = rows[entries[1]["pid"]][:499]
    bad = write_csv(tmp_path / "bad.csv", rows)
    done = _cli("submission.verify", "--submission", str(bad), "--challenge", challenge)
    assert done.returncode == 1 and "wrong number of tracks (1)" in done.stdout
    corrupt = tmp_path / "corrupt.csv.gz"
    corrupt.write_bytes(good.read_bytes()[:100])
    for path in (tmp_path / "absent.csv", corrupt):
        done = _cli("submission.verify", "--submission", str(path), "--challenge", challenge)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {path}")
    assert _cli("submission.verify", "--help").returncode == 0


# ---------------------------------------------------------------- writer
def test_writer_drops_seeds_and_repeats_and_pads_from_popularity():
    seeds = sp.csr_matrix((np.ones(3), ([0, 0, 1], [5, 6, 7])), shape=(3, 20))
    rec = np.array([[5, 3, 3, -1, 6, 2],   # seeds 5, 6 and a repeat of 3 go
                    [7, 7, 1, 0, -1, -1],
                    [-1, -1, -1, -1, -1, -1]])
    popularity = np.array([6, 3, 7, 9, 5, 0, 1, 2, 4, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    out = finalize(rec, seeds, popularity, n=6)
    # row 0 keeps 3, 2, then the most popular tracks that are neither seeds (5, 6) nor listed: 7, 9, 0, 1
    assert out.tolist() == [[3, 2, 7, 9, 0, 1], [1, 0, 6, 3, 9, 5], [6, 3, 7, 9, 5, 0]]
    with pytest.raises(PipelineError, match="cannot fill"):
        finalize(rec, seeds, popularity[:6], n=6)


def test_writer_random_rows_obey_the_rules():
    rng = np.random.default_rng(3)
    n_pl, t = 50, 700
    seeds = sp.random(n_pl, t, density=0.05, format="csr", random_state=4)
    rec = rng.integers(-1, t, size=(n_pl, 650))
    rec[:10, 100:] = -1  # short lists need topping up
    out = finalize(rec, seeds, rng.permutation(t))
    assert out.shape == (n_pl, 500)
    for i in range(n_pl):
        row = out[i].tolist()
        assert len(set(row)) == 500 and min(row) >= 0
        assert not set(row) & set(seeds[i].indices.tolist())
        kept = [x for x in dict.fromkeys(rec[i].tolist()) if x >= 0 and x not in set(seeds[i].indices.tolist())]
        assert row[:min(len(kept), 500)] == kept[:500]  # model order kept, longer lists cut at 500


def test_written_file_is_deterministic_and_passes_verify(tmp_path, capsys):
    entries = make_challenge(tmp_path)
    rng = np.random.default_rng(0)
    rec = rng.integers(-1, 300, size=(len(entries), 80))
    rec[0, :5] = seed_ids(entries)[4][:5]  # seeds of another playlist: kept, in order
    rec[2, :5] = seed_ids(entries)[2]  # its own seeds: dropped
    pids = np.array([e["pid"] for e in entries])
    args = (pids, rec, VOCAB, seeds_csr(entries), rng.permutation(N_VOCAB), "team", "me@example.com")
    write_submission(tmp_path / "a.csv.gz", *args)
    write_submission(tmp_path / "b.csv.gz", *args)
    write_submission(tmp_path / "a.csv", *args)
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.csv.gz").read_bytes()) == (tmp_path / "a.csv").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))
    for name in ("a.csv.gz", "a.csv"):
        code, out = run_verify(capsys, tmp_path / name, tmp_path / "challenge.json")
        assert code == 0, out
    sub = read_submission(tmp_path / "a.csv")
    assert sub.uris[sub.codes[:5]].tolist() == VOCAB[rec[0, :5]].tolist()
    assert not set(sub.uris[sub.codes[sub.indptr[2]:sub.indptr[3]]]) & set(VOCAB[seed_ids(entries)[2]])
    with pytest.raises(PipelineError, match="team name"):
        write_submission(tmp_path / "c.csv", *args[:5], "a,b", "me@example.com")


def test_write_rows_layouts(tmp_path):
    # equal widths go through the byte matrix, unequal ones through text joins: same format
    write_rows(tmp_path / "even.csv", np.array([5, 16]), np.array([["ab", "cd"], ["ef", "gh"]]), "t", "e@x")
    assert (tmp_path / "even.csv").read_text() == "team_info,t,e@x\n5,ab,cd\n16,ef,gh\n"
    write_rows(tmp_path / "odd.csv", np.array([5, 16]), np.array([["a", "bb"], ["ccc", "d"]]), "t", "e@x")
    assert (tmp_path / "odd.csv").read_text() == "team_info,t,e@x\n5,a,bb\n16,ccc,d\n"
    with pytest.raises(PipelineError, match="ASCII"):
        write_rows(tmp_path / "x.csv", np.array([1]), np.array([["\u00e9"]]), "t", "e@x")
    with pytest.raises(PipelineError, match="unique"):
        write_rows(tmp_path / "x.csv", np.array([1, 1]), np.array([["a"], ["b"]]), "t", "e@x")
    assert not (tmp_path / "x.csv").exists()


# ---------------------------------------------------------------- evaluate input checks
def _eval_args(tmp: Path, sub: Path, truth: Path | None = None) -> list[str]:
    return ["--submission", str(sub), "--challenge", str(tmp / "challenge.json"),
            "--truth", str(truth or tmp / "truth.json"), "--mpd", str(tmp / "mpd")]


def test_evaluate_refuses_invalid_submission_unless_allowed(tmp_path, capsys):
    entries = make_challenge(tmp_path)
    rows = valid_rows(entries)
    rows[entries[0]["pid"]] = rows[entries[0]["pid"]][:499]
    sub = write_csv(tmp_path / "sub.csv", rows)
    done = _cli("submission.evaluate", *_eval_args(tmp_path, sub))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "invalid submission, 1 problem(s)" in done.stderr and "499 tracks" in done.stderr
    assert evaluate.main(_eval_args(tmp_path, sub) + ["--allow-invalid", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"r_precision", "ndcg", "clicks", "per_category"}


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t["playlists"][1]["tracks"][0].pop("artist_uri"), "track #0: missing key 'artist_uri'"),
    (lambda t: t["playlists"][1]["tracks"][0].update(track_uri="spotify:track:x"), "malformed track_uri"),
    (lambda t: t["playlists"][1].update(tracks=[]), "no withheld tracks"),
    (lambda t: t["playlists"][1].update(pid="7"), "playlist #1: missing or non-integer 'pid'"),
    (lambda t: t["playlists"].append(dict(t["playlists"][0])), "appears more than once"),
    (lambda t: t["playlists"].pop(), "no entry for challenge pid"),
    (lambda t: t["playlists"][0].update(pid=999), "pid 999 is not in the challenge set"),
    (lambda t: t.pop("playlists"), "expected an object with a 'playlists' list"),
])
def test_truth_schema_errors_are_one_line(tmp_path, mutate, message):
    entries = make_challenge(tmp_path)
    sub = write_csv(tmp_path / "sub.csv", valid_rows(entries))
    truth = json.loads((tmp_path / "truth.json").read_text())
    mutate(truth)
    bad = tmp_path / "bad_truth.json"
    bad.write_text(json.dumps(truth))
    with pytest.raises(PipelineError, match=f"^{bad}: .*{message}"):
        evaluate.main(_eval_args(tmp_path, sub, bad))


def test_evaluate_cli_errors_are_one_line(tmp_path):
    entries = make_challenge(tmp_path)
    sub = write_csv(tmp_path / "sub.csv", valid_rows(entries))
    (tmp_path / "broken.json").write_text("{not json")
    for args in (_eval_args(tmp_path, sub, tmp_path / "broken.json"),
                 _eval_args(tmp_path, tmp_path / "absent.csv"),
                 _eval_args(tmp_path, sub)[:-1] + [str(tmp_path / "no_mpd_here")]):
        done = _cli("submission.evaluate", *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ")
