"""One real Label Studio for the review tests (a start costs ~20 s of two busy cores), serving
local files under its root as docs/release.md sets it up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.review.labelstudio_server import LabelStudio, label_studio_server


@pytest.fixture(scope="session")
def labelstudio_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LOCAL_FILES_DOCUMENT_ROOT of the shared server: review folders go under it."""
    return tmp_path_factory.mktemp("labelstudio-root")


@pytest.fixture(scope="session")
def labelstudio(labelstudio_root: Path) -> Iterator[LabelStudio]:
    with label_studio_server(labelstudio_root / "server", media_root=labelstudio_root) as ls:
        yield ls
