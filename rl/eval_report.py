"""Human-readable forms of an evaluation summary (`EvalReport.summary()`): a markdown table and
a plot of accuracy against the number of samples N for greedy, majority vote and RM reranking.

matplotlib is imported inside `plot_accuracy_vs_n` (with the file-only Agg backend), so the
evaluation code imports without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Column order and labels of the at-k metrics (rl.selection.at_k's names).
METRICS = {"pass": "pass@k", "maj": "maj@k", "rm": "rm@k (best-of-k)", "rm_vote": "rm_vote@k (RM-weighted vote)"}


def curves(summary: dict[str, Any]) -> dict[str, dict[int, float]]:
    """`at_k` regrouped as metric -> {k: value}, metrics in `METRICS` order."""
    table: dict[str, dict[int, float]] = {}
    for name, value in summary.get("at_k", {}).items():
        metric, _, k = name.rpartition("@")
        table.setdefault(metric, {})[int(k)] = value
    return {m: dict(sorted(table[m].items())) for m in METRICS if m in table}


def markdown(summary: dict[str, Any], title: str = "Evaluation") -> str:
    lines = [f"# {title}", ""]
    if "model" in summary:
        lines += [f"model: `{summary['model']}`  ", f"data: `{summary.get('data', '')}`", ""]
    lines.append(f"Greedy accuracy: **{summary['accuracy']:.1%}** on {summary['num_problems']} problems"
                 f" ({summary['timeouts']} verifier timeouts).")
    table = curves(summary)
    if table:
        ks = sorted({k for values in table.values() for k in values})
        lines += ["", f"N = {summary['samples']} samples per problem; each metric uses the first k of them.", ""]
        lines += _table(["k", *(METRICS[m] for m in table)], [[str(k), *(_pct(table[m].get(k)) for m in table)] for k in ks])
    for key, groups in summary.get("breakdown", {}).items():
        metrics = [m for m in next(iter(groups.values()), {}) if m != "problems"]
        lines += ["", f"## By {key}", ""]
        rows = [[name, str(int(values["problems"])), *(_pct(values.get(m)) for m in metrics)] for name, values in groups.items()]
        lines += _table([key, "problems", *metrics], rows)
    return "\n".join(lines) + "\n"


def plot_accuracy_vs_n(summary: dict[str, Any], path: str | Path, title: str | None = None) -> Path | None:
    """Accuracy against N (log2 axis): greedy as a flat line, maj@N, rm@N, rm_vote@N, and
    pass@N (dotted: an upper bound, not a selection method). None when there is nothing
    sampled to plot (greedy-only evaluation)."""
    table = curves(summary)
    if not table:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ks = sorted({k for values in table.values() for k in values})
    ax.axhline(summary["accuracy"], color="grey", linestyle="--", label="greedy")
    styles = {"pass": dict(linestyle=":", color="black"), "maj": dict(marker="o"), "rm": dict(marker="s"), "rm_vote": dict(marker="^")}
    for metric, values in table.items():
        ax.plot(list(values), list(values.values()), label=METRICS[metric].split(" ")[0].replace("@k", "@N"), **styles[metric])
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("N (samples per problem)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or f"{summary['num_problems']} problems")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"
