// Package consumer holds the seams between meshguard's stages: each is a
// one-method interface, a func adapter and a fan-out with one stated error
// rule, in the manner of the OpenTelemetry Collector's consumer package.
//
//	ingest --Flows--> storage, detect
//	detect --Detections--> storage (the detections table), respond, alert
//	respond --Actions--> alert, metrics
//
// consumer imports models only, and every stage imports it, so a stage
// hands data on without importing the stage that takes it.
package consumer
