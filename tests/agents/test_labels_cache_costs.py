"""Label normalisation (synonyms, real MiniLM embeddings), response cache, cost ledger."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from emoforge.agents.base import ImagePart, Prompt
from emoforge.agents.cache import ResponseCache, cache_key
from emoforge.agents.costs import BudgetExceeded, CostLedger, cost_usd, estimate_tokens
from emoforge.agents.labels import LabelNormalizer, SentenceEmbedder
from emoforge.configs.agents import Price, TaxonomyConfig


@pytest.mark.parametrize(
    ("raw", "label", "method"),
    [
        ("Happy", "happy", "exact"),
        ("joy", "happy", "synonym"),
        ("Anger!", "angry", "synonym"),
        ("very scared", "fearful", "synonym"),
        ("SADNESS", "sad", "synonym"),
        ("ANG", "angry", "synonym"),
    ],
)
def test_synonyms(raw: str, label: str, method: str) -> None:
    match = LabelNormalizer(TaxonomyConfig(embedding_model=None)).normalise(raw)
    assert (match.label, match.method) == (label, method)


def test_embeddings_map_free_form_labels(embedder: SentenceEmbedder) -> None:
    norm = LabelNormalizer(TaxonomyConfig(min_similarity=0.5), embedder)
    for raw, expected in [("terror", "fearful"), ("cheerfulness", "happy"), ("furious rage", "angry")]:
        match = norm.normalise(raw)
        assert match.method in ("embedding", "synonym") and match.label == expected, (raw, match)
    assert norm.normalise("terror").method == "embedding"


def test_unmapped_labels_are_kept(embedder: SentenceEmbedder) -> None:
    closed = LabelNormalizer(TaxonomyConfig(min_similarity=0.9), embedder).normalise("nostalgic")
    assert closed.label is None and closed.method == "unmapped" and closed.raw == "nostalgic"
    opened = LabelNormalizer(TaxonomyConfig(min_similarity=0.9, open_vocabulary=True), embedder)
    assert opened.normalise("Nostalgic").label == "nostalgic"


def test_embeddings_are_unit_vectors(embedder: SentenceEmbedder) -> None:
    vecs = embedder.embed(["happy", "joyful", "a tax form"])
    assert vecs.shape == (3, 384)
    assert abs(float((vecs[0] ** 2).sum()) - 1.0) < 1e-5
    assert float(vecs[0] @ vecs[1]) > float(vecs[0] @ vecs[2]) + 0.2


def _key(**over: Any) -> str:
    base: dict[str, Any] = dict(
        agent="gpt",
        backend="openai",
        model="m",
        base_url=None,
        prompt_version="emo-cot-v1",
        template_sha256="t",
        prompt=Prompt(system="s", user="u", images=(ImagePart(b"\xff\xd8jpeg", 1.0),)),
        params={"temperature": 0},
    )
    base.update(over)
    return cache_key(**base)


def test_cache_key_covers_model_prompt_inputs_and_params() -> None:
    key = _key()
    assert key == _key()
    changes: list[dict[str, Any]] = [
        dict(model="m2"),
        dict(agent="gpt-2"),
        dict(prompt_version="v2"),
        dict(params={"temperature": 0.5}),
        dict(prompt=Prompt(system="s", user="u", images=(ImagePart(b"\xff\xd8jpeG", 1.0),))),
        dict(prompt=Prompt(system="s", user="u2")),
    ]
    for change in changes:
        assert _key(**change) != key, change


def _write_many(args: tuple[str, int]) -> int:
    root, worker = args
    cache = ResponseCache(Path(root))
    for i in range(50):
        cache.put("ab" + "0" * 62, {"worker": worker, "i": i, "pad": "x" * 5000})
    return worker


def test_cache_concurrent_writers_never_leave_partial_entries(tmp_path: Path) -> None:
    key = "ab" + "0" * 62
    cache = ResponseCache(tmp_path)
    seen: list[dict[str, object]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            entry = cache.get(key)
            if entry is not None:
                seen.append(entry)

    reader = threading.Thread(target=read)
    reader.start()
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_write_many, [(str(tmp_path), w) for w in range(2)]))
    stop.set()
    reader.join()
    final = json.loads((tmp_path / "ab" / f"{key}.json").read_text())
    assert final["i"] == 49 and len(final["pad"]) == 5000
    assert all(len(str(e["pad"])) == 5000 for e in seen)  # every read saw a whole entry
    assert not list(tmp_path.rglob("*.tmp"))


def test_damaged_cache_entry_is_a_miss(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    cache.put("cd" + "1" * 62, {"text": "x"})
    (tmp_path / "cd" / f"{'cd' + '1' * 62}.json").write_text("{half")
    assert cache.get("cd" + "1" * 62) is None and cache.misses == 1


def test_costs_and_budget_reservations() -> None:
    price = Price(input_per_mtok=2.5, output_per_mtok=10.0)
    assert cost_usd(price, 1_000_000, 100_000) == pytest.approx(3.5)
    assert estimate_tokens("x" * 400, n_images=2) == 100 + 2 * 85
    ledger = CostLedger(budget_usd=1.0)
    ledger.reserve(0.6)
    with pytest.raises(BudgetExceeded):
        ledger.reserve(0.5)  # 0.6 reserved + 0.5 > 1.0 even though nothing is spent yet
    ledger.settle(0.6, 0.2)
    ledger.reserve(0.5)
    ledger.settle(0.5, 0.5)
    assert ledger.spent_usd == pytest.approx(0.7)
    with pytest.raises(BudgetExceeded):
        ledger.reserve(0.31)
