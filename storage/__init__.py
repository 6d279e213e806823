"""Records, Arrow schema and Parquet shards: the bottom layer every other module uses."""
