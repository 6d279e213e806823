"""A simulated labelled corpus: faces whose AUs show the true emotion, and four annotators of
known accuracy whose rationales cite the AUs of the label they chose (so wrong answers make
claims the features contradict). The offline judge and consensus builder really run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from emoforge.agents.judge import Judge
from emoforge.agents.providers import vote_sources
from emoforge.configs.quality import AggregationConfig, JudgeConfig
from emoforge.configs.storage import StorageConfig
from emoforge.quality.consensus import ConsensusBuilder
from emoforge.storage.records import (
    Annotation,
    Cue,
    FaceObservation,
    Features,
    HumanLabel,
    RecordingRef,
    Segment,
    SegmentRow,
    Status,
)
from emoforge.storage.shards import CorpusWriter

from .records import CTX

LABELS = ["angry", "happy", "neutral", "sad"]
AUS = {
    "happy": {"AU06": 0.6, "AU12": 0.8},
    "sad": {"AU01": 0.5, "AU04": 0.45, "AU15": 0.6},
    "angry": {"AU04": 0.7, "AU07": 0.6, "AU23": 0.5, "AU05": 0.4},
    "neutral": {},
}
REASONS = {
    "happy": ("Step 1: A clear smile (AU12) with raised cheeks (AU6).", "AU12"),
    "sad": ("Step 1: The lip corners are depressed (AU15) and the inner brows raised (AU1).", "AU15"),
    "angry": ("Step 1: The brows are lowered (AU4) and the lids tightened (AU7).", "AU4"),
    "neutral": ("Step 1: There is no smile and no frown (AU4); the face is relaxed.", None),
}
ACCURACY = {"good": 0.9, "fair": 0.7, "poor": 0.45, "constant": None}  # constant always says neutral


def _features(segment_id: str, truth: str, strength: float) -> Features:
    # Weak expressions (strength < ~0.5) put AUs between the judge's thresholds: unverifiable.
    shown = {k: v * strength for k, v in AUS[truth].items()}
    peak = {f"AU{n:02d}": 0.02 for n in (1, 2, 4, 5, 6, 7, 9, 12, 15, 23, 26)} | shown
    face = FaceObservation(
        frames_sampled=10,
        frames_with_face=10,
        faces_max=1,
        au_backend="landmark",
        au_peak=peak,
        au_mean={k: v * 0.7 for k, v in peak.items()},
    )
    return Features(segment_id=segment_id, face=face)


VAGUE = "Step 1: The overall impression of the clip suggests this emotion."


def _annotation(segment_id: str, agent: str, label: str, vague: bool) -> Annotation:
    step, au = REASONS[label]
    if vague:
        step, au = VAGUE, None
    return Annotation(
        id=f"{segment_id}-{agent}",
        segment_id=segment_id,
        agent=agent,
        backend="openai",
        labels=[label],
        primary_label=label,
        rationale=[step, f"Step 2: Therefore the label is {label}."],
        evidence=[Cue(modality="face", cue=f"{au} active", feature=au)] if au else [],
        modalities_seen=["face"],
        provenance=CTX.provenance(stage="annotate", model=agent),
    )


def simulated_rows(n: int = 60, seed: int = 5, human_every: int = 2) -> tuple[list[SegmentRow], dict[str, str]]:
    rng = np.random.default_rng(seed)
    judge = Judge(JudgeConfig(), CTX)
    builder = ConsensusBuilder(AggregationConfig(), CTX, sources=vote_sources())
    rows, truth = [], {}
    for i in range(n):
        true = LABELS[int(rng.integers(0, len(LABELS)))]
        seg = Segment(
            id=f"sim-0000000000-{i:05d}",
            recording_id="sim-0000000000",
            index=i,
            start_s=2.0 * i,
            end_s=2.0 * i + 2.0,
            kind="visual",
        )
        truth[seg.id] = true
        feats = _features(seg.id, true, float(rng.uniform(0.25, 1.0)))
        annotations = []
        for agent, acc in ACCURACY.items():
            if acc is None:
                label = "neutral"
            else:
                label = true if rng.random() < acc else LABELS[int(rng.integers(0, len(LABELS)))]
            annotations.append(_annotation(seg.id, agent, label, vague=bool(rng.random() < 0.25)))
        verdicts = judge.score(seg, feats, annotations)
        consensus = builder.build(seg, feats, annotations, verdicts)
        human = (
            [HumanLabel(reviewer="r1", label=true, reviewed_at=datetime(2026, 1, 1, tzinfo=UTC), source="test")]
            if i % human_every == 0
            else []
        )
        rows.append(
            SegmentRow(
                row_id=seg.id,
                run_id=CTX.run_id,
                status=Status.ok,
                segment=seg,
                features=feats,
                annotations=annotations,
                verdicts=verdicts,
                consensus=consensus,
                human=human,
                recording=RecordingRef(id=seg.recording_id, uri="sim.mp4", sha256="0" * 64),
                config_hash=CTX.config_hash,
            )
        )
    return rows, truth


def write_corpus(root: Path, rows: list[SegmentRow]) -> Path:
    writer = CorpusWriter(str(root), StorageConfig(), CTX.run_id)
    writer.write(rows)
    writer.close()
    return root
