"""Any OpenAI-compatible server (vLLM, llama.cpp, Ollama) reached by ``base_url``.

Same wire protocol as ``OpenAIBackend``; the default structured-output mechanism is
llama.cpp's ``{"type": "json_object", "schema": ...}`` because llama.cpp rejects OpenAI's
``json_schema``. vLLM accepts ``json_schema`` too: set ``response_format: json_schema``.
"""

from __future__ import annotations

from typing import Literal

from emoforge.agents.backends.openai import OpenAIBackend


class OpenAICompatibleBackend(OpenAIBackend):
    name = "openai_compatible"
    default_format: Literal["json_schema", "json_object_schema"] = "json_object_schema"
