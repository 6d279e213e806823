"""Build SegmentRows directly (fast) for release tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from emoforge.storage.records import (
    Annotation,
    Consensus,
    Cue,
    ErrorKind,
    FaceObservation,
    Failure,
    Features,
    HumanLabel,
    Prosody,
    RecordingRef,
    RunContext,
    Segment,
    SegmentRow,
    Status,
    Terms,
    Transcript,
    Verdict,
)

CTX = RunContext(run_id="run-test", config_hash="cafe0123", emoforge_version="0.1.0")
TAXONOMY = ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"]
AGENTS = ("face", "voice", "text")
# Rows are publishable unless a test says otherwise: release.policy withholds unknown terms.
PUBLISHED = Terms(licence="CC-BY-4.0", consent="publish")


def make_row(
    rec: str,
    index: int,
    label: str | None = "happy",
    *,
    source: str | None = "src",
    speaker: str | None = None,
    votes: tuple[str | None, ...] | None = None,
    needs_review: bool = False,
    confidence: float = 0.8,
    intensity: float | None = 0.5,
    valence: float | None = 0.3,
    judge_scores: tuple[float, ...] = (0.7, 0.6, 0.5),
    human: list[HumanLabel] | None = None,
    failed: bool = False,
    uri: str | None = None,
    sha256: str | None = None,
    terms: Terms = PUBLISHED,
) -> SegmentRow:
    seg_id = f"{rec}-{index:05d}"
    # Distinct media per recording unless a test says otherwise (splits group by content hash).
    digest = sha256 or hashlib.sha256(rec.encode()).hexdigest()
    ref = RecordingRef(
        id=rec,
        uri=uri or f"/media/{rec}.mp4",
        sha256=digest,
        duration_s=60.0,
        source=source,
        speaker=speaker,
        terms=terms,
    )
    if failed:
        return SegmentRow(
            row_id=seg_id,
            run_id=CTX.run_id,
            status=Status.failed,
            recording=ref,
            segment=Segment(
                id=seg_id, recording_id=rec, index=index, start_s=index * 2.0, end_s=index * 2.0 + 1.5, kind="speech"
            ),
            failure=Failure(stage="asr", kind=ErrorKind.no_speech, message="silence"),
            config_hash=CTX.config_hash,
        )
    votes = votes if votes is not None else (label, label, label)
    anns, verdicts = [], []
    for agent, vote, score in zip(AGENTS, votes, judge_scores, strict=False):
        ann_id = f"{seg_id}-{agent}"
        if vote is None:
            anns.append(
                Annotation(
                    id=ann_id,
                    segment_id=seg_id,
                    agent=agent,
                    backend=f"{agent}_cues",
                    status=Status.failed,
                    failure=Failure(stage="annotate", kind=ErrorKind.refusal, message="refused"),
                    provenance=CTX.provenance("annotate", model=f"{agent}-rules", prompt_version="v1"),
                )
            )
            continue
        anns.append(
            Annotation(
                id=ann_id,
                segment_id=seg_id,
                agent=agent,
                backend=f"{agent}_cues",
                labels=[vote],
                primary_label=vote,
                confidence=0.7,
                intensity=intensity,
                valence=valence,
                rationale=[f"Step 1: the {agent} shows {vote} cues.", f"Step 2: so the label is {vote}."],
                evidence=[Cue(modality=agent, cue=f"{agent} cue")],
                provenance=CTX.provenance("annotate", model=f"{agent}-rules", prompt_version="v1"),
            )
        )
        verdicts.append(
            Verdict(
                id=f"{ann_id}-rules",
                annotation_id=ann_id,
                judge="rules",
                s_rec=score,
                s_reason=score,
                s_cot=score,
                s_final=score,
                weights=[0.4, 0.3, 0.3],
                provenance=CTX.provenance("judge", model="rules"),
            )
        )
    consensus = Consensus(
        segment_id=seg_id,
        method="weighted",
        primary_label=label,
        labels=[label] if label else [],
        distribution={label: confidence} if label else {},
        confidence=confidence if label else 0.0,
        entropy=0.5,
        agreement=0.67,
        intensity=intensity,
        valence=valence,
        n_annotations=len(anns),
        n_valid=sum(a.status == Status.ok for a in anns),
        needs_review=needs_review,
        review_reasons=["low_confidence"] if needs_review else [],
        provenance=CTX.provenance("aggregate", model="weighted"),
    )
    features = Features(
        segment_id=seg_id,
        transcript=Transcript(text=f"words of {seg_id}", language="en"),
        prosody=Prosody(voiced_fraction=0.6),
        face=FaceObservation(frames_sampled=4, frames_with_face=4),
    )
    return SegmentRow(
        row_id=seg_id,
        run_id=CTX.run_id,
        status=Status.ok,
        recording=ref,
        segment=Segment(
            id=seg_id, recording_id=rec, index=index, start_s=index * 2.0, end_s=index * 2.0 + 1.5, kind="speech"
        ),
        features=features,
        annotations=anns,
        verdicts=verdicts,
        consensus=consensus,
        human=human or [],
        config_hash=CTX.config_hash,
    )


def failed_judgement(verdict: Verdict, annotation_id: str, judge: str = "llm") -> Verdict:
    """``verdict`` turned into a judge's failed (timed-out) judgement of ``annotation_id``."""
    return verdict.model_copy(
        update={
            "id": f"{annotation_id}-{judge}",
            "annotation_id": annotation_id,
            "judge": judge,
            "status": Status.failed,
            "s_rec": 0.0,
            "s_reason": 0.0,
            "s_cot": 0.0,
            "s_final": 0.0,
            "failure": Failure(stage="judge", kind=ErrorKind.timeout, message="slow"),
        }
    )


def human(label: str, reviewer: str = "ann@example.org", day: int = 1, **kw: object) -> HumanLabel:
    return HumanLabel(
        reviewer=reviewer,
        label=label,
        labels=[label],
        reviewed_at=datetime(2026, 1, day, tzinfo=UTC),
        source=f"test#{reviewer}-{day}-{label}",
        **kw,
    )


def write_corpus(root: str, rows: list[SegmentRow]) -> str:
    from emoforge.configs import config_hash, load_config
    from emoforge.storage.shards import CorpusWriter

    cfg = load_config()
    writer = CorpusWriter(
        root, cfg.storage, CTX.run_id, resolved_config=cfg.model_dump(mode="json"), config_hash=config_hash(cfg)
    )
    writer.write(rows)
    writer.close({"rows": len(rows)})
    return root
