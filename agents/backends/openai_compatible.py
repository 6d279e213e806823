"""Any OpenAI-compatible server (vLLM, llama.cpp, Ollama) reached by ``base_url``.

Same wire protocol as ``OpenAIBackend``; the default structured-output mechanism is
llama.cpp's ``{"type": "json_object", "schema": ...}`` because llama.cpp rejects OpenAI's
``json_schema``. vLLM accepts ``json_schema`` too: set ``response_format: json_schema``.
An agent with the ``audio`` modality sends the segment's WAV as the same ``input_audio``
content part as OpenAI; whether a server takes it depends on the server and the model
(vLLM serving an omni / audio-language model does).
"""

from __future__ import annotations

from typing import Literal

from emoforge.agents.backends.openai import OpenAIBackend
from emoforge.agents.providers import ProviderSpec


class OpenAICompatibleBackend(OpenAIBackend):
    name = "openai_compatible"
    default_format: Literal["json_schema", "json_object_schema"] = "json_object_schema"


PROVIDER = ProviderSpec(
    name=OpenAICompatibleBackend.name,
    kind="llm",
    chat=OpenAICompatibleBackend,
    remote=True,
    needs_model=True,
    needs_base_url=True,
    clip_modalities=frozenset({"audio"}),  # e.g. vLLM serving an omni model
    audio_tokens_per_s=10.0,  # OpenAI's rate: the servers bill (if at all) as it does
)
