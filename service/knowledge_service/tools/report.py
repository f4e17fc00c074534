"""A self-contained HTML report of a profile comparison: metric table, win/loss and latency plots."""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge_service.pipelines.evaluation.comparison import Comparison, ProfileResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIN, LOSS, TIE = "#2e7d32", "#c62828", "#9e9e9e"
PALETTE = ("#1f77b4", "#ff7f0e")
TOP_QUERIES = 10
_LABELS = {"ndcg@10": "nDCG@10", "mrr@10": "MRR@10"}
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; }
tr.derived td { background: #fafafa; font-style: italic; }
.meta { color: #555; } img { max-width: 100%; }
"""


def render_html(comparison: Comparison, *, title: str, dataset: str) -> str:
    """One self-contained HTML page (inline CSS, plots as base64 PNG) for a comparison."""
    paired = len(comparison.profiles) == 2 and comparison.delta is not None
    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Dataset: {escape(dataset)} &middot; {comparison.profiles[0].queries} '
        f"judged queries{_test_note(comparison) if paired else ''}</p>",
        "<h2>Metrics</h2>",
        _metric_table(comparison),
    ]
    if paired:
        sections += [
            "<h2>Per-query nDCG@10 (candidate minus current)</h2>",
            f'<p class="meta">{comparison.wins} wins, {comparison.losses} losses, '
            f"{comparison.ties} ties.</p>",
            _image(_win_loss_figure(comparison), "per-query nDCG@10 delta, sorted"),
            _query_table(comparison),
        ]
    if any(p.latencies_ms for p in comparison.profiles):
        sections += ["<h2>Latency</h2>", _image(_latency_figure(comparison), "latency histogram")]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def write_report(path: str | Path, html: str) -> Path:
    """Write ``html`` to ``path`` (UTF-8), creating parent folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def _test_note(comparison: Comparison) -> str:
    return (
        f"; p-values from a paired two-sided randomization test ({comparison.permutations} "
        f"sign-flip resamples, seed {comparison.seed})"
    )


def _profile_label(profile: ProfileResult) -> str:
    return profile.name if profile.version is None else f"{profile.name} (v{profile.version})"


def _metric_table(comparison: Comparison) -> str:
    keys = comparison.metric_keys
    head = "".join(f"<th>{escape(_LABELS.get(k, k))}</th>" for k in keys)
    rows = [
        f"<tr><td>{escape(_profile_label(p))}</td>"
        + "".join(f"<td>{p.metrics[k]:.4f}</td>" for k in keys)
        + f"<td>{_ms(p.latency.get('p50_ms'))}</td><td>{_ms(p.latency.get('p99_ms'))}</td></tr>"
        for p in comparison.profiles
    ]
    if comparison.delta is not None and comparison.p_value is not None:
        delta, p_value = comparison.delta, comparison.p_value
        rows.append(
            '<tr class="derived"><td>delta (candidate &minus; current)</td>'
            + "".join(f"<td>{delta[k]:+.4f}</td>" for k in keys)
            + f"<td>{_ms_delta(comparison, 'p50_ms')}</td><td>{_ms_delta(comparison, 'p99_ms')}</td></tr>"
        )
        rows.append(
            '<tr class="derived"><td>p-value</td>'
            + "".join(f"<td>{p_value[k]:.4g}</td>" for k in keys)
            + "<td></td><td></td></tr>"
        )
    return (
        f"<table>\n<thead><tr><th>Profile</th>{head}<th>p50 ms</th><th>p99 ms</th></tr></thead>\n"
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
    )


def _query_table(comparison: Comparison) -> str:
    rows = comparison.per_query
    losses = [r for r in rows if r.delta < 0][:TOP_QUERIES]
    wins = [r for r in reversed(rows) if r.delta > 0][:TOP_QUERIES]
    body = "\n".join(
        f"<tr><td>{escape(r.query_id)}</td><td>{r.a:.4f}</td><td>{r.b:.4f}</td><td>{r.delta:+.4f}</td></tr>"
        for r in losses + wins
    )
    if not body:
        return ""
    return (
        f'<p class="meta">Largest losses, then largest wins (up to {TOP_QUERIES} each).</p>\n'
        "<table>\n<thead><tr><th>Query</th><th>current</th><th>candidate</th><th>delta</th></tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n</table>"
    )


def _ms(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.1f}"


def _ms_delta(comparison: Comparison, key: str) -> str:
    a, b = (p.latency.get(key) for p in comparison.profiles)
    return "" if a is None or b is None else f"{b - a:+.1f}"


def _win_loss_figure(comparison: Comparison) -> Figure:
    from matplotlib.figure import Figure

    deltas = [r.delta for r in comparison.per_query]
    colours = [WIN if d > 0 else LOSS if d < 0 else TIE for d in deltas]
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(range(len(deltas)), deltas, width=1.0, color=colours, linewidth=0)
    ax.axhline(0, color="#444", linewidth=0.8)
    ax.set_xlim(-0.5, len(deltas) - 0.5)
    ax.set_xlabel("queries, sorted by delta")
    ax.set_ylabel("nDCG@10 delta")
    return fig


def _latency_figure(comparison: Comparison) -> Figure:
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.add_subplot()
    series = [(p, np.asarray(p.latencies_ms, dtype=float)) for p in comparison.profiles]
    pooled = np.concatenate([values for _, values in series if values.size])
    bins = np.histogram_bin_edges(pooled, bins=min(40, max(5, pooled.size // 4)))
    handles, labels = [], []
    for (profile, values), colour in zip(series, PALETTE, strict=False):
        if values.size:
            *_, patches = ax.hist(values, bins=bins.tolist(), color=colour, alpha=0.55)
            handles.append(patches[0])  # type: ignore[index]  # one series: a BarContainer
            labels.append(_profile_label(profile).replace("$", r"\$"))  # text, not mathtext
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("queries")
    ax.legend(handles, labels)
    return fig


def _image(fig: Figure, alt: str) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer, metadata={"Software": None})
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{encoded}">'
