"""emoforge: build emotion corpora from raw media with a jury of AI annotators."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emoforge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
