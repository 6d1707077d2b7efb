-- baselines: the detector's learned state, one snapshot per Kafka
-- partition (detect shards its state by partition), so that a restart or a
-- rebalance resumes where the previous owner stopped. The newest snapshot
-- of a partition wins (ReplacingMergeTree on saved_at, Unix nanoseconds:
-- 18.16 has no 64-bit DateTime); read with FINAL.
CREATE TABLE IF NOT EXISTS {{.DB}}.baselines (
    partition  Int32,
    saved_at   UInt64,
    state      String{{.Codec "ZSTD(3)"}}
) ENGINE = ReplacingMergeTree(saved_at)
ORDER BY partition
SETTINGS index_granularity = 8192;
