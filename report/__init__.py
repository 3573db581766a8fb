"""The run report: report.md and PNG plots under OUT/report/."""
