"""Review media: each task plays its own segment, in the player that fits the recording.

A task pointing at the whole recording made the reviewer hunt for the span; the segment's
time range was only header text. So the export cuts each segment: recordings with a video
stream get an H.264/AAC MP4 of the segment (``<Video>``, which every browser plays), audio-only
ones the clip browser's Opus snippet (``<Audio>``; an audio file in ``<Video>`` shows an
empty frame), and key frames go beside them as JPEGs (``<Image valueList>``). Cutting reuses
the clip browser's cutter (``emoforge/release/clip_media.py``): one place knows how to read a
recording's streams and cut frames.

URLs: a file under ``ReviewConfig.media_root`` (Label Studio's ``LOCAL_FILES_DOCUMENT_ROOT``)
becomes ``media_url_prefix`` + its path relative to that root, URL-quoted, which is what Label
Studio's local-files storage serves (``/data/local-files/?d=<relative path>``). A task whose
media are bare local paths with nothing to serve them gets a warning, not silence.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field

from emoforge.configs.release import ReviewConfig
from emoforge.release.clip_media import ClipMedia, ClipMediaCutter, clip_slug
from emoforge.storage.inputs import AUDIO_SUFFIXES
from emoforge.storage.records import Record, SegmentRow

MediaKind = Literal["video", "audio"]
# At most 480 lines (a face stays readable; a 1080p source would only be scaled down by the
# player). CRF 28 veryfast: a 5 s clip of a 672x378 fixture is 145 KB, AAC 96k included.
VIDEO_ARGS = (
    *("-vf", "scale=-2:'min(480,ih)'", "-c:v", "libx264", "-preset", "veryfast", "-crf", "28"),
    *("-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart"),
)


class TaskMedia(Record):
    """What one Label Studio task shows: its player, its media URL and its key frames."""

    kind: MediaKind = Field(description="Player tag: video (a video stream) or audio (audio only).")
    url: str = Field(description="Media URL put in the task (the cut segment, or the recording).")
    keyframes: list[str] = Field(default_factory=list, description="Key-frame image URLs.")
    notes: list[str] = Field(default_factory=list, description="Why something could not be cut.")


def is_served(url: str) -> bool:
    """True when a browser can fetch ``url`` from a server (not a bare file path)."""
    return url.startswith(("http://", "https://", "/data/", "data:")) or "?d=" in url


class ReviewMediaCutter(ClipMediaCutter):
    """Cuts each queued segment's clip and key frames into ``folder/media`` and names their URLs."""

    def __init__(self, folder: Path, config: ReviewConfig, workers: int = 2) -> None:
        super().__init__(folder, workers)
        self.config = config

    def url(self, path: Path | str) -> str:
        """The URL a task names for a local file (see the module docstring)."""
        path = Path(path).resolve()
        if self.config.media_root:
            root = Path(self.config.media_root).resolve()
            if not path.is_relative_to(root):
                raise ValueError(
                    f"{path} is outside release.review.media_root ({root}): Label Studio's local-files "
                    "storage serves only files under LOCAL_FILES_DOCUMENT_ROOT; write the tasks under it"
                )
            return self.config.media_url_prefix + quote(path.relative_to(root).as_posix())
        return self.config.media_url_prefix + quote(path.as_posix())

    def task_media(self, rows: list[SegmentRow]) -> dict[str, TaskMedia]:
        """row_id -> the task's media; a segment that cannot be cut keeps the whole recording."""
        cut = self.cut_all(rows)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            media = pool.map(lambda row: self._task_media(row, cut[row.row_id]), rows)
            return {row.row_id: m for row, m in zip(rows, media, strict=True)}

    def _task_media(self, row: SegmentRow, cut: ClipMedia) -> TaskMedia:
        streams = self._streams.get(row.recording.uri)
        frames = [self.url(self.folder / f.path) for f in cut.frames]
        if isinstance(streams, set) and "video" in streams and row.segment is not None:
            clip = self.folder / "media" / f"{clip_slug(row.row_id)}.mp4"
            seg = row.segment
            src = f"file:{row.recording.uri}"
            span = ("-ss", f"{seg.start_s:.3f}", "-t", f"{seg.duration_s:.3f}")
            clip.unlink(missing_ok=True)  # ffmpeg -y writes through a link: drop one planted there
            err = self._run([*span, "-i", src, *VIDEO_ARGS, "-map", "0:v:0", "-map", "0:a:0?", str(clip)])
            if not err:
                # Label Studio 1.23 does not open a task whose key-frame list is empty.
                missing = [] if frames else [f"no key frames ({'; '.join(cut.notes) or 'none cut'})"]
                return TaskMedia(kind="video", url=self.url(clip), keyframes=frames, notes=missing)
            notes = [*cut.notes, f"video clip not cut: {err}"]
        elif cut.audio:
            return TaskMedia(kind="audio", url=self.url(self.folder / cut.audio))
        else:
            notes = list(cut.notes)
        media = whole_recording(row, self.config, notes)
        media.keyframes = frames  # the row's stored key frames, when it has them
        if media.kind == "video" and not frames:
            media.notes.append("no key frames: Label Studio 1.23 does not open a video task without them")
        return media


def whole_recording(row: SegmentRow, config: ReviewConfig, notes: list[str] | None = None) -> TaskMedia:
    """The recording itself with a media fragment (``#t=start,end``) for its span: what a task
    shows when the segment was not cut (no media folder, a remote or missing file)."""
    uri = row.recording.uri
    kind: MediaKind = "audio" if Path(uri.split("?")[0]).suffix.lower() in AUDIO_SUFFIXES else "video"
    span = f"#t={row.segment.start_s:.3f},{row.segment.end_s:.3f}" if row.segment else ""
    url = uri if "://" in uri else config.media_url_prefix + quote(uri)
    return TaskMedia(kind=kind, url=url + span, notes=notes or [])
