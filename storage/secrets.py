"""One scrubber for every message that is stored (``Failure.message``) or logged.

Providers echo what they were sent: a 401 or 500 body can quote the ``Authorization``
header, a URL with ``?key=...``, or the key itself. Such text reaches failure rows and logs
through exception messages, so it is cleaned at the two places every one of them passes:
the ``Failure`` record (a validator calls ``scrub``) and the loggers that carry provider
text (``SecretFilter``). Removed:

- the value of every env var named in a config as holding a key (``register_secret_env``,
  called where a backend reads its key) and of any env var whose name says it holds one
  (``*API_KEY``, ``*TOKEN``, ``*SECRET``, ``*PASSWORD``);
- ``Bearer <token>``, ``sk-...`` keys, Google ``AIza...`` keys;
- ``key=...`` / ``token: ...`` style assignments (query strings, JSON, headers).
"""

from __future__ import annotations

import logging
import os
import re
import threading

REDACTED = "[redacted]"

_REGISTERED: set[str] = set()
_LOCK = threading.Lock()
# Env var names whose values are secrets even when no config named them.
_SECRET_NAME = re.compile(r"(API_?KEY|ACCESS_?KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
# Shorter values (flags, "1", "no-key") would scrub ordinary words out of messages.
_MIN_VALUE_LEN = 8

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), f"sk-{REDACTED}"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), REDACTED),
    (
        re.compile(r"(?i)\b([\w-]*(?:key|token|secret|password))([\"']?\s*[:=]\s*[\"']?)(?!\[redacted\])[^\s\"'&,;}]+"),
        rf"\1\2{REDACTED}",
    ),
)


def register_secret_env(name: str | None) -> None:
    """Scrub this env var's value from now on (a backend calls it when it reads its key)."""
    if name:
        with _LOCK:
            _REGISTERED.add(name)


def _secret_values() -> list[str]:
    with _LOCK:
        names = set(_REGISTERED)
    names.update(n for n in os.environ if _SECRET_NAME.search(n))
    values = {os.environ.get(n, "") for n in names}
    # Longest first, so a key that contains another key's value is removed whole.
    return sorted((v for v in values if len(v) >= _MIN_VALUE_LEN), key=len, reverse=True)


def scrub(text: str) -> str:
    """``text`` without API keys, bearer tokens or ``key=`` values (see the module docstring)."""
    if not text:
        return text
    for value in _secret_values():
        text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretFilter(logging.Filter):
    """Scrubs a log record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set, so the scrubbed traceback is what gets written.
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


SECRET_FILTER = SecretFilter()


def scrubbed_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with ``SecretFilter`` attached (once)."""
    logger = logging.getLogger(name)
    if SECRET_FILTER not in logger.filters:
        logger.addFilter(SECRET_FILTER)
    return logger
