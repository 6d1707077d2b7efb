package detect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
)

// storm returns n requests of src to dst answered 503 as a caller retrying
// an unavailable destination logs them: the destination proxy one record
// per attempt (503 via_upstream), the caller's proxy one with the final
// answer and URX. flags replaces URX on the caller's record ("UF,URX":
// connection failures; "UO": the caller's circuit breaker, no attempt
// reaches the destination).
func storm(ws int64, src, dst string, n int, flags string) []models.Flow {
	var out []models.Flow
	for k := 0; k < n; k++ {
		f := flow(ws+int64(k), src, dst, "/ratings/{id}", 503)
		f.ResponseFlags = flags
		out = append(out, f)
		if flags == "UO" {
			continue
		}
		for attempt := 0; attempt < 3; attempt++ {
			s := flow(ws+int64(k)+int64(attempt), src, dst, "/ratings/{id}", 503)
			s.Reporter = models.ReporterDestination
			s.ResponseFlags = "-"
			out = append(out, s)
		}
	}
	return out
}

func attackWindows(from, n int, attack func(ws int64) []models.Flow) func(m *mini, i int, ws int64) []models.Flow {
	return func(m *mini, i int, ws int64) []models.Flow {
		if i >= from && i < from+n {
			return attack(ws)
		}
		return nil
	}
}

func TestRetryStormIsNoErrorSurge(t *testing.T) {
	for _, flags := range []string{"URX", "UF,URX", "UO"} {
		t.Run(flags, func(t *testing.T) {
			// One caller retrying its one failing destination: before the
			// confounder rule, reviews-v1 carried all of ratings' errors
			// and this raised error_surge.
			c := run(t, 3, trainWindows, trainWindows+40, attackWindows(trainWindows+10, 6, func(ws int64) []models.Flow {
				// Demand about twice the edge's usual 5 a window, every
				// request failing: up to 3 attempts each (Istio's default
				// of 2 retries), under the flood rule's 5x.
				n := 10
				if flags == "UO" {
					n = 14 // rejected by the caller's proxy: one record each
				}
				return storm(ws, "books/reviews-v1", "books/ratings", n, flags)
			}))
			for _, d := range c.got {
				t.Errorf("retry storm raised %s %s: %s", d.Kind, d.Severity, d.Evidence.Summary)
			}
		})
	}
}

func TestDestinationOutageIsALowReliabilityEvent(t *testing.T) {
	c := run(t, 4, trainWindows, trainWindows+40, attackWindows(trainWindows+10, 4, func(ws int64) []models.Flow {
		out := storm(ws, "books/reviews-v1", "books/ratings", 8, "URX")
		return append(out, storm(ws, "books/reviews-v2", "books/ratings", 8, "UF,URX")...)
	}))
	var outages int
	for _, d := range c.got {
		if d.Kind != models.DestinationOutage {
			t.Errorf("outage raised %s %s: %s", d.Kind, d.Severity, d.Evidence.Summary)
			continue
		}
		outages++
		if d.Severity != models.SeverityLow || d.Destination.Workload != "ratings" || d.Source != (models.Party{}) {
			t.Errorf("outage detection: %s, source %+v, destination %+v; want low, no source, books/ratings", d.Severity, d.Source, d.Destination)
		}
		if len(d.Evidence.Destinations) != 2 || d.Evidence.Summary == "" {
			t.Errorf("outage evidence should name both callers: %+v", d.Evidence)
		}
	}
	if outages != 1 {
		t.Errorf("%d destination_outage detections for one four-window outage, want 1 (updated)", outages)
	}
}

// The attacker's error surge next to a retry storm: the storm is quiet,
// the surge of 500s is still caught.
func TestErrorSurgeCaughtBesideARetryStorm(t *testing.T) {
	c := run(t, 5, trainWindows, trainWindows+40, attackWindows(trainWindows+10, 3, func(ws int64) []models.Flow {
		out := storm(ws, "shop/cart", "data/db", 20, "URX")
		for k := 0; k < 60; k++ {
			out = append(out, flow(ws+int64(k), "books/reviews-v1", "books/ratings", "/ratings/{id}", 500))
		}
		return out
	}))
	k := c.kinds()
	if k[models.ErrorSurge] != 1 || len(c.got) != 1 {
		t.Errorf("want one error_surge (reviews-v1 -> ratings), got %v", k)
	}
	for _, d := range c.got {
		if d.Kind == models.ErrorSurge && d.Source.Workload != "reviews-v1" {
			t.Errorf("error_surge from %+v, want reviews-v1", d.Source)
		}
	}
}

