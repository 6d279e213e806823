"""Per-set runners of bench_quality.py that need the agents (MELD, RAVDESS, MER2023).

Each returns a JSON-ready dict. Trained recognizers are scored on data their weights never
saw: weights written by the training script's own fitting code (MELD: train only, scored on
dev; RAVDESS: each actor left out) and loaded by the real agent through ``AgentConfig.model``.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bench_quality import REPO, answers, fixtures, jury_consensus, majority_baseline, make_agent, score, segment
from train_text_model import MELD_TO_BASIC

# The offline default jury (configs/default.yaml), by modality.
DEFAULT_JURY = ("face_model", "voice_model", "text_model")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def transcript_features(sid: str, text: str, duration: float, language: str = "en") -> Any:
    from emoforge.storage.records import Features, Transcript, Word

    words = text.split() or [text]
    step = duration / max(1, len(words))
    timed = [Word(text=w, start_s=i * step, end_s=(i + 1) * step) for i, w in enumerate(words)]
    return Features(
        segment_id=f"{sid}-00000",
        transcript=Transcript(text=text, language=language, words=timed, word_timing="asr", reliable=True),
    )


# --------------------------------------------------------------------------- MELD


def meld() -> dict[str, Any]:
    import json

    import train_text_model as ttm

    from emoforge.agents.recognizers.base import weights_path
    from emoforge.agents.recognizers.text import WEIGHTS

    rows = read_csv(fixtures() / "labels" / "meld_dev_sent_emo.csv")
    truth = [MELD_TO_BASIC[r["Emotion"]] for r in rows]
    texts = [r["Utterance"] for r in rows]
    feats = [transcript_features(f"meld{i}", t, 3.0) for i, t in enumerate(texts)]
    segs = [segment(f"meld{i}", 3.0) for i in range(len(rows))]
    cues = make_agent("text_cues")
    cue_anns = [cues.annotate(s, f) for s, f in zip(segs, feats, strict=True)]
    with np.load(weights_path(None, WEIGHTS)) as data:
        meta = json.loads(str(data["metadata"]))
    with tempfile.TemporaryDirectory() as tmp:
        # The shipped weights saw MELD dev; these are the same recipe on MELD train only.
        path = ttm.train_only_weights(Path(tmp) / "text-meld-train-only.npz", meta["C"], meta["class_weight_alpha"])
        agent = make_agent("text_model", str(path))
        model_anns = [agent.annotate(s, f) for s, f in zip(segs, feats, strict=True)]
    return {
        "n": len(rows),
        "protocol": "text_model fitted on MELD train only (the shipped C, class weights, and domain model fitted on "
        "MELD train out of fold and the read corpora), scored on MELD dev; text_cues as shipped",
        "majority_baseline": majority_baseline(truth),
        "agents": {
            "text_cues": score(truth, *answers(cue_anns)) | extra_scores(truth, answers(cue_anns)[0]),
            "text_model": score(truth, *answers(model_anns)) | extra_scores(truth, answers(model_anns)[0]),
        },
    }


def extra_scores(truth: Sequence[str], predicted: Sequence[str | None]) -> dict[str, float]:
    """Balanced accuracy and weighted-F1 (MELD's usual headline), failures counted wrong."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    pred = [p or "failed" for p in predicted]
    return {
        "balanced_accuracy": round(float(balanced_accuracy_score(truth, pred)), 4),
        "weighted_f1": round(float(f1_score(truth, pred, average="weighted", labels=sorted(set(truth)))), 4),
    }


# --------------------------------------------------------------------------- RAVDESS


def wav_bytes(audio: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def speech_sets() -> dict[str, dict[str, Any]]:
    """RAVDESS, nEMO and EmoDB, each scored two ways: ``speaker`` (voice model trained without
    the clip's speakers) and ``corpus`` (trained without the clip's whole corpus); the jury
    is that voice model + the shipped text model reading the sentence spoken."""
    juries = speech_juries()
    out: dict[str, dict[str, Any]] = {}
    for corpus in juries["corpora"]:
        rows = [i for i, c in enumerate(juries["corpus"]) if c == corpus]
        truth = [juries["truth"][i] for i in rows]
        entry: dict[str, Any] = {
            "n": len(rows),
            "speakers": len({juries["speaker"][i] for i in rows}),
            "protocol": "voice_model held out two ways (speaker: 6 speaker-grouped folds over the three corpora; "
            "corpus: trained on the other two corpora), its temperature and trust fitted without this corpus; "
            "text_model as shipped, reading the sentence spoken; jury = voice_model + text_model (no video); "
            "calm counted as neutral",
            "majority_baseline": majority_baseline(truth),
            "agents": {"text_model": score(truth, *answers([juries["text_model"][i] for i in rows]))},
        }
        for protocol in ("speaker", "corpus"):
            voice = [juries["voice_model"][protocol][i] for i in rows]
            entry["agents"][f"voice_model_{protocol}"] = score(truth, *answers(voice)) | off_domain_share(voice)
            entry[f"consensus_{protocol}"] = jury_consensus(
                [juries["segments"][i] for i in rows],
                [juries["features"][i] for i in rows],
                [juries["juries"][protocol][i] for i in rows],
                truth,
                only=("pooled", "majority"),
            )
        out[corpus] = entry
    return out


def off_domain_share(annotations: Sequence[Any]) -> dict[str, float]:
    checks = [a.domain for a in annotations if a is not None and a.domain is not None]
    return {"off_domain_share": round(float(np.mean([c.off_domain for c in checks])), 4) if checks else 0.0}


def speech_juries() -> dict[str, Any]:
    """The three speech corpora through the real agents: segments, features, the text model's
    answers, the voice model's answers under each protocol (each fold's weights written by the
    training script's own ``fit`` and ``mapping`` and loaded through ``AgentConfig.model``) and
    the jury (voice + text) per clip and protocol."""
    import json

    import soundfile as sf
    import train_voice_model as tvm
    from speech_corpora import speech_clips

    from emoforge.agents.clips import SegmentClip
    from emoforge.agents.recognizers.base import weights_path
    from emoforge.configs.preprocess import ProsodyConfig
    from emoforge.preprocess.prosody import ProsodyAnalyzer

    clips = speech_clips(fixtures())
    prosody = ProsodyAnalyzer(ProsodyConfig())
    segs, feats, cuts = [], [], []
    for i, c in enumerate(clips):
        audio, sr = sf.read(c.path, dtype="float32")
        duration = len(audio) / sr
        f = transcript_features(f"sp{i}", c.text, duration, language=c.language)
        f = f.model_copy(update={"prosody": prosody.analyze(audio, sr, 0.0, f.transcript.words)})
        segs.append(segment(f"sp{i}", duration))
        feats.append(f)
        cuts.append(
            SegmentClip(
                segment_id=segs[-1].id, start_s=0.0, end_s=duration, audio_wav=wav_bytes(audio, sr), audio_s=duration
            )
        )
    text = make_agent("text_model")
    text_anns = [text.annotate(s, f, c) for s, f, c in zip(segs, feats, cuts, strict=True)]
    shipped = weights_path(None, tvm.WEIGHTS)
    with np.load(shipped, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    y = np.array([tvm.CLASSES.index(c.label) for c in clips])
    corpus = np.array([c.corpus for c in clips])
    speaker = np.array([c.speaker for c in clips])
    features = tvm.extract(clips, tvm.REPO / "out" / "cache" / "voice-features.npz")
    features["layers"] = tvm.extract_layers(clips, tvm.REPO / "out" / "cache" / "voice-layer-features.npz")
    views = tvm.candidates(features)[meta["candidate"]].views
    fits = {
        p: tvm.held_out(views, y, corpus, speaker, meta["C"], meta["nuisance_dims"], p) for p in ("speaker", "corpus")
    }
    runs = {p: run for p, (run, _) in fits.items()}
    # Each corpus's clips are read with a temperature and trust fitted without that corpus.
    maps = {c: tvm.mapping(runs, y, corpus != c) for c in np.unique(corpus)}
    voice: dict[str, list[Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for protocol, (_, models) in fits.items():
            voice[protocol] = [None] * len(clips)
            for f, (test, model) in enumerate(models):
                for c in np.unique(corpus[test]):
                    domain = tvm.domain_model(model, *maps[c])
                    path = Path(tmp) / f"voice-{protocol}-{f}-{c}.npz"
                    np.savez(
                        path,
                        **{
                            **arrays,
                            "mean": model.mean,
                            "scale": model.scale,
                            "nuisance": model.nuisance,
                            "coef": model.coef,
                            "intercept": model.intercept,
                            "output_prior": model.prior,
                            **domain.arrays(),
                        },
                    )
                    agent = make_agent("voice_model", str(path))
                    for i in np.flatnonzero(test & (corpus == c)):
                        voice[protocol][i] = agent.annotate(segs[i], feats[i], cuts[i])
    return {
        "corpora": sorted(set(corpus.tolist()), key=list(corpus).index),
        "corpus": corpus.tolist(),
        "speaker": speaker.tolist(),
        "truth": [c.label for c in clips],
        "segments": segs,
        "features": feats,
        "clips": cuts,
        "text_model": text_anns,
        "voice_model": voice,
        "juries": {p: [[voice[p][i], text_anns[i]] for i in range(len(clips))] for p in voice},
    }


def ravdess_juries() -> dict[str, Any]:
    """RAVDESS actors 1-12 through the real agents, the voice model held out by speaker
    (``speech_juries``): what bench_review and bench_jury score their queues and juries on."""
    juries = speech_juries()
    rows = [i for i, c in enumerate(juries["corpus"]) if c == "ravdess"]
    voice = [juries["voice_model"]["speaker"][i] for i in rows]
    text = [juries["text_model"][i] for i in rows]
    return {
        "rows": [{"actor": juries["speaker"][i].split("_")[-1]} for i in rows],
        "truth": [juries["truth"][i] for i in rows],
        "segments": [juries["segments"][i] for i in rows],
        "features": [juries["features"][i] for i in rows],
        "annotations": {"voice_model": voice, "text_model": text},
        "juries": [[v, t] for v, t in zip(voice, text, strict=True)],
    }


# --------------------------------------------------------------------------- MER2023


MER_CONFIG = """
agents:
  jury:
    - {name: face_cues, backend: face_cues}
    - {name: voice_cues, backend: voice_cues}
    - {name: text_cues, backend: text_cues}
    - {name: face_model, backend: face_model}
    - {name: voice_model, backend: voice_model, modalities: [voice, audio]}
    - {name: text_model, backend: text_model}
"""


def mer() -> dict[str, Any]:
    from emoforge.storage.shards import read_rows

    labels = {r["sample_id"]: r["emotion"] for r in read_csv(fixtures() / "labels" / "mer2023_clips.csv")}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "all-agents.yaml"
        config.write_text(MER_CONFIG)
        media = [str(fixtures() / "media" / f"{sid}.mp4") for sid in sorted(labels)]
        out = Path(tmp) / "corpus"
        cmd = [str(REPO / ".venv" / "bin" / "emoforge"), "annotate", *media, "--out", str(out), "--config", str(config)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=1800)
        rows = [r for r in read_rows(str(out)) if r.segment is not None]
    clip_of = {r.segment.id: Path(r.recording.uri).stem for r in rows if r.segment is not None}
    truth = [labels[clip_of[r.row_id]] for r in rows]
    agents = sorted({a.agent for r in rows for a in r.annotations})
    per_agent = {}
    for name in agents:
        chosen = [next((a for a in r.annotations if a.agent == name), None) for r in rows]
        pred, conf = answers([a for a in chosen if a is not None])
        per_agent[name] = score(truth, pred, conf) | {"per_clip": per_clip(rows, chosen, labels, clip_of)}
    juries = [[a for a in r.annotations if a.agent in DEFAULT_JURY] for r in rows]
    consensus = jury_consensus([r.segment for r in rows], [r.features for r in rows], juries, truth)
    return {
        "n_segments": len(rows),
        "n_clips": len(labels),
        "protocol": "the whole offline pipeline with every offline agent; per segment (each segment carries its "
        "clip's human label) and per clip (duration-weighted vote of the segments); consensus = default jury",
        "agents": per_agent,
        "consensus": consensus,
    }


def per_clip(rows: Sequence[Any], chosen: Sequence[Any], labels: dict[str, str], clip_of: dict[str, str]) -> dict:
    from emoforge.storage.records import Status

    votes: dict[str, dict[str, float]] = {}
    for r, a in zip(rows, chosen, strict=True):
        if a is not None and a.status == Status.ok and a.primary_label:
            d = votes.setdefault(clip_of[r.row_id], {})
            d[a.primary_label] = d.get(a.primary_label, 0.0) + (r.segment.end_s - r.segment.start_s)
    return {
        clip: {
            "human": labels[clip],
            "agent": max(votes[clip], key=lambda k: votes[clip][k]) if clip in votes else None,
        }
        for clip in sorted(labels)
    }


if __name__ == "__main__":
    sys.exit("run benchmarks/bench_quality.py")
