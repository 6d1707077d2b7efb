-- edge_tls_hour and edge_tls_minute: every edge's requests by TLS state
-- and by answer, its first and last second, and samples of its plaintext
-- request ids, per hour and per minute, kept up to date by ClickHouse at
-- insert time as edge_minute is. The posture, the report's mTLS trend and
-- the dashboard's graph and Service map read these instead of grouping
-- every flow (storage/posture_rollup.go): whole hours of a span from
-- edge_tls_hour, whole minutes left at its ends from edge_tls_minute, the
-- seconds left from flows, so answers are those of the flows to the
-- second. Rows of one key can be split across parts until merges fold
-- them: read with GROUP BY and the -Merge combinators.
--
-- The key is edge_minute's plus destination_port, which port-level
-- PeerAuthentication needs; reporter stays in it so readers pick one side.
-- Only what 18.16 has: AggregateFunction columns fed by -State functions
-- over if(), no -If states, times as UInt32 Unix seconds. So:
--   plaintext_first_seen / _last_seen hold 4294967295 / 0 for an edge
--   without plaintext (readers ignore them when plaintext_requests is 0);
--   plaintext_samples keeps the first 10 ids of plaintext requests
--   (groupArrayIf: 18.16's groupUniqArray takes no size, unbounded it
--   would keep every id of a busy plaintext edge, and its topK loses
--   values when states merge); readers keep 5 distinct ones
--   (storage.MaxPostureSamples): min(5, distinct ids) unless more than 5
--   of the 10 repeat an id (a batch stored twice).
--   service_flows / service_requests count the flows that say which
--   workload a Service host reached (storage.ServiceWorkloads): the
--   destination's own record, or a workload resolved from the host (bit 8
--   of identity_resolved, models.ResolvedDestinationWorkload), never one
--   whose claim contradicted the cluster.
--
-- edge_tls_minute's view reads each block inserted into flows. On modern
-- servers edge_tls_hour's reads what that view writes (a row per edge and
-- minute, not per flow), so the second rollup costs inserts little; 18.16
-- cascaded only part of those blocks when tried, so there it reads flows
-- too (same columns, same states).
--
-- Flows stored before this migration are not in the rollups, and none are
-- copied in: an INSERT ... SELECT is not idempotent (a re-run or a racing
-- replica would count twice) and flows inserted while it ran would be
-- counted by it and by the views. Readers instead take every second
-- before the hour after this migration was recorded from flows (exact,
-- as slow as before); once retention has dropped those days, or once the
-- spans asked for start later, everything comes from the rollups.
{{define "edge_tls_columns"}}    reporter                   {{.LC}},
    source_principal           {{.LC}},
    source_workload            {{.LC}},
    source_namespace           {{.LC}},
    source_ip                  String,
    destination_workload       {{.LC}},
    destination_namespace      {{.LC}},
    destination_service        {{.LC}},
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
    service_requests           AggregateFunction(sum, UInt64){{end}}
{{define "edge_tls_states"}}    reporter,
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
        AND (reporter = 'destination' OR bitAnd(identity_resolved, 8) != 0), count, 0))) AS service_requests{{end}}
{{define "edge_tls_key"}}reporter, source_principal, source_workload, source_namespace, source_ip,
         destination_workload, destination_namespace, destination_service, destination_port{{end}}
CREATE TABLE IF NOT EXISTS {{.DB}}.edge_tls_minute (
    minute                     DateTime('UTC'),
{{template "edge_tls_columns" .}}
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (destination_namespace, destination_workload, destination_service, destination_port,
          source_namespace, source_workload, source_principal, source_ip, reporter, minute)
SETTINGS index_granularity = 8192{{if .Modern}}, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1{{end}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.edge_tls_minute_mv TO {{.DB}}.edge_tls_minute AS
SELECT
    toStartOfMinute(ts) AS minute,
{{template "edge_tls_states" .}}
FROM {{.DB}}.flows
GROUP BY minute, {{template "edge_tls_key"}};

CREATE TABLE IF NOT EXISTS {{.DB}}.edge_tls_hour (
    hour                       DateTime('UTC'),
{{template "edge_tls_columns" .}}
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(hour)
ORDER BY (destination_namespace, destination_workload, destination_service, destination_port,
          source_namespace, source_workload, source_principal, source_ip, reporter, hour)
SETTINGS index_granularity = 8192{{if .Modern}}, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1{{end}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.edge_tls_hour_mv TO {{.DB}}.edge_tls_hour AS
{{- if .Modern}}
SELECT
    toStartOfHour(minute) AS hour,
    {{template "edge_tls_key"}},
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
FROM {{.DB}}.edge_tls_minute
GROUP BY hour, {{template "edge_tls_key"}};
{{- else}}
SELECT
    toStartOfHour(ts) AS hour,
{{template "edge_tls_states" .}}
FROM {{.DB}}.flows
GROUP BY hour, {{template "edge_tls_key"}};
{{- end}}
