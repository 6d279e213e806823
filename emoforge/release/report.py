"""HTML corpus report: one self-contained page with plots embedded as base64 PNGs.

Sections: overview counts, the corpus by licence and consent (``report_terms``), label
distribution, consensus confidence and entropy histograms,
judge score distributions, agreement of each annotator with the consensus, the review
queue, failures by reason and kind (``report_tables``), agreement statistics with their n,
the cost ledger and the calls the adaptive jury saved (``report_ledger``), and a link to the
clip browser (``clips``), written next to the page.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from emoforge.configs.release import ReleaseConfig
from emoforge.release.clip_card import FONT_FAMILY, review_status
from emoforge.release.clips import DEFAULT_MAX_CLIPS, ClipBrowser, ClipBrowserSummary
from emoforge.release.report_ledger import ledger_section
from emoforge.release.report_tables import agreement_tables, failure_items, failure_table, priority_table
from emoforge.release.report_terms import terms_section
from emoforge.storage.records import SegmentRow, Status
from emoforge.storage.safe_files import write_text
from emoforge.storage.shards import read_manifest, read_rows

_CSS = (
    f"body{{font-family:{FONT_FAMILY};margin:2em;max-width:1100px;color:#222}}"
    "h1{margin-bottom:0}.grid{display:flex;flex-wrap:wrap;gap:1em}"
    "figure{margin:0;border:1px solid #ddd;padding:.5em;border-radius:4px}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
    ".pass{color:#070}.fail{color:#b00}"
)


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _figure(title: str, png: str) -> str:
    return (
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{png}"/>'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


def _table(rows: list[tuple[Any, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


class CorpusReporter:
    """Renders the HTML report of a corpus directory."""

    def __init__(self, config: ReleaseConfig) -> None:
        self.config = config

    def render(self, root: str, rows: list[SegmentRow] | None = None, clips: ClipBrowserSummary | None = None) -> str:
        import matplotlib

        matplotlib.use("Agg")
        rows = list(read_rows(root)) if rows is None else rows
        manifest = read_manifest(root)
        figures = [
            self._bars("Label distribution (consensus; human-verified where reviewed)", self._labels(rows), "segments"),
            self._hist("Consensus confidence", [r.consensus.confidence for r in rows if r.consensus], (0, 1)),
            self._hist("Consensus entropy (bits)", [r.consensus.entropy for r in rows if r.consensus], None),
            self._judges(rows),
            self._annotators(rows),
            self._bars("Review queue", self._queue(rows), "segments"),
            self._bars("Failures by reason", self._failures(rows), "count"),
        ]
        ok = sum(r.status == Status.ok for r in rows)
        overview = _table(
            [
                ("rows", len(rows)),
                ("ok", ok),
                ("failed", len(rows) - ok),
                ("recordings", len({r.recording.id for r in rows})),
                ("flagged for review", sum(bool(r.consensus and r.consensus.needs_review) for r in rows)),
                ("off-domain (a recognizer's input unlike its training data)", _off_domain(rows)),
                ("waiting for review", sum(review_status(r) == "waiting" for r in rows)),
                ("human-verified", sum(review_status(r) == "verified" for r in rows)),
                ("shards", len(manifest.get("shards", []))),
                ("runs", len(manifest.get("runs", []))),
            ]
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>emoforge report</title>"
            f"<style>{_CSS}</style></head><body><h1>Corpus report</h1><p>{html.escape(str(root))}</p>"
            f"<h2>Overview</h2>{overview}{self._clips_link(root, clips)}"
            f"<h2>Licence and consent</h2>{terms_section(rows, self.config.policy)}"
            f"<h2>Label quality against human labels</h2>{self._vs_human(rows)}"
            f"<h2>Plots</h2><div class='grid'>{''.join(figures)}</div>"
            f"<h2>Failures by kind</h2>{failure_table(rows)}"
            f"<h2>Agreement statistics</h2>{agreement_tables(rows, self.config.review)}"
            f"<h2>Did review change the labels it was expected to?</h2>{priority_table(rows, self.config.review)}"
            f"<h2>Is the cited evidence really why?</h2>{self._faithfulness(rows)}"
            f"<h2>Where the calls went</h2>{ledger_section(rows, manifest)}</body></html>"
        )

    def write(self, root: str, out: str | Path, max_clips: int = DEFAULT_MAX_CLIPS) -> Path:
        """The report page, and with ``max_clips`` > 0 the clip browser in ``<out stem>_clips/``."""
        out = Path(out)
        rows = list(read_rows(root))
        folder = out.parent / f"{out.stem}_clips"
        clips = ClipBrowser(self.config.review, max_clips).write(rows, folder) if max_clips > 0 else None
        write_text(out, self.render(root, rows, clips))  # a planted report.html link is replaced, not followed
        return out

    @staticmethod
    def _clips_link(root: str, clips: ClipBrowserSummary | None) -> str:
        if clips is None:
            return "<p>No clip browser with this page (<code>emoforge report --max-clips 0</code>).</p>"
        rel = Path(clips.index).relative_to(Path(clips.index).parents[1]).as_posix()
        missing = f"; {clips.without_media} without media (each says why)" if clips.without_media else ""
        return (
            f"<p><a href='{html.escape(rel, quote=True)}'>Clip browser</a>: {clips.shown} of {clips.total} "
            f"segments with key frames, audio, transcript, jury and review{missing}.</p>"
        )

    # -- data --------------------------------------------------------------------------
    @staticmethod
    def _labels(rows: list[SegmentRow]) -> dict[str, int]:
        from emoforge.release.splits import release_label

        return dict(Counter(release_label(r) or "(none)" for r in rows if r.status == Status.ok))

    @staticmethod
    def _queue(rows: list[SegmentRow]) -> dict[str, int]:
        flagged = [r for r in rows if r.consensus and r.consensus.needs_review]
        return {
            "flagged, verified": sum(review_status(r) == "verified" for r in flagged),
            "flagged, waiting": sum(review_status(r) == "waiting" for r in flagged),
            "not flagged": sum(bool(r.consensus and not r.consensus.needs_review) for r in rows),
        }

    @staticmethod
    def _failures(rows: list[SegmentRow]) -> dict[str, int]:
        return dict(Counter(f"{where}: {kind}" for where, kind, _ in failure_items(rows)))

    # -- plots -------------------------------------------------------------------------
    @staticmethod
    def _bars(title: str, counts: dict[str, int], ylabel: str) -> str:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        items = sorted(counts.items(), key=lambda kv: -kv[1])
        if items:
            names, values = zip(*items, strict=True)
            ax.bar(range(len(names)), values, color="#4c72b0")
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
            for i, v in enumerate(values):
                ax.annotate(str(v), (i, v), ha="center", va="bottom", fontsize=8)
        else:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        return _figure(title, _png(fig))

    @staticmethod
    def _hist(title: str, values: list[float], rng: tuple[float, float] | None) -> str:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        if values:
            ax.hist(values, bins=10, range=rng, color="#55a868", edgecolor="white")
        ax.set_title(f"{title} (n={len(values)})", fontsize=9)
        ax.set_ylabel("segments")
        return _figure(title, _png(fig))

    @staticmethod
    def _judges(rows: list[SegmentRow]) -> str:
        import matplotlib.pyplot as plt

        scores: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            for v in r.verdicts:
                if v.status != Status.ok:  # failed judgements carry placeholder zeros
                    continue
                for key in ("s_rec", "s_reason", "s_cot", "s_final"):
                    scores[key].append(getattr(v, key))
        fig, ax = plt.subplots(figsize=(5, 3.2))
        keys = [k for k in ("s_rec", "s_reason", "s_cot", "s_final") if scores[k]]
        if keys:
            ax.boxplot([scores[k] for k in keys], tick_labels=keys)
        ax.set_ylim(0, 1)
        title = f"Judge score distributions (n={len(scores['s_final'])} ok verdicts)"
        ax.set_title(title, fontsize=9)
        return _figure(title, _png(fig))

    @staticmethod
    def _annotators(rows: list[SegmentRow]) -> str:
        import matplotlib.pyplot as plt
        import numpy as np

        from emoforge.quality.agreement import corpus_agreement

        stats = corpus_agreement(rows).per_annotator
        fig, ax = plt.subplots(figsize=(5, 3.2))
        names = list(stats)
        x = np.arange(len(names))
        acc = [stats[n].accuracy_vs_consensus or 0.0 for n in names]
        kappa = [stats[n].kappa_vs_consensus or 0.0 for n in names]
        ax.bar(x - 0.2, acc, 0.4, label="agreement with consensus")
        ax.bar(x + 0.2, kappa, 0.4, label="Cohen's kappa")
        ax.set_xticks(x, names, fontsize=8)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_ylim(min([0.0, *kappa]) - 0.05, 1.35)  # head room so the legend covers no bar
        ax.legend(fontsize=7, loc="upper center", ncol=2)
        title = "Agreement per annotator (vs consensus)"
        ax.set_title(title, fontsize=9)
        return _figure(title, _png(fig))

    @staticmethod
    def _faithfulness(rows: list[SegmentRow]) -> str:
        """Per annotator: mean sufficiency and necessity of its cited evidence (judge weight d > 0)."""
        from emoforge.agents.judge.faithful import read_faithfulness

        agent_of = {a.id: a.agent for r in rows for a in r.annotations}
        scores: dict[str, list[tuple[float, float]]] = {}
        for r in rows:
            for v in r.verdicts:
                measured = read_faithfulness(v)
                if measured is not None:
                    scores.setdefault(agent_of.get(v.annotation_id, "?"), []).append(measured)
        if not scores:
            return "<p>Not measured: set a judge weight <code>d</code> &gt; 0 (README: the cited evidence).</p>"
        return _table(
            [
                (
                    f"{agent} (sufficiency / necessity, n={len(xs)})",
                    f"{sum(x for x, _ in xs) / len(xs):.2f} / {sum(y for _, y in xs) / len(xs):.2f}",
                )
                for agent, xs in sorted(scores.items())
            ]
        )

    @staticmethod
    def _vs_human(rows: list[SegmentRow]) -> str:
        """Per annotator and for the consensus: accuracy, macro-F1 and ECE on human-verified rows."""
        from emoforge.quality.calibration import calibration_report

        report = calibration_report(rows)
        if not report.n_labelled_segments:
            return "<p>No human-verified rows yet: accuracy against people appears here after a review import.</p>"

        def fmt(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        lines: list[tuple[str, Any]] = [
            (
                f"{name} (accuracy / macro-F1 / ECE)",
                f"{fmt(acc)} / {fmt(report.annotator_macro_f1.get(name))} / {fmt(report.annotator_ece.get(name))}",
            )
            for name, acc in report.annotator_accuracy.items()
        ]
        lines.append(
            (
                "consensus (accuracy / macro-F1 / ECE)",
                f"{fmt(report.aggregator_accuracy.get('consensus'))} / {fmt(report.consensus_macro_f1)} / "
                f"{fmt(report.consensus_ece)}",
            )
        )
        lines.append(("consensus labels no annotator gave", report.consensus_not_given))
        lines.append(("human-verified segments", report.n_labelled_segments))
        return _table(lines)


def _off_domain(rows: list[SegmentRow]) -> str:
    """Segments where some trained recognizer found its input off its training domain, and the share."""
    judged = [r for r in rows if r.consensus is not None]
    far = sum(any(a.domain is not None and a.domain.off_domain for a in r.annotations) for r in judged)
    return f"{far} ({far / len(judged):.0%})" if judged else "0"
