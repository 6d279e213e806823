"""Taxonomy normalisation: free-form labels -> taxonomy labels, synonyms first, then embeddings.

``LabelNormalizer.normalise("joyful")`` gives ``LabelMatch(label="happy", method="synonym")``.
A word that no synonym covers is embedded with the packaged all-MiniLM-L6-v2 model and
mapped to the nearest taxonomy label when the cosine similarity reaches
``min_similarity``. Anything else is ``unmapped``: with ``open_vocabulary`` it becomes its
own label; otherwise the caller keeps it as ``raw_label`` (never silently dropped).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from emoforge.configs.agents import TaxonomyConfig
from emoforge.configs.emotions import SYNONYMS

log = logging.getLogger(__name__)

_CLEAN = re.compile(r"[^a-z/ ]+")


@dataclass(frozen=True)
class LabelMatch:
    label: str | None
    raw: str
    method: Literal["exact", "synonym", "embedding", "open", "unmapped"]
    score: float


def resolve_model_dir(spec: str) -> Path:
    """``package:NAME`` -> the folder inside the installed package holding config.json."""
    if not spec.startswith("package:"):
        return Path(spec)
    import importlib

    module = importlib.import_module(spec.removeprefix("package:").replace("-", "_"))
    getter = getattr(module, "get_model_path", None)
    if callable(getter):
        return Path(getter())
    for base in getattr(module, "__path__", []):
        for config in sorted(Path(base).rglob("config.json")):
            if (config.parent / "tokenizer.json").exists() or (config.parent / "vocab.txt").exists():
                return config.parent
    raise FileNotFoundError(f"{spec}: no model folder (config.json + tokenizer) in the package")


class SentenceEmbedder:
    """Mean-pooled, L2-normalised MiniLM embeddings; the model is loaded once, lazily."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._model: Any | None = None
        self._tokenizer: Any | None = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None or self._tokenizer is None:
                from transformers import AutoModel, AutoTokenizer

                path = resolve_model_dir(self.spec)
                self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
                self._model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
            return self._model, self._tokenizer

    def embed(self, texts: list[str]) -> Any:
        """(n, d) float32 numpy array of unit vectors."""
        import torch

        model, tokenizer = self._load()
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()


class LabelNormalizer:
    """Maps raw labels onto the configured taxonomy; thread-safe after the first embed."""

    def __init__(self, config: TaxonomyConfig, embedder: SentenceEmbedder | None = None) -> None:
        self.config = config
        self.labels = list(config.labels)
        self._embedder = embedder
        if self._embedder is None and config.embedding_model:
            self._embedder = SentenceEmbedder(config.embedding_model)
        self._label_vectors: Any | None = None

    def _synonym(self, word: str) -> str | None:
        if word in self.labels:
            return word
        target = SYNONYMS.get(word)
        return target if target in self.labels else None

    def normalise(self, raw: str) -> LabelMatch:
        word = _CLEAN.sub(" ", raw.lower()).strip()
        word = re.sub(r"\s+", " ", word)
        if word in self.labels:
            return LabelMatch(word, raw, "exact", 1.0)
        found = self._synonym(word)
        if found is None and " " in word:
            # 'very happy', 'a bit sad': a known word inside a short phrase
            hits = {s for w in word.split() if (s := self._synonym(w))}
            found = hits.pop() if len(hits) == 1 else None
        if found is not None:
            return LabelMatch(found, raw, "synonym", 1.0)
        if word and self._embedder is not None:
            label, score = self._nearest(word, self._embedder)
            if score >= self.config.min_similarity:
                return LabelMatch(label, raw, "embedding", score)
        if self.config.open_vocabulary and word:
            return LabelMatch(word, raw, "open", 0.0)
        return LabelMatch(None, raw, "unmapped", 0.0)

    def _nearest(self, word: str, embedder: SentenceEmbedder) -> tuple[str, float]:
        if self._label_vectors is None:
            self._label_vectors = embedder.embed([f"feeling {x}" for x in self.labels])
        vec = embedder.embed([f"feeling {word}"])[0]
        sims = self._label_vectors @ vec
        best = int(sims.argmax())
        return self.labels[best], float(sims[best])