// Deploys and scale-ups: new pods with new addresses, and a new service
// coming online with its first callers, are not attacks.
func TestDeploysAndNewServicesRaiseNothing(t *testing.T) {
	c := run(t, 6, trainWindows, trainWindows+60, attackWindows(trainWindows, 60, func(ws int64) []models.Flow {
		var out []models.Flow
		for k := 0; k < 20; k++ {
			// cart's pods replaced and scaled to 4 (new IPs), as the
			// records of a rolling deploy and an HPA scale-up show them.
			f := flow(ws+int64(k), "shop/cart", "data/db", "/query", 200)
			f.Source.IP = netip.AddrFrom4([4]byte{10, 9, byte(k % 4), byte(ws / 10_000 % 200)})
			out = append(out, f)
		}
		for k := 0; k < 5; k++ {
			// shop/wishlist comes online: the frontend calls it, it calls
			// the database.
			out = append(out, flow(ws+int64(k), "shop/frontend", "shop/wishlist", "/wishlist/{id}", 200),
				flow(ws+int64(k), "shop/wishlist", "data/db", "/query", 200))
		}
		return out
	}))
	for _, d := range c.got {
		t.Errorf("benign change raised %s %s: %s", d.Kind, d.Severity, d.Evidence.Summary)
	}
}

// A leaf (data/db: only ever called) starting to call another service
// with a stream of 500s is caught in its first window.
func TestLeafWorkloadCallingOutIsDetectedInItsFirstWindow(t *testing.T) {
	at := trainWindows + 10
	c := run(t, 7, trainWindows, at+20, attackWindows(at, 3, func(ws int64) []models.Flow {
		var out []models.Flow
		for k := 0; k < 60; k++ {
			out = append(out, flow(ws+int64(k), "data/db", "shop/catalog", "/products", 500))
		}
		return out
	}))
	want := time.UnixMilli(newMini(7).start + int64(at)*10_000).UTC()
	found := false
	for _, d := range c.got {
		if (d.Kind == models.LateralMovement || d.Kind == models.ErrorSurge) && d.Source.Workload == "db" && d.WindowStart.Equal(want) {
			found = true
		}
	}
	if !found {
		t.Errorf("no lateral_movement or error_surge from data/db in window %s; got %v", want, c.kinds())
	}
}

// A new edge whose source and destination have history (here: a new
// version calling what its peers call, so no lateral movement) has its
// errors and credential failures scored from the first window against
// the destination's and the source's priors.
func TestYoungEdgeScoredFromPriors(t *testing.T) {
	cases := []struct {
		kind models.DetectionKind
		code uint16
	}{{models.ErrorSurge, 500}, {models.CredentialStuffing, 401}}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			at := trainWindows + 10
			c := run(t, 8, trainWindows, at+20, attackWindows(at, 3, func(ws int64) []models.Flow {
				var out []models.Flow
				for k := 0; k < 60; k++ {
					out = append(out, flow(ws+int64(k), "books/reviews-v3", "books/ratings", "/ratings/{id}", tc.code))
				}
				return out
			}))
			want := time.UnixMilli(newMini(8).start + int64(at)*10_000).UTC()
			var hit *models.Detection
			for _, d := range c.got {
				if d.Kind == tc.kind {
					hit = &d
				} else {
					t.Errorf("also raised %s: %s", d.Kind, d.Evidence.Summary)
				}
			}
			if hit == nil || !hit.WindowStart.Equal(want) {
				t.Fatalf("no %s in window %s: %v", tc.kind, want, c.kinds())
			}
			t.Logf("%s score %.1f: %s", hit.Kind, hit.Score, hit.Evidence.Summary)
		})
	}
}

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		code  uint16
		flags string
		want  bool
	}{
		{500, "-", false}, {500, "", false}, {503, "-", true}, {504, "UT", true},
		{500, "UC", true}, {500, "DC", false}, {500, "RL,URX", true}, {501, "NR", false},
	} {
		if got := unavailable(tc.code, tc.flags); got != tc.want {
			t.Errorf("unavailable(%d, %q) = %v, want %v", tc.code, tc.flags, got, tc.want)
		}
	}
}

// A workload nothing calls but a scanner (the mixed mesh's nightly
// reconcile-job, probed by the scan of its afternoon) is no leaf with a
// history: when its first run calls its one service, more than the
// learning period after the scan, that is a new job starting, not lateral
// movement. Before the fix the probes made the job known as a
// destination, so its first calls were blocked.
func TestWorkloadProbedOnlyByAScannerIsNotEstablished(t *testing.T) {
	scanAt := trainWindows + 10
	jobAt := scanAt + 3 + 400 // 67 minutes after the scan: past the 1h learning period
	c := run(t, 9, trainWindows, jobAt+10, func(m *mini, i int, ws int64) []models.Flow {
		switch {
		case i >= scanAt && i < scanAt+3:
			out := scanFlows(ws)
			f := flow(ws+50, "shop/frontend", "billing/reconcile-job", "/", 404)
			return append(out, f)
		case i >= jobAt:
			var out []models.Flow
			for k := 0; k < 20; k++ {
				out = append(out, flow(ws+int64(k), "billing/reconcile-job", "data/db", "/query", 200))
			}
			return out
		}
		return nil
	})
	scans := 0
	for _, d := range c.got {
		switch {
		case d.Kind == models.Scan:
			scans++
		case d.Source.Workload == "reconcile-job":
			t.Errorf("the job's first run raised %s %s: %s", d.Kind, d.Severity, d.Evidence.Summary)
		}
	}
	if scans != 1 {
		t.Errorf("%d scan detections, want 1 (the probes that must not establish the job): %v", scans, c.kinds())
	}
}
