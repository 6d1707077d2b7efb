// Package respond owns what meshguard does about a detection: the decision
// (alert, block an edge, quarantine a workload), the guardrails (dry-run,
// TTL, budgets, protected namespaces, blast radius), the policy backends
// (Istio AuthorizationPolicy through the Kubernetes API, NetworkPolicy,
// GitOps files) and the alerts to humans.
//
// respond imports models and storage; it consumes detections, never the
// detectors, so it does not import detect or ingest.
package respond
