// Package policy suggests least-privilege Istio ALLOW AuthorizationPolicies
// from the traffic meshguard stored, and rolls them out: dry-run first,
// the dry-run's verdicts read back from the flows Istio logged, promotion
// only after a clean soak, revocable and audited like respond's actions.
//
// It is apart from respond on purpose. respond answers detections with
// DENY policies that expire; an ALLOW policy is learned from history,
// never expires by itself (its expiry would silently widen access again),
// and decides for every caller of a workload what respond decides for
// one. respond's reconcile loop must therefore never see these objects:
// they carry meshguard's managed-by label but not respond's instance
// label (LabelAllowInstance instead). And meshguard's service account is
// refused ALLOW policies by deploy/kubernetes/admission-policy.yaml, so a
// rollout runs with a person's credentials (the CLI), or through git.
package policy
