"""Where media lives and which spans of it are annotated: recordings, inputs and segments."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from emoforge.configs.terms import Consent
from emoforge.storage.records.base import Record
from emoforge.storage.records.failure import Failure, Status


class StreamInfo(Record):
    kind: Literal["audio", "video"] = Field(description="Stream type.")
    codec: str | None = Field(default=None, description="Codec name as reported by the demuxer.")
    duration_s: float | None = Field(default=None, description="Stream duration in seconds.")
    sample_rate: int | None = Field(default=None, description="Audio sample rate (Hz).")
    channels: int | None = Field(default=None, description="Audio channel count.")
    fps: float | None = Field(default=None, description="Average video frame rate.")
    width: int | None = Field(default=None, description="Video width in pixels (before rotation).")
    height: int | None = Field(default=None, description="Video height in pixels (before rotation).")
    rotation: int = Field(default=0, description="Display rotation in degrees (0/90/180/270).")


_SLUG = re.compile(r"[^a-z0-9]+")


def recording_id_for(path: str | Path, sha256: str) -> str:
    """Readable, content-addressed id: the file stem slug plus a hash prefix.

    The hash makes the id stable when the file moves and new when its bytes change.
    """
    stem = _SLUG.sub("-", Path(str(path)).stem.lower()).strip("-")[:40] or "rec"
    return f"{stem}-{sha256[:10]}"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a regular file's bytes.

    Raises:
        OSError: unreadable, or not a regular file: hashing ``/dev/zero`` or a FIFO would never
            end, so devices, pipes and sockets are refused before the first read.
    """
    # stat before open: opening a FIFO with no writer blocks forever.
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class Terms(Record):
    """Under what terms a clip may be used: its licence, the consent of the people in it, whom to
    credit and where it came from. Added in schema v2; older rows read as unknown."""

    licence: str | None = Field(default=None, description="SPDX id (CC-BY-4.0) or free text; null: unknown.")
    consent: Consent = Field(default="unknown", description="publish, research, none or unknown.")
    attribution: str | None = Field(default=None, description="Who must be credited, as the licence asks.")
    source_url: str | None = Field(default=None, description="Where the media can be obtained legitimately.")


class Recording(Record):
    """A media file: where it is, what it holds, and its content hash."""

    id: str = Field(description="`{stem}-{sha256[:10]}`; stable across moves, new on content change.")
    uri: str = Field(description="Path or fsspec URL of the media file.")
    sha256: str = Field(description="sha256 of the file bytes.")
    size_bytes: int = Field(description="File size in bytes.")
    duration_s: float | None = Field(default=None, description="Container duration in seconds.")
    has_audio: bool = Field(default=False, description="At least one decodable audio stream.")
    has_video: bool = Field(default=False, description="At least one decodable video stream.")
    streams: list[StreamInfo] = Field(default_factory=list, description="Streams found by probing.")
    source: str | None = Field(default=None, description="Source/collection name (for grouped splits).")
    speaker_hint: str | None = Field(default=None, description="Speaker id given by the input manifest.")
    terms: Terms = Field(default_factory=Terms, description="Licence, consent, attribution and source of the media.")
    status: Status = Field(default=Status.ok, description="ok, or failed when probing failed.")
    failure: Failure | None = Field(default=None, description="Why probing failed.")


class FileHash(Record):
    """A local file's sha256 and the size/mtime it was computed at (valid while both match)."""

    sha256: str = Field(description="Hex sha256 of the file's bytes.")
    size_bytes: int = Field(description="File size when hashed.")
    mtime_ns: int = Field(description="Modification time (ns) when hashed.")

    def valid_for(self, path: str | Path) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return st.st_size == self.size_bytes and st.st_mtime_ns == self.mtime_ns


class MediaInput(Record):
    """One input to annotate: a media path plus optional grouping metadata from a manifest."""

    uri: str = Field(description="Media path or URL.")
    source: str | None = Field(default=None, description="Source/collection (splits group by it).")
    speaker: str | None = Field(default=None, description="Speaker id (splits group by it).")
    terms: Terms = Field(
        default_factory=Terms, description="Terms from the manifest, the folder's terms file or the config."
    )
    known_hash: FileHash | None = Field(
        default=None, description="Content hash the planner already computed; probing reuses it if still valid."
    )
    rel_path: str | None = Field(
        default=None,
        description="POSIX path relative to the input root: what a release may publish (never the absolute "
        "path). None for URLs.",
    )
    refused: Failure | None = Field(
        default=None,
        description="Why the input is refused unread (outside the input root); it becomes a failure row.",
    )


class Instruction(Record):
    """The task paired with a segment: versioned so a row says which prompt asked it."""

    version: str = Field(description="Instruction template version, e.g. 'emo-cot-v1'.")
    text: str = Field(description="Rendered instruction text given to annotators.")


class Segment(Record):
    """A time span of one recording, in recording time (seconds)."""

    id: str = Field(description="`{recording_id}-{index:05d}`.")
    recording_id: str = Field(description="Parent recording id.")
    index: int = Field(ge=0, description="0-based position of the segment in the recording.")
    start_s: float = Field(ge=0, description="Start time in recording seconds.")
    end_s: float = Field(ge=0, description="End time in recording seconds (exclusive).")
    kind: Literal["speech", "visual", "full"] = Field(
        description="speech: a voice-activity turn; visual: no speech; full: the whole file."
    )
    shot_index: int | None = Field(default=None, description="Index of the shot containing it.")
    speaker: str | None = Field(default=None, description="Dominant speaker label, if known.")
    overlap_s: float = Field(default=0.0, ge=0, description="Seconds of overlapped speech inside.")
    instruction: Instruction | None = Field(default=None, description="Task paired with the segment.")

    @model_validator(mode="after")
    def _ordered(self) -> Segment:
        if self.end_s <= self.start_s:
            raise ValueError(f"segment {self.id}: end_s {self.end_s} <= start_s {self.start_s}")
        return self

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def segment_id_for(recording_id: str, index: int) -> str:
    return f"{recording_id}-{index:05d}"
