package detect

import (
	"math"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/meshguard/meshguard/models"
)

// edgeFeatures are the features learned per edge; the distinct counts are
// learned per source.
const edgeFeatures = int(models.FeatLatencyP95) + 1

// edgeState is what meshguard remembers about one edge: about 250 bytes,
// plus the map entry and key, inside the 1 KiB per edge budget.
type edgeState struct {
	base    [edgeFeatures]models.Series
	firstMs int64 // event time of the first window the edge was seen in
	lastMs  int64 // start of the last window learned
	// paths holds hashes of the path templates seen, sorted, bounded.
	paths   []uint32
	methods uint16 // bit per known method
	// mtlsSeen: a window learned from showed mTLS. Only then can plaintext
	// be a downgrade: an edge whose records never said (TLS unknown) has
	// no "always used mTLS" to fall from.
	mtlsSeen bool
	// runWindows counts the windows of the current run (see holdPeak).
	runWindows uint8
	// suspectUntil: the edge was created by an attack window; it stays
	// suspect (not part of the baseline) until then.
	suspectUntil int64
	// peak is the edge's usual peak of requests per window: the largest
	// learned, decaying with a half-life of days. A batch job's hourly
	// burst is its normal, which a mean and a spread cannot say.
	peak float32
	// runPeak is the largest window of the current run: windows whose
	// requests scored at or above the threshold and raised nothing. It
	// joins peak when the run ends, so that a flood is judged against the
	// peak from before it (learn.go, holdPeak).
	runPeak float32
}

// peakDecay per window: e^-1 after 8640 windows (a day of 10 s windows).
const peakDecay = 1 - 1.0/8640

func (e *edgeState) learnPeak(x float64, windows int64) {
	p := float64(e.peak) * math.Pow(peakDecay, float64(windows))
	e.peak = float32(math.Max(p, x))
}

const maxEdgePaths = 48

func (e *edgeState) knowsPath(h uint32) bool {
	_, ok := slices.BinarySearch(e.paths, h)
	return ok
}

func (e *edgeState) addPath(h uint32) {
	i, ok := slices.BinarySearch(e.paths, h)
	if ok || len(e.paths) >= maxEdgePaths {
		return
	}
	e.paths = slices.Insert(e.paths, i, h)
}

var methodBits = map[string]uint16{
	"GET": 1 << 0, "POST": 1 << 1, "PUT": 1 << 2, "DELETE": 1 << 3, "PATCH": 1 << 4,
	"HEAD": 1 << 5, "OPTIONS": 1 << 6, "CONNECT": 1 << 7, "TRACE": 1 << 8,
}

func methodBit(m string) uint16 {
	if b, ok := methodBits[m]; ok {
		return b
	}
	return 1 << 15
}

// nodeState is a source's or a destination's memory.
type nodeState struct {
	base    [models.NumFeatures]models.Series
	firstMs int64
	lastMs  int64
	// principal is a source's learned mTLS identity.
	principal string
	// Destinations only: requests by hour of week, the callers' peer
	// groups, and the path templates served to anyone.
	seasonal *[168]models.Series
	callers  map[string]struct{}
	paths    map[uint32]struct{}
	// Sources only: the peer groups of the destinations called.
	calls map[string]struct{}
}

const (
	maxCallers   = 512
	maxDestPaths = 4096
)

func pathHash(p string) uint32 { return uint32(xxhash.Sum64String(p)) }

// peerGroup names the application a workload belongs to, across versions
// and canaries: "reviews-v3" and "reviews-v1" are peers; so are
// "checkout-canary" and "checkout". A new version calling what its peers
// already call is a deploy, not lateral movement.
func peerGroup(ep models.EndpointID) string {
	name := ep.Name
	if ep.Kind == models.KindIP {
		return ep.IP.String()
	}
	for _, suf := range []string{"-canary", "-stable", "-blue", "-green"} {
		name = strings.TrimSuffix(name, suf)
	}
	if i := strings.LastIndex(name, "-v"); i > 0 && i+2 < len(name) && isDigit(name[i+2]) {
		name = name[:i]
	}
	return ep.Namespace + "/" + name
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// catchUp learns the zeros of the windows an intermittent series was not
// seen in, so that its level is per window, not per active window. Long
// gaps are folded in with the closed form of the decay instead of a loop.
func (m Model) catchUp(s *models.Series, windows int64) {
	const loop = 64
	n := windows
	if n > loop {
		n = loop
	}
	for i := int64(0); i < n; i++ {
		m.Learn(s, 0)
	}
	rest := windows - n
	if rest <= 0 {
		return
	}
	rate := m.MinRate
	if r := 1 / (float64(s.N) + 1); r > rate {
		rate = r
	}
	keep := math.Pow(1-rate, float64(rest))
	s.Level *= float32(keep)
	s.Dev *= float32(keep)
	if s.N+uint32(min(rest, 1<<30)) > s.N {
		s.N += uint32(min(rest, 1<<30))
	}
}
