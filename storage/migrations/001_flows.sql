-- flows: one row per observed request (or per aggregate of Count requests).
--
-- Event time: 18.16 has no DateTime64, so ts (DateTime, seconds, UTC) is
-- what partitions, sorts and expires rows, and ts_ms (Int64 Unix
-- milliseconds) is the exact event time. Query ranges on ts so the primary
-- key and partition pruning apply; refine with ts_ms when milliseconds matter.
--
-- Sorted by destination then time: detect reads "everything that reached
-- workload X between t0 and t1". Per-source reads go to flows_by_source.
CREATE TABLE IF NOT EXISTS {{.DB}}.flows (
    ts                     DateTime('UTC'){{.Codec "Delta, ZSTD(1)"}},
    ts_ms                  Int64{{.Codec "Delta, ZSTD(1)"}},
    flow_id                FixedString(16),
    reporter               {{.LC}},
    source_principal       {{.LC}},
    source_workload        {{.LC}},
    source_namespace       {{.LC}},
    source_ip              String,
    destination_principal  {{.LC}},
    destination_workload   {{.LC}},
    destination_namespace  {{.LC}},
    destination_service    {{.LC}},
    destination_port       UInt16,
    protocol               {{.LC}},
    method                 {{.LC}},
    path                   String{{.Codec "ZSTD(1)"}},
    path_template          {{.LC}},
    response_code          UInt16,
    response_flags         {{.LC}},
    bytes_sent             UInt64,
    bytes_received         UInt64,
    duration_ms            UInt32,
    mtls                   UInt8,
    tls_version            {{.LC}},
    user_agent             String{{.Codec "ZSTD(1)"}},
    request_id             String{{.Codec "ZSTD(1)"}},
    trace_id               FixedString(16),
    count                  UInt32
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (destination_namespace, destination_workload, ts)
SETTINGS index_granularity = 8192{{if .Modern}}, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1{{end}};

-- flows_by_source: the same flows sorted by caller, for "what did source S
-- call between t0 and t1" (fan-out, scanning, lateral movement). 18.16 has
-- neither projections nor skipping indices, so a second table fed by a
-- materialized view is the one way to get a second sort order there; modern
-- servers use it too so that queries are the same everywhere. It costs a
-- second sort and write of every insert, so it keeps only what per-source
-- questions group by: who called what, how, with which answer. Volumes
-- and latencies per source come from edge_minute; paths, user agents and
-- ids from flows (by destination, ts and flow_id).
CREATE TABLE IF NOT EXISTS {{.DB}}.flows_by_source (
    ts                     DateTime('UTC'){{.Codec "Delta, ZSTD(1)"}},
    flow_id                FixedString(16),
    reporter               {{.LC}},
    source_principal       {{.LC}},
    source_workload        {{.LC}},
    source_namespace       {{.LC}},
    source_ip              String,
    destination_workload   {{.LC}},
    destination_namespace  {{.LC}},
    destination_service    {{.LC}},
    destination_port       UInt16,
    method                 {{.LC}},
    path_template          {{.LC}},
    response_code          UInt16,
    mtls                   UInt8,
    count                  UInt32
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (source_namespace, source_workload, source_principal, ts)
SETTINGS index_granularity = 8192{{if .Modern}}, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1{{end}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.flows_by_source_mv TO {{.DB}}.flows_by_source AS
SELECT ts, flow_id, reporter,
       source_principal, source_workload, source_namespace, source_ip,
       destination_workload, destination_namespace, destination_service, destination_port,
       method, path_template, response_code, mtls, count
FROM {{.DB}}.flows;
