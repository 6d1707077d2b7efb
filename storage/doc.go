// Package storage owns meshguard's ClickHouse schema (versioned, embedded
// migrations), the batch appender that ingest writes flows through, and the
// narrow query interfaces that detect and respond read baselines, history
// and blast radius through.
//
// storage imports models only. ingest, detect and respond import storage;
// storage imports none of them.
package storage
