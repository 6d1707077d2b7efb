// Package ingest owns the way in: it fetches OTLP telemetry (access logs,
// spans, metrics) from Kafka, decodes it into models.Flow, hands batches to
// a consumer (storage, detection) and commits Kafka offsets only after that
// consumer accepted them. Undecodable messages go to a dead-letter topic.
//
// Dependencies run one way: ingest imports models and consumer (its next
// stage is a consumer.Flows), and no other stage; nothing in storage,
// detect or respond imports ingest.
package ingest
