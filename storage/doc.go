// Package storage owns meshguard's ClickHouse schema (versioned, embedded
// migrations), the batch appender that ingest writes flows through, and the
// narrow query interfaces that detect and respond read baselines, history
// and blast radius through.
//
// storage imports models and consumer only. detect, respond and alert
// import storage; storage imports none of them. The row codec (codec.go)
// is the one place that turns detections and actions into rows and back.
//
// # Schema
//
// Migrations are migrations/NNN_name.sql, embedded, rendered per server by
// text/template (see RenderMigrations) and applied by Migrate, which
// records each version in schema_migrations. One set of files serves
// Debian's ClickHouse 18.16 and modern servers (24.1 and later): the
// tables, columns and queries are the same, and only
// modern servers get TTL, column codecs and LowCardinality(String) (18.16
// gets String: its LowCardinality is experimental and slowed inserts by
// about 40%). Every migration statement is idempotent, which is what
// makes Migrate safe to repeat and to run from several processes at once.
//
//   - flows: one row per flow. ts (DateTime, UTC) partitions by day, sorts
//     and expires; ts_ms (Int64 Unix milliseconds) is the exact event time,
//     since 18.16 has no DateTime64. Sorted by destination namespace,
//     workload, ts.
//   - flows_by_source: a materialized view's copy of flows' identity and
//     outcome columns sorted by source namespace, workload, principal, ts,
//     for per-source time ranges (18.16 has no projections or skipping
//     indices).
//   - edge_minute: an AggregatingMergeTree filled by a materialized view:
//     per minute, reporter and edge (models.Edge's identity), sums of
//     requests, status classes, 401s, 403s and bytes, and t-digest latency
//     states. Read with GROUP BY and -Merge combinators; EdgeMinutes holds
//     the query.
//   - detections: ReplacingMergeTree(version) by detection_id; read with
//     FINAL (Detection).
//   - actions: append-only audit log.
//
// # Retention
//
// flows, flows_by_source and edge_minute are partitioned by UTC day. On
// modern servers Migrate sets a TTL of the configured days that drops
// whole parts; 18.16 has no TTL, so call DropExpiredPartitions
// periodically there (it works everywhere).
//
// # Errors
//
// Writers return Permanent errors when the request itself is wrong for the
// schema (unknown table or column, a column type that does not take the
// value) and plain, retryable errors otherwise, including authentication
// failures and server codes not known to be permanent: a batch is kept
// rather than dropped when in doubt. Migrate, which runs at start-up, also
// makes authentication and access errors permanent.
package storage
