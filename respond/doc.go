// Package respond owns what meshguard does about a detection: the decision
// (alert, block an edge, quarantine a workload), the guardrails (dry-run,
// TTL, budgets, protected namespaces, blast radius), the policy backends
// (Istio AuthorizationPolicy through the Kubernetes API, NetworkPolicy,
// GitOps files). Alerts to humans are package alert's.
//
// respond imports models, consumer and storage; it takes detections as a
// consumer.Detections and tells of its decisions through a
// consumer.Actions, so it imports neither detect, ingest nor alert.
package respond
