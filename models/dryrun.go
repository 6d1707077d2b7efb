package models

// DryRun is what Istio's dry-run (istio.io/dry-run) ALLOW policies said
// of one request: Envoy's rbac filter puts the shadow engine's verdict in
// its dynamic metadata (istio_dry_run_allow_shadow_engine_result), which
// an access log carries when its format asks for it. Stored as one byte
// (flows.dry_run_allow).
type DryRun uint8

const (
	// DryRunUnknown: the record did not say (no dry-run ALLOW policy
	// selects the workload, or the log format lacks the field).
	DryRunUnknown DryRun = iota
	DryRunAllowed
	DryRunDenied
)

// ParseDryRun reads Envoy's "allowed" and "denied"; anything else is
// unknown.
func ParseDryRun(s string) DryRun {
	switch s {
	case "allowed":
		return DryRunAllowed
	case "denied":
		return DryRunDenied
	}
	return DryRunUnknown
}
