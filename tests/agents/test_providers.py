"""The provider specs: found beside their code, holding what the side tables used to
(configs' CLIP_MODALITIES / BATCH_BACKENDS / MODEL_BACKENDS, runners' and preflight's
REMOTE_BACKENDS, costs' BATCH_PRICE_FACTOR and token rates, consensus' modality table)."""

from __future__ import annotations

import pytest

from emoforge.agents.costs import batch_factor, media_tokens
from emoforge.agents.providers import ProviderSpec, provider, providers, register, vote_sources
from emoforge.quality.vote_source import VoteSource


def test_every_provider_is_found_in_its_own_module_with_its_facts() -> None:
    facts = {
        name: (s.kind, s.remote, s.api_key_env, sorted(s.clip_modalities), s.batch.price_factor if s.batch else None)
        for name, s in providers().items()
    }
    assert facts == {
        "face_cues": ("cues", False, None, [], None),
        "voice_cues": ("cues", False, None, [], None),
        "text_cues": ("cues", False, None, [], None),
        "face_model": ("recognizer", False, None, [], None),
        "voice_model": ("recognizer", False, None, ["audio"], None),
        "text_model": ("recognizer", False, None, [], None),
        "openai": ("llm", True, None, ["audio"], 0.5),
        "openai_compatible": ("llm", True, None, ["audio"], None),
        "gemini": ("llm", True, "GEMINI_API_KEY", ["audio", "video"], 0.5),
        "transformers": ("llm", False, None, [], None),
    }
    assert {n for n, s in providers().items() if s.needs_model} == {
        "openai",
        "openai_compatible",
        "gemini",
        "transformers",
    }
    assert [n for n, s in providers().items() if s.needs_base_url] == ["openai_compatible"]
    assert batch_factor("gemini") == 0.5 and batch_factor("openai_compatible") == 1.0


def test_token_rates_and_vote_sources_are_the_providers() -> None:
    assert media_tokens("gemini", 3.5, 3.5) == (4 * 258 + 112, 112)
    assert media_tokens("openai", 3.5) == (35, 35) and media_tokens("openai_compatible", 2.0, 9.0) == (20, 20)
    sources = vote_sources()
    assert {n: s for n, s in sources.items() if s != VoteSource()} == {
        "face_cues": VoteSource("face"),
        "voice_cues": VoteSource("voice"),
        "text_cues": VoteSource("text"),
        "face_model": VoteSource("face", calibrated=True),
        "voice_model": VoteSource("voice", calibrated=True),
        "text_model": VoteSource("text", calibrated=True),
    }


def test_an_unknown_backend_names_the_choices_and_a_name_is_declared_once() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'gpt4' \(choices: face_cues, face_model, gemini, openai, "):
        provider("gpt4")
    with pytest.raises(ValueError, match="provider 'openai' is declared twice"):
        register(ProviderSpec(name="openai", kind="llm"))
