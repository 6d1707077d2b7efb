// Package detect owns anomaly detection: event-time windows over flows,
// per-edge and per-service baselines, the detectors (lateral_movement,
// scan, request_flood, credential_stuffing, error_surge, exfiltration,
// mtls_downgrade, unusual_path) and the detections they raise.
//
// detect imports models, consumer and storage (for baselines and
// history). It takes flows as a consumer.Flows and hands detections on
// through a consumer.Detections, which the detections table (storage), the
// responder and the alerter implement, so detect never imports respond or
// alert and they never import detect.
package detect
