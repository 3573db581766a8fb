"""OUT/report/report.md and its plots, from what the stages recorded."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.io import atomic_path
from report import plots
from report.tables import metrics_table, simple_table


@dataclass
class ReportInputs:
    title: str
    config_path: str
    dataset: dict  # the artifacts manifest
    val: dict[str, dict]  # model -> summarize() on validation playlists
    test: dict[str, dict] = field(default_factory=dict)  # model -> summarize() on the challenge (truth known)
    timings: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[dict]] = field(default_factory=dict)  # curve name -> epochs
    importance: dict[str, float] = field(default_factory=dict)
    recall: str = ""  # markdown table of candidate recall
    notes: list[str] = field(default_factory=list)
    final: str = ""


def write_report(folder: Path, r: ReportInputs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    md = [f"# {r.title}", "", f"Config: `{r.config_path}`. Submission model: **{r.final}**.", ""]
    md += ["## Dataset", "", _dataset_table(r.dataset), ""]
    if r.test:
        plots.per_category_bars(r.test, "test (local challenge set) metrics per category", folder / "test_metrics.png")
        md += ["## Test metrics (local challenge set, truth known)", "", metrics_table(r.test), "",
               "![test metrics](test_metrics.png)", ""]
    plots.per_category_bars(r.val, "validation metrics per category", folder / "val_metrics.png")
    md += ["## Validation metrics", "", metrics_table(r.val), "", "![validation metrics](val_metrics.png)", ""]
    if r.recall:
        md += ["## Candidate recall", "", r.recall, ""]
    if r.curves:
        plots.training_curves(r.curves, folder / "training_curves.png")
        md += ["## Training curves", "", "![training curves](training_curves.png)", ""]
    if r.importance:
        plots.horizontal_bars(r.importance, "reranker feature importance (gain)", "gain", folder / "feature_importance.png")
        md += ["## Reranker feature importance", "", "![feature importance](feature_importance.png)", ""]
    if r.timings:
        plots.horizontal_bars(r.timings, "stage wall time", "seconds", folder / "timings.png")
        rows = [[k, f"{v:.1f}"] for k, v in r.timings.items()] + [["total", f"{sum(r.timings.values()):.1f}"]]
        md += ["## Stage timings", "", simple_table(["stage", "seconds"], rows), "", "![timings](timings.png)", ""]
    md += [f"- {n}" for n in r.notes]
    path = folder / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(md) + "\n")
    return path


def _dataset_table(manifest: dict) -> str:
    counts = manifest.get("counts", {})
    rows = [[k, f"{v:,}" if isinstance(v, int) else v] for k, v in counts.items() if not isinstance(v, (dict, list))]
    return simple_table(["quantity", "value"], rows) if rows else "(no counts recorded)"


def attach_section(folder: Path, filename: str, heading: str, text: str, writer: str) -> Path:
    """Write a bench's write-up beside a run's report.md and link it from there once, so figures
    that a bench computes on a finished run (ablations, extra models) live with that run's report."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    main = folder / "report.md"
    if main.exists() and f"]({filename})" not in main.read_text():
        with open(main, "a") as fh:
            fh.write(f"\n## {heading}\n\nSee [{filename}]({filename}) (written by {writer}).\n")
    return path
