"""Before the first call: is every remote agent's API key set, and does every ``base_url`` answer?

A run with an unset key used to exit 0, every paid vote a ``model_unavailable`` failure whose
reason showed only inside the Parquet file. ``emoforge annotate`` refuses such a run with one
line per problem, and ``--dry-run`` lists them beside the price. A ``base_url`` "answers" when
a TCP connection to its host and port opens: no request is sent, so nothing is billed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

from emoforge.agents.providers import provider
from emoforge.configs import PipelineConfig
from emoforge.configs.agents import AgentConfig

CONNECT_TIMEOUT_S = 3.0


class ProviderProblem(BaseModel):
    """Why an agent's calls would fail before any of them is answered."""

    agent: str
    kind: Literal["api_key_unset", "base_url_unreachable"]
    message: str

    def line(self) -> str:
        return f"agent {self.agent}: {self.message}"


def _remote_agents(config: PipelineConfig) -> Iterator[AgentConfig]:
    yield from (a for a in config.agents.jury if provider(a.backend).remote)
    judge = config.judge.llm
    if config.judge.backend == "llm" and judge is not None and provider(judge.backend).remote:
        yield judge.model_copy(update={"name": f"judge:{judge.name}"})


def _answers(url: str, timeout_s: float) -> str | None:
    """None when ``url``'s host accepts a connection, else why not."""
    parts = urlsplit(url)
    if not parts.hostname:
        return f"base_url {url} names no host"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"base_url {url} does not answer ({exc.strerror or exc})"


def provider_problems(config: PipelineConfig, timeout_s: float = CONNECT_TIMEOUT_S) -> list[ProviderProblem]:
    """Unset API keys and unreachable servers of the jury and the LLM judge, one per agent and kind."""
    problems: list[ProviderProblem] = []
    checked: dict[str, str | None] = {}  # one connection per server, however many agents use it
    for agent in _remote_agents(config):
        # The key variable the backend reads when the agent names none (openai's takes none:
        # it needs api_key_env or a base_url).
        env = agent.api_key_env or provider(agent.backend).api_key_env
        if env and not os.environ.get(env):
            problems.append(ProviderProblem(agent=agent.name, kind="api_key_unset", message=f"{env} is not set"))
        elif env is None and not agent.base_url:
            message = "no api_key_env (nor base_url) configured"
            problems.append(ProviderProblem(agent=agent.name, kind="api_key_unset", message=message))
        if agent.base_url:
            if agent.base_url not in checked:
                checked[agent.base_url] = _answers(agent.base_url, timeout_s)
            reason = checked[agent.base_url]
            if reason:
                problems.append(ProviderProblem(agent=agent.name, kind="base_url_unreachable", message=reason))
    return problems
