"""Stage 6 config: Parquet shard layout."""

from typing import Literal

from pydantic import Field

from emoforge.configs.base import Section


class StorageConfig(Section):
    max_rows_per_shard: int = Field(500, ge=1, description="Roll to a new shard past this many rows.")
    max_bytes_per_shard: int = Field(256 << 20, ge=1 << 16, description="Roll past this size.")
    flush_interval_s: float = Field(30.0, ge=0, description="Commit buffered rows at least this often.")
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    store_keyframe_jpegs: bool = Field(True, description="Keep key-frame thumbnails in rows.")
