"""Hypothesis strategies that build valid records, shared by storage tests."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from emoforge.storage.records import (
    Annotation,
    AUFrame,
    Consensus,
    Cue,
    ErrorKind,
    Evidence,
    FaceObservation,
    Failure,
    Features,
    KeyFrame,
    LabelQuality,
    Prosody,
    Provenance,
    RecordingRef,
    Segment,
    SegmentRow,
    Status,
    Terms,
    Transcript,
    Usage,
    Verdict,
    Word,
)

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
terms = st.builds(
    Terms,
    licence=st.none() | text,
    consent=st.sampled_from(["publish", "research", "none", "unknown"]),
    attribution=st.none() | text,
    source_url=st.none() | text,
)
ident = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
unit = st.floats(0, 1, allow_nan=False)
secs = st.floats(0, 1e5, allow_nan=False, allow_infinity=False)
maybe = st.none
stamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1 * 1)
)
floatmap = st.dictionaries(ident, st.floats(-10, 10, allow_nan=False), max_size=4)

provenance = st.builds(
    Provenance,
    stage=ident,
    model=st.none() | ident,
    prompt_version=st.none() | ident,
    config_hash=ident,
    emoforge_version=ident,
    created_at=stamps,
)
failure = st.builds(Failure, stage=ident, kind=st.sampled_from(list(ErrorKind)), message=text)


@st.composite
def segments(draw: st.DrawFn, rec_id: str = "rec-0123456789") -> Segment:
    start = draw(secs)
    length = draw(st.floats(0.01, 600, allow_nan=False))
    idx = draw(st.integers(0, 99999))
    return Segment(
        id=f"{rec_id}-{idx:05d}",
        recording_id=rec_id,
        index=idx,
        start_s=start,
        end_s=start + length,
        kind=draw(st.sampled_from(["speech", "visual", "full"])),
        shot_index=draw(st.none() | st.integers(0, 50)),
        speaker=draw(st.none() | ident),
    )


features = st.builds(
    Features,
    segment_id=ident,
    transcript=st.none()
    | st.builds(
        Transcript,
        text=text,
        language=st.none() | ident,
        words=st.lists(st.builds(Word, text=text, start_s=secs, end_s=secs), max_size=3),
        word_timing=st.sampled_from(["aligned", "asr", "none"]),
        reliable=st.booleans(),
        unreliable_reasons=st.lists(ident, max_size=2),
    ),
    prosody=st.none() | st.builds(Prosody, f0_mean_hz=st.none() | secs, pause_count=st.none() | st.integers(0, 9)),
    face=st.none()
    | st.builds(
        FaceObservation,
        frames_sampled=st.integers(0, 9),
        au_backend=st.sampled_from(["landmark", "pyfeat", "none"]),
        au_mean=floatmap,
        au_frames=st.lists(st.builds(AUFrame, t_s=secs, values=floatmap), max_size=2),
    ),
    keyframes=st.lists(
        st.builds(KeyFrame, t_s=secs, score=unit, reason=ident, jpeg=st.none() | st.binary(max_size=16)), max_size=2
    ),
    evidence=st.builds(Evidence, face=st.none() | text, voice=st.none() | text),
    failures=st.lists(failure, max_size=2),
    provenance=st.lists(provenance, max_size=2),
)


@st.composite
def annotations(draw: st.DrawFn, seg_id: str) -> Annotation:
    agent = draw(ident)
    ok = draw(st.booleans())
    labels = draw(st.lists(ident, max_size=3)) if ok else []
    return Annotation(
        id=f"{seg_id}-{agent}",
        segment_id=seg_id,
        agent=agent,
        backend=draw(ident),
        status=Status.ok if ok else Status.failed,
        failure=None if ok else draw(failure),
        labels=labels,
        primary_label=labels[0] if labels else None,
        label_scores=draw(floatmap) if ok else {},
        confidence=draw(st.none() | unit),
        valence=draw(st.none() | st.floats(-1, 1)),
        rationale=draw(st.lists(text, max_size=3)),
        evidence=draw(
            st.lists(
                st.builds(
                    Cue,
                    modality=st.sampled_from(["face", "voice", "text", "visual", "context"]),
                    cue=text,
                    start_s=st.none() | secs,
                    value=st.none() | st.floats(-1e3, 1e3),
                ),
                max_size=2,
            )
        ),
        usage=draw(
            st.builds(Usage, input_tokens=st.integers(0, 10**6), cost_usd=st.floats(0, 10), cached=st.booleans())
        ),
        provenance=draw(provenance),
    )


@st.composite
def rows(draw: st.DrawFn) -> SegmentRow:
    seg = draw(segments())
    anns = draw(st.lists(annotations(seg.id), max_size=3, unique_by=lambda a: a.id))
    verdicts = [
        Verdict(
            id=f"{a.id}-judge",
            annotation_id=a.id,
            judge="judge",
            s_rec=draw(unit),
            s_reason=draw(unit),
            s_cot=draw(unit),
            s_final=draw(unit),
            weights=[0.4, 0.3, 0.3],
            provenance=draw(provenance),
        )
        for a in anns
    ]
    consensus = draw(
        st.none()
        | st.builds(
            Consensus,
            segment_id=st.just(seg.id),
            method=ident,
            primary_label=st.none() | ident,
            distribution=floatmap,
            confidence=unit,
            entropy=st.floats(0, 5),
            n_annotations=st.integers(0, 5),
            n_valid=st.integers(0, 5),
            needs_review=st.booleans(),
            review_reasons=st.lists(ident, max_size=2),
            provenance=provenance,
            label_quality=st.none()
            | st.builds(
                LabelQuality,
                score=unit,
                method=ident,
                scope=st.sampled_from(["segment", "corpus"]),
                fitted_rows=st.none() | st.integers(0, 10**6),
            ),
        )
    )
    failed = draw(st.booleans())
    return SegmentRow(
        row_id=seg.id,
        run_id=draw(ident),
        status=Status.failed if failed else Status.ok,
        failure=draw(failure) if failed else None,
        recording=RecordingRef(
            id=seg.recording_id,
            uri=draw(text),
            sha256="ab" * 32,
            segment_count=draw(st.none() | st.integers(0, 9)),
            terms=draw(terms),
        ),
        segment=seg,
        features=draw(st.none() | features),
        annotations=anns,
        verdicts=verdicts,
        consensus=consensus,
        config_hash=draw(ident),
        written_at=draw(stamps),
    )
