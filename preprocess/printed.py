"""Keep a library's print() out of stdout without losing stdout when threads load models at once.

``contextlib.redirect_stdout`` swaps the process-wide ``sys.stdout`` and restores what it
found. Two stage threads loading pyannote at once interleaved those swaps (A in, B in, A out,
B out), left ``sys.stdout`` pointing at A's buffer, and everything the CLI printed after the
run went nowhere: `annotate` never said where its shards and manifest were. One capture at a
time keeps the swaps nested.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator

_ONE_AT_A_TIME = threading.Lock()


@contextlib.contextmanager
def captured_stdout() -> Iterator[io.StringIO]:
    """What the block prints, in a buffer; ``sys.stdout`` is what it was afterwards."""
    with _ONE_AT_A_TIME:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            yield printed
