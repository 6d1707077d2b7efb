package models

// Series is the learned normal of one feature of one edge or service, per
// detection window: a robust level and spread, learned online. It is 12
// bytes so that an edge can carry a dozen of them within its memory budget.
// detect owns the arithmetic (Learn, Surprise); this type is the state that
// is saved and restored.
type Series struct {
	// Level is the expected value per window.
	Level float32
	// Dev is the mean absolute deviation from Level; 1.25*Dev estimates
	// the standard deviation of a normal series.
	Dev float32
	// N counts the windows learned.
	N uint32
}

// Feature indexes the per-window features kept for edges, sources and
// destinations. The names (Feature.String) appear in evidence.
type Feature uint8

const (
	FeatRequests Feature = iota
	Feat4xx
	FeatAuthFail // 401 and 403
	Feat5xx
	FeatBytesOut // request bytes, caller to callee
	FeatBytesIn  // response bytes, callee to caller
	FeatPlaintext
	FeatLatencyP95 // milliseconds
	FeatDistinctDestinations
	FeatDistinctPorts
	FeatDistinctPaths
	NumFeatures
)

var featureNames = [...]string{
	"requests", "4xx", "401_403", "5xx", "bytes_out", "bytes_in",
	"plaintext", "latency_p95_ms", "distinct_destinations", "distinct_ports",
	"distinct_paths",
}

func (f Feature) String() string {
	if int(f) < len(featureNames) {
		return featureNames[f]
	}
	return "unknown"
}

// IsCount reports whether the feature counts events (and so follows a count
// model) rather than measuring a continuous quantity.
func (f Feature) IsCount() bool {
	switch f {
	case FeatBytesOut, FeatBytesIn, FeatLatencyP95:
		return false
	}
	return true
}
