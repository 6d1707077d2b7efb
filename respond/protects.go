package respond

import "fmt"

// Protects returns why the guardrails keep meshguard's policies off the
// workload ns/workload ("" when they do not): meshguard's own and Istio's
// root namespace, respond.protected_namespaces and
// respond.protected_workloads, as the responder checks a destination.
func (c Config) Protects(ns, workload string) string {
	for _, p := range append(ownNamespaces(c), c.ProtectedNamespaces...) {
		if ns != "" && p == ns {
			return fmt.Sprintf("protected: namespace %s is in respond.protected_namespaces (or meshguard's own, or the root namespace)", ns)
		}
	}
	for _, p := range c.ProtectedWorkloads {
		if workload != "" && (workload == p || workload == p+"-service-account") {
			return fmt.Sprintf("protected: %s is in respond.protected_workloads", workload)
		}
	}
	return ""
}
