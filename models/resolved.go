package models

// Resolved is a set of identity fields that were filled from the cluster
// rather than reported by a proxy. Telemetry is evidence and the cluster is
// another source of it: keeping which is which lets detection and response
// weigh a reported identity against a resolved one. Stored as one byte
// (flows.identity_resolved).
type Resolved uint8

const (
	ResolvedSourceWorkload Resolved = 1 << iota
	ResolvedSourceNamespace
	ResolvedSourcePrincipal
	ResolvedDestinationWorkload
	ResolvedDestinationNamespace
	ResolvedDestinationPrincipal
)

var resolvedNames = [...]string{"source_workload", "source_namespace", "source_principal",
	"destination_workload", "destination_namespace", "destination_principal"}

// Has reports whether every field in f is in r.
func (r Resolved) Has(f Resolved) bool { return r&f == f }

// Fields lists the names of the fields in r, in declaration order.
func (r Resolved) Fields() []string {
	var out []string
	for i, n := range resolvedNames {
		if r&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}
