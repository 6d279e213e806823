"""Serve a GGUF over llama.cpp's own OpenAI-compatible HTTP server, from the xllamacpp wheel.

    python tests/llama_serve.py --model X.gguf --model_alias gemma-3-270m --port N [--chat_format gemma]

xllamacpp ships llama.cpp prebuilt for CPUs without AVX-512 (no compiler, no 8-minute build;
llama-cpp-python's native build segfaults on these CPUs). Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--model_alias", default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--chat_format", default="gemma", help="llama.cpp built-in chat template name")
    ap.add_argument("--n_ctx", type=int, default=4096)
    ap.add_argument("--n_threads", type=int, default=2)
    ap.add_argument("--n_parallel", type=int, default=1)
    args = ap.parse_args(argv)

    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = args.model
    if args.model_alias:
        params.model_alias = {args.model_alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.n_ctx
    params.n_parallel = args.n_parallel
    params.cpuparams.n_threads = args.n_threads
    params.cpuparams_batch.n_threads = args.n_threads
    # The packaged GGUF carries no tokenizer.chat_template: llama.cpp's built-in template is
    # chosen by name, which works only on its non-Jinja path.
    params.use_jinja = False
    params.chat_template = args.chat_format
    params.ui = False
    server = xlc.Server(params)  # loads the model and starts the HTTP threads
    print(f"llama.cpp (xllamacpp) listening on {server.listening_address}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip native teardown: the OS frees the model and the sockets


if __name__ == "__main__":
    main()
