"""Tables of the corpus report: failures by kind with an example, and agreement with n.

Counted failures skip the judge's echo of a failed annotation: the judge writes a failed
verdict (``invalid_input``, "annotation ... failed") for every annotation that had already
failed, so counting both would show one refusal twice, once under a judge that did nothing
wrong.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterator
from typing import Any

from emoforge.configs.release import ReviewConfig
from emoforge.storage.records import SegmentRow, Status, phase_of


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def failure_items(rows: list[SegmentRow]) -> Iterator[tuple[str, str, str]]:
    """(where, kind, message) of every failure a row holds, judge echoes left out."""
    for r in rows:
        if r.failure:
            yield f"row {phase_of(r.failure.stage)}", r.failure.kind.value, r.failure.message
        failed_annotations = {a.id for a in r.annotations if a.status != Status.ok}
        for a in r.annotations:
            if a.failure:
                yield f"agent {a.agent}", a.failure.kind.value, a.failure.message
        for v in r.verdicts:
            if v.failure and v.annotation_id not in failed_annotations:
                yield f"judge {v.judge}", v.failure.kind.value, v.failure.message


def failure_table(rows: list[SegmentRow]) -> str:
    """Where, kind, count and the first message seen, most frequent first."""
    counts: Counter[tuple[str, str]] = Counter()
    example: dict[tuple[str, str], str] = {}
    for where, kind, message in failure_items(rows):
        counts[(where, kind)] += 1
        example.setdefault((where, kind), message)
    if not counts:
        return "<p>No failures.</p>"
    body = "".join(
        f"<tr><td>{_e(where)}</td><td>{_e(kind)}</td><td>{n}</td><td>{_e(example[(where, kind)][:300])}</td></tr>"
        for (where, kind), n in counts.most_common()
    )
    return f"<table><tr><th>where</th><th>kind</th><th>count</th><th>example</th></tr>{body}</table>"


def priority_table(rows: list[SegmentRow], review: ReviewConfig) -> str:
    """Labels human review changed per review-priority decile: an ordering that works puts
    most changes in the first deciles (``emoforge/quality/review_priority.py``)."""
    from emoforge.quality.review_priority import priority_deciles

    report = priority_deciles(rows, review)
    if not report.rows:
        return "<p>No aggregated rows to rank.</p>"
    body = "".join(
        f"<tr><td>{d.decile}</td><td>{d.rows}</td><td>{d.minutes:.1f}</td><td>{d.expected_changes:.1f}</td>"
        f"<td>{d.reviewed}</td><td>{d.changed}</td><td>{_f(d.change_rate)}</td></tr>"
        for d in report.deciles
    )
    return (
        f"<p>{report.changed} of {report.reviewed} human-reviewed rows changed their consensus label; "
        f"{report.rows} rows ranked by expected label changes per minute of review (decile 1 first).</p>"
        "<table><tr><th>decile</th><th>rows</th><th>review minutes</th><th>expected changes</th>"
        f"<th>reviewed</th><th>changed</th><th>change rate</th></tr>{body}</table>"
    )


def _stat_table(lines: list[tuple[str, str, int | str, str]]) -> str:
    body = "".join(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td>{_e(n)}</td><td>{_e(c)}</td></tr>" for a, b, n, c in lines)
    return f"<table><tr><th>statistic</th><th>value</th><th>n</th><th>note</th></tr>{body}</table>"


def agreement_tables(rows: list[SegmentRow], review: ReviewConfig) -> str:
    """Inter-annotator, annotator-vs-consensus and machine-vs-human agreement, computed from the rows."""
    from emoforge.quality.agreement import corpus_agreement

    report = corpus_agreement(rows, human_review=review)
    if not report.n_segments:
        return "<p>No segment has a valid annotation yet.</p>"
    n = report.n_segments
    lines: list[tuple[str, str, int | str, str]] = [
        ("Krippendorff's alpha, labels (nominal)", _f(report.alpha.get("label_nominal")), n, "segments"),
        ("Fleiss' kappa, labels", _f(report.fleiss_kappa), n, "segments"),
    ]
    scales = {k: v for k, v in report.alpha.items() if k != "label_nominal"}
    lines += [(f"Krippendorff's alpha, {k}", _f(v), n, "segments") for k, v in scales.items()]
    lines += [(f"Cohen's kappa, {p.a} vs {p.b}", _f(p.kappa), p.n, "segments both labelled") for p in report.pairs]
    lines += [
        (f"alpha where {m} is present", _f(s.alpha_nominal), s.n_segments, f"Fleiss' kappa {_f(s.fleiss_kappa)}")
        for m, s in report.per_modality.items()
    ]
    per_agent = "".join(
        f"<tr><td>{_e(agent)}</td><td>{s.n}</td><td>{s.failed}</td><td>{_f(s.accuracy_vs_consensus)}</td>"
        f"<td>{_f(s.kappa_vs_consensus)}</td></tr>"
        for agent, s in report.per_annotator.items()
    )
    parts = [
        "<h3>Between annotators</h3>",
        _stat_table(lines),
        "<h3>Each annotator against the consensus</h3><table><tr><th>annotator</th><th>n labelled</th>"
        f"<th>failed</th><th>agreement</th><th>Cohen's kappa</th></tr>{per_agent}</table>",
    ]
    if report.human:
        parts += ["<h3>Machines against human labels</h3>", _stat_table(_human_lines(report.human))]
    return "".join(parts)


def _human_lines(human: dict[str, Any]) -> list[tuple[str, str, int | str, str]]:
    thresholds = human.get("thresholds", {})
    passed = human.get("passed", {})

    def verdict(key: str, threshold: str) -> str:
        ok = passed.get(key)
        mark = "n/a (too few pairs)" if ok is None else ("PASS" if ok else "FAIL")
        return f"{mark}: near-expert above {thresholds.get(threshold, '?')}"

    vs = human["vs_consensus"]
    lines: list[tuple[str, str, int | str, str]] = [
        ("consensus: exact agreement", _f(vs.get("accuracy")), vs["n"], "rows verified"),
        ("consensus: Cohen's kappa", _f(vs.get("kappa")), vs["n"], verdict("kappa_vs_consensus", "kappa")),
        ("consensus: Krippendorff's alpha", _f(vs.get("alpha")), vs["n"], ""),
    ]
    for agent, s in human.get("vs_agents", {}).items():
        exact = f"exact agreement {_f(s.get('accuracy'))}"
        lines.append((f"{agent}: Cohen's kappa", _f(s.get("kappa")), s["n"], exact))
    for scale in ("intensity", "valence"):
        s = human[scale]
        lines.append((f"{scale}: ICC(2,1)", _f(s.get("icc")), s["n"], verdict(f"icc_{scale}", "icc")))
        lines.append((f"{scale}: Spearman's rho", _f(s.get("spearman")), s["n"], ""))
    return lines
