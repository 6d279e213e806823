"""One segment of the clip browser as an HTML card: its media, words, cues, jury and review.

Every string from a row (transcripts, rationales, cues, comments, paths, failure messages)
passes through ``esc``: rows carry model and user text, and the page must not run any of it.
"""

from __future__ import annotations

import html
from typing import Any

from emoforge.release.clip_media import ClipMedia, clip_slug
from emoforge.storage.records import Annotation, Features, SegmentRow, Status, Verdict

# Transcripts come in every language the ASR knows (Chinese in the fixtures): name a CJK font
# (scripts/setup.sh installs fonts-noto-cjk) so they render as text, not boxes.
FONT_FAMILY = "sans-serif,'Noto Sans CJK SC','Noto Sans CJK JP','Noto Sans CJK KR'"


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def review_status(row: SegmentRow) -> str:
    """failed, verified (a human label is in), waiting (flagged, no human label yet), or not-flagged."""
    if row.status != Status.ok:
        return "failed"
    if any(h.label for h in row.human):
        return "verified"
    if row.consensus is not None and row.consensus.needs_review:
        return "waiting"
    return "not-flagged"


def agents_agree(row: SegmentRow) -> str:
    """agree / disagree among the annotators' primary labels; none when fewer than two voted."""
    votes = [a.primary_label for a in row.annotations if a.status == Status.ok and a.primary_label]
    if len(votes) < 2:
        return "none"
    return "agree" if len(set(votes)) == 1 else "disagree"


def label_quality(row: SegmentRow) -> float | None:
    """The consensus label-quality score (CROWDLAB) where the shard has one."""
    quality = row.consensus.label_quality if row.consensus else None
    return None if quality is None else quality.score


def render_card(row: SegmentRow, media: ClipMedia, label: str | None, order: int, priority: float | None) -> str:
    """One clip; ``priority`` is its expected label changes per minute of review (None: not queued)."""
    seg, cons = row.segment, row.consensus
    status = review_status(row)
    quality = label_quality(row)
    span = f"{seg.start_s:.2f}–{seg.end_s:.2f} s" if seg else "(no segment)"
    attrs = {
        "data-label": label or "",
        "data-confidence": f"{cons.confidence:.4f}" if cons else "",
        "data-quality": "" if quality is None else f"{quality:.4f}",
        "data-priority": "" if priority is None else f"{priority:.4f}",
        "data-agents": agents_agree(row),
        "data-status": status,
        "data-order": str(order),
    }
    head = (
        f"<header><h2>{esc(row.row_id)}</h2><p class='meta'>{esc(row.recording.uri)} · {esc(span)} · "
        f"<b>{esc(label or '(no label)')}</b> · confidence {fmt(cons.confidence if cons else None)} · "
        f"label quality {fmt(quality)} · review priority {fmt(priority)} changes/min · "
        f"<span class='st {esc(status)}'>{esc(status)}</span></p></header>"
    )
    body = [_media(media)]
    if row.failure is not None:
        body.append(
            f"<p class='fail'>row failed in {esc(row.failure.stage)}: {esc(row.failure.kind.value)}: "
            f"{esc(row.failure.message)}</p>"
        )
    if row.features is not None:
        body += [_transcript(row.features, seg.start_s if seg else 0.0), _cues(row.features)]
    if row.annotations:
        by_ann: dict[str, list[Verdict]] = {}
        for v in row.verdicts:
            by_ann.setdefault(v.annotation_id, []).append(v)
        cards = "".join(_annotation(a, by_ann.get(a.id, [])) for a in row.annotations)
        body.append(
            f"<section><h3>Jury ({len(row.annotations)} annotations)</h3><div class='jury'>{cards}</div></section>"
        )
    body += [_consensus(row), _review(row, status)]
    joined = "".join(body)
    props = " ".join(f'{k}="{esc(v)}"' for k, v in attrs.items())
    return f"<article class='clip' id='{esc(clip_slug(row.row_id))}' {props}>{head}{joined}</article>"


def _media(media: ClipMedia) -> str:
    frames = "".join(
        f"<figure><img loading='lazy' src='{esc(f.path)}' alt='frame at {f.t_s:.2f} s'/>"
        f"<figcaption>{f.t_s:.2f} s ({esc(f.reason)})</figcaption></figure>"
        for f in media.frames
    )
    audio = f"<audio controls preload='metadata' src='{esc(media.audio)}'></audio>" if media.audio else ""
    notes = "".join(f"<p class='missing'>{esc(n)}</p>" for n in media.notes)
    return f"<div class='media'><div class='frames'>{frames}</div>{audio}{notes}</div>"


def _transcript(features: Features, offset: float) -> str:
    t = features.transcript
    if t is None:
        return "<section><h3>Transcript</h3><p>none</p></section>"
    flags = f" · unreliable: {esc(', '.join(t.unreliable_reasons))}" if not t.reliable else ""
    if t.words:
        # data-t is the time inside the snippet (which starts at the segment start): a click seeks there.
        words = " ".join(
            f"<span class='w' data-t='{max(0.0, w.start_s - offset):.2f}' "
            f"title='{w.start_s:.2f}–{w.end_s:.2f} s{esc(f' · {w.speaker}' if w.speaker else '')}'>{esc(w.text)}"
            f"<sup>{w.start_s:.2f}</sup></span>"
            for w in t.words
        )
    else:
        words = esc(t.text)
    lang = f"{t.language or '?'}, word timing {t.word_timing}"
    return f"<section><h3>Transcript <small>({esc(lang)}{flags})</small></h3><p class='words'>{words}</p></section>"


