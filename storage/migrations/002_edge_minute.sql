-- edge_minute: per-minute totals of every edge, kept up to date by
-- ClickHouse itself: the view below aggregates each block inserted into
-- flows, and background merges fold the partial rows together. Rows of one
-- key can therefore still be split across parts: always read with GROUP BY
-- on the key and the -Merge combinators (storage.EdgeMinutes shows how).
--
-- The key mirrors models.Edge: a source is its workload, else its mTLS
-- principal, else (plaintext callers) its IP, which is kept only then so
-- that pod IPs do not split an identified edge. reporter is part of the key
-- because Istio logs a request on both sides: readers pick one side (or
-- prefer destination) instead of counting it twice.
--
-- Latency: quantilesTDigestWeighted, weighted by count, exists on 18.16 and
-- on modern servers with the same state type; quantileTiming would clamp
-- the slow requests that matter here. The levels are part of the state's
-- type: read with quantilesTDigestWeightedMerge(0.5, 0.9, 0.99).
CREATE TABLE IF NOT EXISTS {{.DB}}.edge_minute (
    minute                 DateTime('UTC'),
    reporter               {{.LC}},
    source_principal       {{.LC}},
    source_workload        {{.LC}},
    source_namespace       {{.LC}},
    source_ip              String,
    destination_workload   {{.LC}},
    destination_namespace  {{.LC}},
    destination_service    {{.LC}},
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
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (destination_namespace, destination_workload, destination_service,
          source_namespace, source_workload, source_principal, source_ip, reporter, minute)
SETTINGS index_granularity = 8192{{if .Modern}}, ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1{{end}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.edge_minute_mv TO {{.DB}}.edge_minute AS
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
FROM {{.DB}}.flows
GROUP BY minute, reporter, source_principal, source_workload, source_namespace, source_ip,
         destination_workload, destination_namespace, destination_service;
