-- meshguard's tables on a replicated ClickHouse cluster (24.x and later):
-- one shard, N replicas, ClickHouse Keeper. Run once, before meshguard's
-- first start, with a user allowed DDL ON CLUSTER:
--
--   clickhouse-client --multiquery < deploy/clickhouse/replicated.sql
--
-- '{cluster}', '{shard}' and '{replica}' are the servers' macros
-- (<macros> in config.xml); {database} and {table} are expanded by the
-- server. meshguard's own migrations then find every table in place
-- (CREATE ... IF NOT EXISTS) and leave them as they are; its retention
-- sees the TTL below and changes it (ALTER ... MODIFY TTL, replicated
-- through Keeper) only when clickhouse.retention_days differs from 30.
--
-- The columns, keys and settings are exactly those of
-- storage/migrations/*.sql as a modern server receives them; test/deploy
-- checks that in chDB, and a new migration must be added here too.
--
-- Simpler alternative (no file to keep in step): create the database
-- with the Replicated engine before meshguard starts,
--   CREATE DATABASE meshguard ON CLUSTER '{cluster}'
--     ENGINE = Replicated('/clickhouse/databases/meshguard', '{shard}', '{replica}');
-- and meshguard's own migrations become replicated DDL, their MergeTree
-- tables Replicated*MergeTree (see README.md).

CREATE DATABASE IF NOT EXISTS meshguard ON CLUSTER '{cluster}';

-- flows: one row per observed request. Replicated; TTL drops whole day
-- parts after clickhouse.retention_days (30 here: keep the two equal).
CREATE TABLE IF NOT EXISTS meshguard.flows ON CLUSTER '{cluster}' (
    ts                     DateTime('UTC') CODEC(Delta, ZSTD(1)),
    ts_ms                  Int64 CODEC(Delta, ZSTD(1)),
    flow_id                FixedString(16),
    reporter               LowCardinality(String),
    source_principal       LowCardinality(String),
    source_workload        LowCardinality(String),
    source_namespace       LowCardinality(String),
    source_ip              String,
    destination_principal  LowCardinality(String),
    destination_workload   LowCardinality(String),
    destination_namespace  LowCardinality(String),
    destination_service    LowCardinality(String),
    destination_port       UInt16,
    protocol               LowCardinality(String),
    method                 LowCardinality(String),
    path                   String CODEC(ZSTD(1)),
    path_template          LowCardinality(String),
    response_code          UInt16,
    response_flags         LowCardinality(String),
    bytes_sent             UInt64,
    bytes_received         UInt64,
    duration_ms            UInt32,
    mtls                   UInt8,
    tls_version            LowCardinality(String),
    user_agent             String CODEC(ZSTD(1)),
    request_id             String CODEC(ZSTD(1)),
    trace_id               FixedString(16),
    count                  UInt32,
    identity_resolved      UInt8 DEFAULT 0,
    identity_conflict      UInt8 DEFAULT 0,
    dry_run_allow          UInt8 DEFAULT 0
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMMDD(ts)
ORDER BY (destination_namespace, destination_workload, ts)
TTL ts + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

-- flows_by_source: the same flows sorted by caller, filled by the view
-- below on the replica that received the insert (replicated inserts do
-- not fire views again: no double counting).
CREATE TABLE IF NOT EXISTS meshguard.flows_by_source ON CLUSTER '{cluster}' (
    ts                     DateTime('UTC') CODEC(Delta, ZSTD(1)),
    flow_id                FixedString(16),
    reporter               LowCardinality(String),
    source_principal       LowCardinality(String),
    source_workload        LowCardinality(String),
    source_namespace       LowCardinality(String),
    source_ip              String,
    destination_workload   LowCardinality(String),
    destination_namespace  LowCardinality(String),
    destination_service    LowCardinality(String),
    destination_port       UInt16,
    method                 LowCardinality(String),
    path_template          LowCardinality(String),
    response_code          UInt16,
    mtls                   UInt8,
    count                  UInt32
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMMDD(ts)
ORDER BY (source_namespace, source_workload, source_principal, ts)
TTL ts + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS meshguard.flows_by_source_mv ON CLUSTER '{cluster}' TO meshguard.flows_by_source AS
SELECT ts, flow_id, reporter,
       source_principal, source_workload, source_namespace, source_ip,
       destination_workload, destination_namespace, destination_service, destination_port,
       method, path_template, response_code, mtls, count
FROM meshguard.flows;

-- edge_minute: per-minute edge rollups (AggregatingMergeTree).
CREATE TABLE IF NOT EXISTS meshguard.edge_minute ON CLUSTER '{cluster}' (
    minute                 DateTime('UTC'),
    reporter               LowCardinality(String),
    source_principal       LowCardinality(String),
    source_workload        LowCardinality(String),
    source_namespace       LowCardinality(String),
    source_ip              String,
    destination_workload   LowCardinality(String),
    destination_namespace  LowCardinality(String),
    destination_service    LowCardinality(String),
    requests               AggregateFunction(sum, UInt64),
    responses_2xx          AggregateFunction(sum, UInt64),
    responses_3xx          AggregateFunction(sum, UInt64),
    responses_4xx          AggregateFunction(sum, UInt64),
    responses_5xx          AggregateFunction(sum, UInt64),
    responses_401          AggregateFunction(sum, UInt64),
    responses_403          AggregateFunction(sum, UInt64),
    bytes_sent             AggregateFunction(sum, UInt64),
    bytes_received         AggregateFunction(sum, UInt64),
    duration_ms_quantiles  AggregateFunction(quantilesTDigestWeighted(0.5, 0.9, 0.99), UInt32, UInt32)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMMDD(minute)
ORDER BY (destination_namespace, destination_workload, destination_service,
          source_namespace, source_workload, source_principal, source_ip, reporter, minute)
TTL minute + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS meshguard.edge_minute_mv ON CLUSTER '{cluster}' TO meshguard.edge_minute AS
SELECT
    toStartOfMinute(ts) AS minute,
    reporter,
    source_principal,
    source_workload,
    source_namespace,
    if(source_workload = '' AND source_principal = '', source_ip, '') AS source_ip,
    destination_workload,
    destination_namespace,
    destination_service,
    sumState(toUInt64(count)) AS requests,
    sumState(toUInt64(if(response_code >= 200 AND response_code < 300, count, 0))) AS responses_2xx,
    sumState(toUInt64(if(response_code >= 300 AND response_code < 400, count, 0))) AS responses_3xx,
    sumState(toUInt64(if(response_code >= 400 AND response_code < 500, count, 0))) AS responses_4xx,
    sumState(toUInt64(if(response_code >= 500 AND response_code < 600, count, 0))) AS responses_5xx,
    sumState(toUInt64(if(response_code = 401, count, 0))) AS responses_401,
    sumState(toUInt64(if(response_code = 403, count, 0))) AS responses_403,
    sumState(bytes_sent) AS bytes_sent,
    sumState(bytes_received) AS bytes_received,
    quantilesTDigestWeightedState(0.5, 0.9, 0.99)(duration_ms, count) AS duration_ms_quantiles
FROM meshguard.flows
GROUP BY minute, reporter, source_principal, source_workload, source_namespace, source_ip,
         destination_workload, destination_namespace, destination_service;

-- edge_tls_hour and edge_tls_minute: per-hour and per-minute edge
-- rollups by TLS state for the posture, the report and the graph
-- (storage/migrations/010_edge_tls_rollup.sql says what each column
-- holds). Filled like edge_minute, on the replica that received the
-- insert; edge_tls_hour from what edge_tls_minute's view writes.
CREATE TABLE IF NOT EXISTS meshguard.edge_tls_minute ON CLUSTER '{cluster}' (
    minute                     DateTime('UTC'),
    reporter                   LowCardinality(String),
    source_principal           LowCardinality(String),
    source_workload            LowCardinality(String),
    source_namespace           LowCardinality(String),
    source_ip                  String,
    destination_workload       LowCardinality(String),
    destination_namespace      LowCardinality(String),
    destination_service        LowCardinality(String),
    destination_port           UInt16,
    max_destination_principal  AggregateFunction(max, String),
    requests                   AggregateFunction(sum, UInt64),
    responses_4xx              AggregateFunction(sum, UInt64),
    responses_5xx              AggregateFunction(sum, UInt64),
    mtls_requests              AggregateFunction(sum, UInt64),
    plaintext_requests         AggregateFunction(sum, UInt64),
    unknown_requests           AggregateFunction(sum, UInt64),
    first_seen                 AggregateFunction(min, UInt32),
    last_seen                  AggregateFunction(max, UInt32),
    plaintext_first_seen       AggregateFunction(min, UInt32),
    plaintext_last_seen        AggregateFunction(max, UInt32),
    plaintext_samples          AggregateFunction(groupArrayIf(10), String, UInt8),
    service_flows              AggregateFunction(sum, UInt64),
    service_requests           AggregateFunction(sum, UInt64)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMMDD(minute)
ORDER BY (destination_namespace, destination_workload, destination_service, destination_port,
          source_namespace, source_workload, source_principal, source_ip, reporter, minute)
TTL minute + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS meshguard.edge_tls_minute_mv ON CLUSTER '{cluster}' TO meshguard.edge_tls_minute AS
SELECT
    toStartOfMinute(ts) AS minute,
    reporter,
    source_principal,
    source_workload,
    source_namespace,
    if(source_workload = '' AND source_principal = '', source_ip, '') AS source_ip,
    destination_workload,
    destination_namespace,
    destination_service,
    destination_port,
    maxState(CAST(destination_principal AS String)) AS max_destination_principal,
    sumState(toUInt64(count)) AS requests,
    sumState(toUInt64(if(response_code >= 400 AND response_code < 500, count, 0))) AS responses_4xx,
    sumState(toUInt64(if(response_code >= 500 AND response_code < 600, count, 0))) AS responses_5xx,
    sumState(toUInt64(if(mtls = 1, count, 0))) AS mtls_requests,
    sumState(toUInt64(if(mtls = 2, count, 0))) AS plaintext_requests,
    sumState(toUInt64(if(mtls NOT IN (1, 2), count, 0))) AS unknown_requests,
    minState(toUInt32(ts)) AS first_seen,
    maxState(toUInt32(ts)) AS last_seen,
    minState(toUInt32(if(mtls = 2, toUInt32(ts), 4294967295))) AS plaintext_first_seen,
    maxState(toUInt32(if(mtls = 2, toUInt32(ts), 0))) AS plaintext_last_seen,
    groupArrayIfState(10)(request_id, mtls = 2 AND request_id != '') AS plaintext_samples,
    sumState(toUInt64(destination_service != '' AND destination_workload != '' AND identity_conflict = 0
        AND (reporter = 'destination' OR bitAnd(identity_resolved, 8) != 0))) AS service_flows,
    sumState(toUInt64(if(destination_service != '' AND destination_workload != '' AND identity_conflict = 0
        AND (reporter = 'destination' OR bitAnd(identity_resolved, 8) != 0), count, 0))) AS service_requests
FROM meshguard.flows
GROUP BY minute, reporter, source_principal, source_workload, source_namespace, source_ip,
         destination_workload, destination_namespace, destination_service, destination_port;

CREATE TABLE IF NOT EXISTS meshguard.edge_tls_hour ON CLUSTER '{cluster}' (
    hour                       DateTime('UTC'),
    reporter                   LowCardinality(String),
    source_principal           LowCardinality(String),
    source_workload            LowCardinality(String),
    source_namespace           LowCardinality(String),
    source_ip                  String,
    destination_workload       LowCardinality(String),
    destination_namespace      LowCardinality(String),
    destination_service        LowCardinality(String),
    destination_port           UInt16,
    max_destination_principal  AggregateFunction(max, String),
    requests                   AggregateFunction(sum, UInt64),
    responses_4xx              AggregateFunction(sum, UInt64),
    responses_5xx              AggregateFunction(sum, UInt64),
    mtls_requests              AggregateFunction(sum, UInt64),
    plaintext_requests         AggregateFunction(sum, UInt64),
    unknown_requests           AggregateFunction(sum, UInt64),
    first_seen                 AggregateFunction(min, UInt32),
    last_seen                  AggregateFunction(max, UInt32),
    plaintext_first_seen       AggregateFunction(min, UInt32),
    plaintext_last_seen        AggregateFunction(max, UInt32),
    plaintext_samples          AggregateFunction(groupArrayIf(10), String, UInt8),
    service_flows              AggregateFunction(sum, UInt64),
    service_requests           AggregateFunction(sum, UInt64)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMMDD(hour)
ORDER BY (destination_namespace, destination_workload, destination_service, destination_port,
          source_namespace, source_workload, source_principal, source_ip, reporter, hour)
TTL hour + toIntervalDay(30)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS meshguard.edge_tls_hour_mv ON CLUSTER '{cluster}' TO meshguard.edge_tls_hour AS
SELECT
    toStartOfHour(minute) AS hour,
    reporter, source_principal, source_workload, source_namespace, source_ip,
         destination_workload, destination_namespace, destination_service, destination_port,
    maxMergeState(max_destination_principal) AS max_destination_principal,
    sumMergeState(requests) AS requests,
    sumMergeState(responses_4xx) AS responses_4xx,
    sumMergeState(responses_5xx) AS responses_5xx,
    sumMergeState(mtls_requests) AS mtls_requests,
    sumMergeState(plaintext_requests) AS plaintext_requests,
    sumMergeState(unknown_requests) AS unknown_requests,
    minMergeState(first_seen) AS first_seen,
    maxMergeState(last_seen) AS last_seen,
    minMergeState(plaintext_first_seen) AS plaintext_first_seen,
    maxMergeState(plaintext_last_seen) AS plaintext_last_seen,
    groupArrayIfMergeState(10)(plaintext_samples) AS plaintext_samples,
    sumMergeState(service_flows) AS service_flows,
    sumMergeState(service_requests) AS service_requests
FROM meshguard.edge_tls_minute
GROUP BY hour, reporter, source_principal, source_workload, source_namespace, source_ip,
         destination_workload, destination_namespace, destination_service, destination_port;

-- detections: versions of each detection; read with FINAL. Replicas
-- of one shard hold every version, so FINAL sees them all.
CREATE TABLE IF NOT EXISTS meshguard.detections ON CLUSTER '{cluster}' (
    detection_id           String,
    version                UInt64,
    detected_at            DateTime('UTC'),
    window_start           DateTime('UTC'),
    window_end             DateTime('UTC'),
    kind                   LowCardinality(String),
    severity               LowCardinality(String),
    score                  Float64,
    source_principal       String,
    source_workload        String,
    source_namespace       String,
    destination_workload   String,
    destination_namespace  String,
    evidence               String CODEC(ZSTD(3)),
    incident_id            String DEFAULT ''
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version)
ORDER BY detection_id
SETTINGS index_granularity = 8192;

-- actions: the audit log of what respond did and who approved or
-- revoked. Kept: no TTL.
CREATE TABLE IF NOT EXISTS meshguard.actions ON CLUSTER '{cluster}' (
    action_id              String,
    at                     DateTime('UTC'),
    detection_id           String,
    kind                   LowCardinality(String),
    mode                   LowCardinality(String),
    state                  LowCardinality(String),
    actor                  String,
    reason                 String,
    target                 String,
    policy_name            String,
    policy_namespace       String,
    expires_at             DateTime('UTC')
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(at)
ORDER BY (at, action_id)
SETTINGS index_granularity = 8192;

-- baselines: the detector's state per Kafka partition. Kept (small).
CREATE TABLE IF NOT EXISTS meshguard.baselines ON CLUSTER '{cluster}' (
    partition  Int32,
    saved_at   UInt64,
    state      String CODEC(ZSTD(3)),
    released   UInt8 DEFAULT 0
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', saved_at)
ORDER BY partition
SETTINGS index_granularity = 8192;
