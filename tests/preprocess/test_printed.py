"""Two threads capturing a library's prints at once leave sys.stdout as it was.

With bare ``contextlib.redirect_stdout`` the order A in, B in, A out, B out (two stage threads
loading pyannote) left ``sys.stdout`` at A's buffer: `emoforge annotate` then printed its shard
and manifest paths into it, and a user saw nothing.
"""

from __future__ import annotations

import sys
import threading

from emoforge.preprocess.printed import captured_stdout


def test_overlapping_captures_restore_stdout() -> None:
    before = sys.stdout
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, str] = {}

    def a() -> None:
        with captured_stdout() as printed:
            a_in.set()
            b_in.wait(timeout=1.0)  # overlap with b where b can enter; one at a time, it cannot
            print("from a")
        seen["a"] = printed.getvalue()
        a_out.set()

    def b() -> None:
        a_in.wait(timeout=5.0)
        with captured_stdout() as printed:
            b_in.set()
            a_out.wait(timeout=5.0)  # leave after a has left: the order that lost stdout
            print("from b")
        seen["b"] = printed.getvalue()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sys.stdout is before
    assert seen == {"a": "from a\n", "b": "from b\n"}
