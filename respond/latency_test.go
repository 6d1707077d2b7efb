package respond

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
)

// Where the responder's time goes, from a detection to its applied
// policy, against the real kube-apiserver and ClickHouse: a profile for
// BENCHMARKS.md, not a test (no timed assertion). Run with
//
//	MESHGUARD_RESPOND_PROFILE=1 go test -count=1 -p 1 ./respond -run TestKubeResponderLatencyProfile -v

// timings accumulates durations by name.
type timings struct {
	mu sync.Mutex
	by map[string][]time.Duration
}

func (tm *timings) add(name string, d time.Duration) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.by == nil {
		tm.by = map[string][]time.Duration{}
	}
	tm.by[name] = append(tm.by[name], d)
}

func (tm *timings) report(t *testing.T, n int) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	names := make([]string, 0, len(tm.by))
	for k := range tm.by {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ds := slices.Clone(tm.by[k])
		slices.Sort(ds)
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		t.Logf("%-60s calls/detection %5.2f  median %8s  total/detection %8s", k, float64(len(ds))/float64(n),
			ds[len(ds)/2].Round(10*time.Microsecond), (sum / time.Duration(n)).Round(10*time.Microsecond))
	}
}

type timedTransport struct {
	next http.RoundTripper
	tm   *timings
}

func (tt timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := tt.next.RoundTrip(req)
	// The resource, not the object: /api/v1/namespaces/NS/pods -> pods.
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	res := parts[len(parts)-1]
	if i := slices.Index(parts, "namespaces"); i >= 0 && i+2 < len(parts) {
		res = parts[i+2]
	}
	tt.tm.add("kube "+req.Method+" "+res, time.Since(start))
	return resp, err
}

// timedStore times the audit log's writes and reads.
type timedStore struct {
	*storage.ClickHouse
	tm *timings
}

func (s timedStore) WriteAction(ctx context.Context, a storage.ActionRow) error {
	start := time.Now()
	defer func() { s.tm.add("clickhouse audit insert", time.Since(start)) }()
	return s.ClickHouse.WriteAction(ctx, a)
}

func (s timedStore) HumanDecisions(ctx context.Context, id string, since time.Time) ([]storage.ActionRow, error) {
	start := time.Now()
	defer func() { s.tm.add("clickhouse revoke read (held)", time.Since(start)) }()
	return s.ClickHouse.HumanDecisions(ctx, id, since)
}

func (s timedStore) BlastRadius(ctx context.Context, q storage.BlastQuery) (storage.BlastRadius, error) {
	start := time.Now()
	defer func() { s.tm.add("clickhouse blast radius", time.Since(start)) }()
	return s.ClickHouse.BlastRadius(ctx, q)
}

func TestKubeResponderLatencyProfile(t *testing.T) {
	if os.Getenv("MESHGUARD_RESPOND_PROFILE") == "" {
		t.Skip("a profile for BENCHMARKS.md: set MESHGUARD_RESPOND_PROFILE=1")
	}
	e := newKubeEnv(t)
	store := newCHStore(t)
	tm := &timings{}
	rc := rest.CopyConfig(e.cfg)
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return timedTransport{rt, tm} }
	cfg := e.config(models.ModeEnforce)
	cfg.BudgetPerHour = 1000
	cfg.BlastRadiusMaxRequests = 0
	ts := timedStore{store, tm}
	r, err := New(cfg, Deps{Kube: rc, Actions: ts, Brake: ts, Blast: ts, Identity: "profile-" + randSuffix()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	for i := range n {
		wl := fmt.Sprintf("caller-%d", i)
		e.deployment(t, e.app, wl)
		e.serviceAccount(t, e.app, wl)
	}
	ctx := context.Background()
	var total []time.Duration
	handle := func(d models.Detection) {
		start := time.Now()
		if err := r.HandleDetection(ctx, d); err != nil {
			t.Fatal(err)
		}
		total = append(total, time.Since(start))
	}
	// n new actions, then each repeated once (an update of the same
	// detection, as early firing then the window's close give).
	var ds []models.Detection
	for i := range n {
		wl := fmt.Sprintf("caller-%d", i)
		ds = append(ds, models.Detection{ID: "det-" + randSuffix(), Kind: models.LateralMovement, Severity: models.SeverityHigh, Score: 9,
			Source:      models.Party{Principal: e.principal(wl), Namespace: e.app, Workload: wl},
			Destination: models.Party{Namespace: e.app, Workload: "payments"}, Updates: 1})
	}
	for _, d := range ds {
		handle(d)
	}
	news := slices.Clone(total)
	for _, d := range ds {
		d.Updates++
		handle(d)
	}
	repeats := total[len(news):]
	slices.Sort(news)
	slices.Sort(repeats)
	t.Logf("HandleDetection, new action: median %s, max %s; repeat (extend): median %s, max %s",
		news[n/2].Round(100*time.Microsecond), news[n-1].Round(100*time.Microsecond),
		repeats[n/2].Round(100*time.Microsecond), repeats[n-1].Round(100*time.Microsecond))
	if e.count(t) != n {
		t.Errorf("%d policies, want %d", e.count(t), n)
	}
	tm.report(t, 2*n)
}