def _cues(features: Features) -> str:
    rows: list[tuple[str, str]] = []
    ev = features.evidence
    face = features.face
    if face is not None:
        aus = sorted(face.au_mean.items(), key=lambda kv: -kv[1])[:4]
        detail = f"face in {face.frames_with_face}/{face.frames_sampled} frames"
        if aus:
            detail += "; AUs " + ", ".join(f"{k} {v:.2f}" for k, v in aus)
        rows.append(("face", f"{ev.face or ''} ({detail})"))
    p = features.prosody
    if p is not None:
        measured = [
            (p.f0_mean_hz, "F0 {:.0f} Hz"),
            (p.intensity_mean_db, "intensity {:.1f} dB"),
            (p.voiced_fraction, "voiced {:.2f}"),
            (p.speech_rate_wps, "{:.1f} words/s"),
            (p.pause_count, "{} pauses"),
        ]
        detail = ", ".join(form.format(v) for v, form in measured if v is not None)
        rows.append(("voice", f"{ev.voice or ''} ({detail or 'no measures'})"))
    if ev.text:
        rows.append(("text", ev.text))
    for failure in features.failures:
        rows.append((f"{failure.stage} failed", f"{failure.kind.value}: {failure.message}"))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v.strip())}</td></tr>" for k, v in rows)
    return f"<section><h3>Cues</h3><table>{body or '<tr><td>none</td></tr>'}</table></section>"


def _annotation(a: Annotation, verdicts: list[Verdict]) -> str:
    model = f", {a.provenance.model}" if a.provenance.model else ""
    who = f"{esc(a.agent)} <small>({esc(a.backend)}{esc(model)})</small>"
    if a.status != Status.ok:
        why = f"{a.failure.kind.value}: {a.failure.message}" if a.failure else a.status.value
        return f"<div class='ann failed'><h4>{esc(a.agent)}</h4><p class='fail'>failed: {esc(why)}</p></div>"
    label = esc(a.primary_label or "(none)") + (f" <small>{esc(', '.join(a.labels))}</small>" if a.labels else "")
    scales = (
        f"confidence {fmt(a.confidence)} · intensity {fmt(a.intensity)} · valence {fmt(a.valence)} · "
        f"arousal {fmt(a.arousal)}"
    )
    steps = "".join(f"<li>{esc(s)}</li>" for s in a.rationale)
    cues = "".join(
        f"<li>[{esc(c.modality)}] {esc(c.cue)}"
        + (f" ({fmt(c.start_s)}–{fmt(c.end_s)} s)" if c.start_s is not None else "")
        + (f" <code>{esc(c.feature)}={fmt(c.value)}</code>" if c.feature else "")
        + "</li>"
        for c in a.evidence
    )
    scores = "".join(
        f"<tr><td>{esc(v.judge)}</td>"
        + (
            f"<td colspan='4' class='fail'>failed: {esc(v.failure.kind.value if v.failure else v.status.value)}</td>"
            if v.status != Status.ok
            else "".join(f"<td>{getattr(v, k):.2f}</td>" for k in ("s_rec", "s_reason", "s_cot", "s_final"))
        )
        + "</tr>"
        for v in verdicts
    )
    notes = "".join(f"<li>{esc(v.judge)}: {esc(n)}</li>" for v in verdicts for n in v.notes)
    judged = (
        "<table class='scores'><tr><th>judge</th><th>S_rec</th><th>S_reason</th><th>S_cot</th><th>S_final</th>"
        f"</tr>{scores}</table>" + (f"<ul class='notes'>{notes}</ul>" if notes else "")
        if verdicts
        else "<p>not judged</p>"
    )
    return (
        f"<div class='ann'><h4>{who}: {label}</h4><p>{scales}</p><ol class='steps'>{steps}</ol>"
        f"<p>evidence:</p><ul>{cues or '<li>none cited</li>'}</ul>{judged}</div>"
    )


def _consensus(row: SegmentRow) -> str:
    c = row.consensus
    if c is None:
        return "<section><h3>Consensus</h3><p>none</p></section>"
    bars = "".join(
        f"<tr><td>{esc(k)}</td><td><span class='bar' style='width:{100 * p:.0f}px'></span> {p:.2f}</td></tr>"
        for k, p in sorted(c.distribution.items(), key=lambda kv: -kv[1])
    )
    quality = c.label_quality
    q = f" · label quality {quality.score:.2f} ({esc(quality.method)}, {esc(quality.scope)})" if quality else ""
    return (
        f"<section><h3>Consensus <small>({esc(c.method)}: {esc(c.primary_label or '(none)')}, entropy "
        f"{c.entropy:.2f} bits, agreement {fmt(c.agreement)}, {c.n_valid}/{c.n_annotations} valid{q})</small></h3>"
        f"<table class='dist'>{bars}</table></section>"
    )


def _review(row: SegmentRow, status: str) -> str:
    reasons = row.consensus.review_reasons if row.consensus else []
    why = ", ".join(reasons) or "none"
    humans = "".join(
        f"<li>{esc(h.reviewer)}: <b>{esc(h.label or '(no label)')}</b> at {esc(h.reviewed_at.isoformat())}"
        + (f" ({esc(h.comment)})" if h.comment else "")
        + "</li>"
        for h in sorted(row.human, key=lambda h: h.reviewed_at)
    )
    return (
        f"<section><h3>Review: {esc(status)}</h3><p>reasons: {esc(why)}</p>"
        f"{f'<ul>{humans}</ul>' if humans else ''}</section>"
    )
