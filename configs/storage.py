"""Stage 6 config: Parquet shard layout."""

from typing import Literal

from pydantic import Field

from emoforge.configs.base import Section


class StorageConfig(Section):
    # Shards of tens of MB: a million clips make tens of files, not tens of thousands.
    # A run commits at least every flush_interval_s, so a kill -9 loses at most that much
    # work; `emoforge compact` merges what short runs leave small.
    max_rows_per_shard: int = Field(100_000, ge=1, description="Roll to a new shard past this many rows.")
    max_bytes_per_shard: int = Field(
        64 << 20, ge=1 << 16, description="Roll past this many bytes of buffered rows (uncompressed)."
    )
    flush_interval_s: float = Field(
        300.0, ge=0, description="Commit buffered rows at least this often: the most work a kill -9 loses."
    )
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    store_keyframe_jpegs: bool = Field(True, description="Keep key-frame thumbnails in rows.")
