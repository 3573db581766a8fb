import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from common.config import from_dict, load_toml
from common.errors import PipelineError
from common.io import atomic_path, load_npz, save_npz
from common.stages import run_stage, stage_key


def test_atomic_path_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_unwritable_folder_is_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PipelineError, match="cannot write"):
        save_npz(blocker / "sub" / "a.npz", x=np.zeros(3))


def test_npz_round_trip_and_corrupt_file(tmp_path):
    save_npz(tmp_path / "a.npz", x=np.arange(4))
    assert load_npz(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2, 3]
    (tmp_path / "b.npz").write_bytes(b"garbage")
    with pytest.raises(PipelineError, match="b.npz"):
        load_npz(tmp_path / "b.npz")


@dataclass
class Inner:
    lr: float = 0.1


@dataclass
class Outer:
    name: str = "x"
    steps: int = 3
    ranges: list[float] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)


def test_config_types_and_unknown_keys(tmp_path):
    cfg = from_dict(Outer, {"steps": 5, "ranges": [0.5, 1], "inner": {"lr": 1}}, "t")
    assert cfg.steps == 5 and cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    with pytest.raises(PipelineError, match="unknown key"):
        from_dict(Outer, {"stepz": 5}, "t")
    with pytest.raises(PipelineError, match="t.steps"):
        from_dict(Outer, {"steps": "5"}, "t")
    (tmp_path / "bad.toml").write_text("[run\n")
    with pytest.raises(PipelineError, match="bad.toml"):
        load_toml(tmp_path / "bad.toml")


def test_stage_skipped_when_key_unchanged(tmp_path):
    calls = []

    def work():
        calls.append(1)
        return {"n": len(calls)}

    key = stage_key("s", {"a": 1})
    assert run_stage(tmp_path / "s", key, work)["skipped"] is False
    assert run_stage(tmp_path / "s", key, work)["skipped"] is True
    assert run_stage(tmp_path / "s", stage_key("s", {"a": 2}), work)["n"] == 2
    assert run_stage(tmp_path / "s", stage_key("s", {"a": 2}), work, force=True)["n"] == 3
    assert len(calls) == 3


def test_each_stage_records_its_own_peak_memory(tmp_path):
    def big() -> dict:
        block = np.ones(40_000_000)  # 320 MB
        return {"sum": float(block[:10].sum())}

    run_stage(tmp_path / "big", "k", big)
    run_stage(tmp_path / "small", "k", lambda: {"n": int(np.ones(1000).sum())})
    big_peak = json.loads((tmp_path / "big" / "stage.json").read_text())["peak_rss_mb"]
    small_peak = json.loads((tmp_path / "small" / "stage.json").read_text())["peak_rss_mb"]
    assert big_peak > small_peak + 250  # the window was reset between the stages


def test_attach_section_writes_beside_the_report_and_links_once(tmp_path):
    from report.write import attach_section

    (tmp_path / "report.md").write_text("# Run\n")
    for text in ("first\n", "second\n"):
        path = attach_section(tmp_path, "extra.md", "Extra models", text, "bench/x.py")
    assert path.read_text() == "second\n"
    report = (tmp_path / "report.md").read_text()
    assert report.count("](extra.md)") == 1 and "## Extra models" in report and "bench/x.py" in report


def test_progress_logs_counts_rate_and_eta_when_not_on_a_terminal(caplog, monkeypatch):
    from common import progress as progress_mod

    monkeypatch.setattr(progress_mod, "on_terminal", lambda: False)
    clock = iter([0.0, 10.0, 40.0, 70.0, 80.0])
    monkeypatch.setattr(progress_mod.time, "perf_counter", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="progress"):
        with progress_mod.Progress(4, "scheme a", "updates", every=30.0) as bar:
            for _ in range(3):
                bar.update()  # at 10 s (quiet), 40 s and 70 s (a line each)
    lines = [r.getMessage() for r in caplog.records if r.name == "progress"]
    assert lines == ["scheme a: 2/4 updates in 40 s (0.05/s, ETA 40 s)",
                     "scheme a: 3/4 updates in 70 s (0.04/s, ETA 23 s)",
                     "scheme a: done, 3/4 updates in 80 s (0.04/s, ETA 27 s)"]


def test_progress_lines_are_hidden_from_a_terminal_console_only(monkeypatch):
    from common import progress as progress_mod

    record = logging.LogRecord("progress", logging.INFO, __file__, 1, "x", None, None)
    other = logging.LogRecord("run", logging.INFO, __file__, 1, "x", None, None)
    monkeypatch.setattr(progress_mod, "on_terminal", lambda: True)
    assert not progress_mod.HideOnTerminal().filter(record) and progress_mod.HideOnTerminal().filter(other)
    monkeypatch.setattr(progress_mod, "on_terminal", lambda: False)
    assert progress_mod.HideOnTerminal().filter(record)


def test_config_layers_merge_over_a_named_base_and_checks_name_the_file(tmp_path):
    from common.config import load_layers
    from pipeline.config import load_pipeline_config

    (tmp_path / "base.toml").write_text('[mmcf]\nhidden = 64\nhead = 7\n[run]\nseed = 3\n')
    (tmp_path / "top.toml").write_text('base = "base.toml"\n[mmcf]\nhidden = 32\n')
    merged, layers = load_layers(tmp_path / "top.toml")
    assert merged == {"mmcf": {"hidden": 32, "head": 7}, "run": {"seed": 3}}
    assert [p.name for p, _ in layers] == ["top.toml", "base.toml"]
    cfg = load_pipeline_config(tmp_path / "top.toml")
    assert (cfg.mmcf.hidden, cfg.mmcf.head, cfg.run.seed, cfg.charcnn.epochs) == (32, 7, 3, 3)
    (tmp_path / "base.toml").write_text('[mmfc]\nhidden = 64\n')
    with pytest.raises(PipelineError, match=r"base\.toml: unknown section\(s\) mmfc"):
        load_pipeline_config(tmp_path / "top.toml")
    (tmp_path / "base.toml").write_text('base = "top.toml"\n')
    with pytest.raises(PipelineError, match="cycle"):
        load_pipeline_config(tmp_path / "top.toml")


def test_recall_table_orders_categories_and_depths_by_number_after_a_json_round_trip(tmp_path):
    from common.io import read_json, write_json
    from pipeline.runner import recall_table

    recall = {"recall@100": 0.1, "recall@250": 0.2, "recall@1000": 0.3,
              "per_category": {str(c): {"name": f"c{c}", "recall@100": c / 100, "recall@250": c / 50,
                                        "recall@1000": c / 20} for c in (1, 2, 10)}}
    write_json(tmp_path / "r.json", recall)  # sort_keys: "10" < "2", "recall@1000" < "recall@250"
    lines = recall_table(read_json(tmp_path / "r.json")).splitlines()
    assert lines[0] == "| category | recall@100 | recall@250 | recall@1000 |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["1 c1", "2 c2", "10 c10", "**all**"]
