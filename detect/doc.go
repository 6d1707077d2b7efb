// Package detect owns anomaly detection: event-time windows over flows,
// per-edge and per-service baselines, the detectors (lateral_movement,
// scan, request_flood, credential_stuffing, error_surge, exfiltration,
// mtls_downgrade, unusual_path) and the detections they raise.
//
// detect imports models and storage; it hands detections onward through a
// small interface that respond implements, so detect never imports respond
// and respond never imports detect (data flows detect -> respond).
package detect
