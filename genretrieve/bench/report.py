"""Write a benchmark report to a folder: report.md, report.json and one bar plot (PNG)."""
from __future__ import annotations

import json
from pathlib import Path


def write_report(out_dir: str | Path, report: dict, markdown: str, plot: str, bars: dict[str, float],
                 ylabel: str, title: str, color: str = "#4477aa", ylim: float | None = 1.0) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(f"{markdown}\n![{ylabel}]({plot})\n")
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(bars)), 3.2))
    ax.bar_label(ax.bar(list(bars), list(bars.values()), color=color), fmt="%.3g", fontsize=8)
    if ylim is not None:
        ax.set_ylim(0, ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    fig.savefig(out / plot, dpi=120)
    plt.close(fig)
    return [out / "report.md", out / "report.json", out / plot]
