-- detections: one row per version of a detection. An ongoing attack keeps
-- its detection_id and is written again with a higher version (wider
-- window, new score, more evidence); ReplacingMergeTree keeps the highest
-- version once parts merge. Until then several versions coexist, so read
-- with FINAL (storage.Detection): the table is small, and FINAL returns
-- whole rows without an argMax per column.
--
-- No partition key: ReplacingMergeTree only replaces within a partition,
-- and the versions of one detection must always meet.
CREATE TABLE IF NOT EXISTS {{.DB}}.detections (
    detection_id           String,
    version                UInt64,
    detected_at            DateTime('UTC'),
    window_start           DateTime('UTC'),
    window_end             DateTime('UTC'),
    kind                   {{.LC}},
    severity               {{.LC}},
    score                  Float64,
    source_principal       String,
    source_workload        String,
    source_namespace       String,
    destination_workload   String,
    destination_namespace  String,
    evidence               String{{.Codec "ZSTD(3)"}}
) ENGINE = ReplacingMergeTree(version)
ORDER BY detection_id
SETTINGS index_granularity = 8192;
