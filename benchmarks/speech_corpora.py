"""The labelled speech corpora in the fixtures, read the same way by training and benchmarks.

Three acted corpora in three languages: RAVDESS (English, actors 1-12, ``ravdess/``), nEMO
(Polish, 5 speakers) and EmoDB (German, 10 speakers, cut to 2 s), the last two under
``train/speech/`` (its README states the rule: train on these only, split by speaker).
Labels are mapped to the taxonomy's seven basic emotions (RAVDESS ``calm`` is neutral).
Read in place, never copied.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPORA = ("ravdess", "nemo", "emodb")
LANGUAGE = {"ravdess": "en", "nemo": "pl", "emodb": "de"}
TO_BASIC = {"calm": "neutral", "disgust": "disgusted"}


@dataclass(frozen=True)
class SpeechClip:
    path: Path
    corpus: str
    speaker: str
    label: str
    language: str
    text: str


def fixtures_root(arg: str | None = None) -> Path:
    root = Path(arg or os.environ.get("EMOFORGE_FIXTURES") or REPO.parent / "shared" / "fixtures")
    return root if root.is_absolute() else (REPO / root).resolve()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def speech_clips(root: Path, corpora: tuple[str, ...] = CORPORA) -> list[SpeechClip]:
    """Every clip of ``corpora``, in a fixed order (corpus, then the labels file's order)."""
    clips = []
    for corpus in corpora:
        if corpus == "ravdess":
            for r in _rows(root / "ravdess" / "labels.csv"):
                clips.append(
                    SpeechClip(
                        root / "ravdess" / r["file"],
                        "ravdess",
                        f"ravdess_{int(r['actor']):02d}",
                        TO_BASIC.get(r["emotion"], r["emotion"]),
                        "en",
                        r["statement"],
                    )
                )
            continue
        for r in _rows(root / "train" / "speech" / "labels.csv"):
            if r["corpus"] == corpus:
                clips.append(
                    SpeechClip(
                        root / "train" / "speech" / r["file"],
                        corpus,
                        r["speaker"],
                        TO_BASIC.get(r["emotion"], r["emotion"]),
                        r["language"],
                        r["text"],
                    )
                )
    return clips
