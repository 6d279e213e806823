"""emoforge: build emotion corpora from raw media with a jury of AI annotators."""

import os
from importlib.metadata import PackageNotFoundError, version

# Prefect reads its settings once, when it is first imported, so these defaults must be in
# place before any emoforge module imports it; every emoforge module imports this package
# first. Users override them with the same variables.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Without a PREFECT_API_URL, the first flow run starts a temporary Prefect server and runs
# its database migrations: ~22 s on 2 idle cores with a fresh PREFECT_HOME, against Prefect's
# 20 s default, so a first run on a busy or slow machine failed before any work began.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

try:
    __version__ = version("emoforge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
