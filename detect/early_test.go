package detect

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
)

// playLive plays the mini mesh window by window, each window's flows in
// event-time order in ten one-second batches. live: the wall clock is
// half a second past each batch, as for a partition read as it is
// written; otherwise it is years later, as for a replay of history.
// after, if set, is called after every batch.
func playLive(t *testing.T, cfg Config, live bool, windows int, attack func(m *mini, i int, ws int64) []models.Flow,
	after func(d *Detector, c *collector, i, sec int)) (*Detector, *collector) {
	t.Helper()
	c := &collector{}
	var wall time.Time
	clock := func() time.Time {
		if live {
			return wall
		}
		return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	d, err := New(cfg, c, nil, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	m := newMini(2)
	ctx := context.Background()
	for i := 0; i < windows; i++ {
		ws := m.start + int64(i)*m.win
		fl := m.window(i)
		if attack != nil {
			fl = append(fl, attack(m, i, ws)...)
		}
		slices.SortStableFunc(fl, func(a, b models.Flow) int { return cmp.Compare(a.TimestampMs, b.TimestampMs) })
		for sec := int64(0); sec < 10; sec++ {
			hi := ws + (sec+1)*1000
			n := 0
			for n < len(fl) && fl[n].TimestampMs < hi {
				n++
			}
			wall = time.UnixMilli(hi + 500)
			if err := d.ConsumeFlows(ctx, fl[:n]); err != nil {
				t.Fatal(err)
			}
			fl = fl[n:]
			if after != nil {
				after(d, c, i, int(sec))
			}
		}
	}
	d.Flush(ctx)
	return d, c
}

// final is what a detection's last version says, without the wall-clock
// times.
func final(d models.Detection) models.Detection {
	d.DetectedAt, d.UpdatedAt = time.Time{}, time.Time{}
	return d
}

// Each attack whose evidence is beyond doubt is raised within its first
// window's first seconds when the partition is live, and the detections
// its windows' closes leave behind are the ones a replay of the same
// records raises: same ids, same versions, nothing counted twice.
func TestEarlyFiringRaisesBeyondDoubtAtOnceAndEndsAsAReplay(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StrictMTLSNamespaces = []string{"data"}
	cases := []struct {
		kind   models.DetectionKind
		attack func(ws int64) []models.Flow
	}{
		{models.LateralMovement, lateralFlows},
		{models.CredentialStuffing, stuffingFlows(200)},
		{models.MTLSDowngrade, func(ws int64) []models.Flow {
			f := flow(ws+1, "shop/cart", "data/db", "/query", 200)
			f.TLS = models.TLSPlaintext
			f.Source.Principal = ""
			f.Reporter = models.ReporterDestination
			return []models.Flow{f}
		}},
		{models.Exfiltration, exfilFlows},
		// The same in a namespace with no strict rule: a downgrade of an
		// edge that always used mTLS, seen by the destination's proxy.
		{models.MTLSDowngrade, func(ws int64) []models.Flow {
			f := flow(ws+1, "shop/frontend", "shop/cart", "/cart/{id}", 200)
			f.TLS = models.TLSPlaintext
			f.Source.Principal = ""
			f.Reporter = models.ReporterDestination
			return []models.Flow{f}
		}},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			at := trainWindows + 30
			attack := func(m *mini, i int, ws int64) []models.Flow {
				if i >= at && i < at+3 {
					return tc.attack(ws)
				}
				return nil
			}
			wantStart := time.UnixMilli(newMini(2).start + int64(at)*10_000).UTC()
			firstSec := -1
			live, lc := playLive(t, cfg, true, at+20, attack, func(_ *Detector, c *collector, i, sec int) {
				if i != at || firstSec >= 0 {
					return
				}
				for _, d := range c.got {
					if d.Kind == tc.kind && d.WindowStart.Equal(wantStart) {
						firstSec = sec
						if !strings.HasPrefix(d.Evidence.Summary, "window still open: ") {
							t.Errorf("early evidence does not say its window is open: %q", d.Evidence.Summary)
						}
					}
				}
			})
			if firstSec < 0 || firstSec > 1 {
				t.Fatalf("%s raised in second %d of its window, want within its first two (live); got %v", tc.kind, firstSec, lc.kinds())
			}
			t.Logf("%s raised early after the batch ending %d s into its window", tc.kind, firstSec+1)
			replay, rc := playLive(t, cfg, false, at+20, attack, nil)
			endsAsReplay(t, live, lc, replay, rc)
		})
	}
}

// endsAsReplay checks that what a live run's closes leave behind is what
// the replay raised: same ids and last versions, the same counts, early
// raises only live and every one confirmed.
func endsAsReplay(t *testing.T, live *Detector, lc *collector, replay *Detector, rc *collector) {
	t.Helper()
	if len(lc.got) != len(rc.got) {
		t.Fatalf("live raised %v, the replay %v", lc.kinds(), rc.kinds())
	}
	for id, rd := range rc.got {
		ld, ok := lc.got[id]
		if !ok {
			t.Fatalf("replay raised %s %s, live did not", rd.Kind, id)
		}
		if a, b := final(ld), final(rd); a.Updates != b.Updates || a.Score != b.Score || a.Severity != b.Severity ||
			a.Evidence.Summary != b.Evidence.Summary || !a.WindowEnd.Equal(b.WindowEnd) || a.IncidentID != b.IncidentID ||
			a.Evidence.Absorbed != b.Evidence.Absorbed {
			t.Errorf("%s ends as\n live   %+v\n replay %+v", rd.Kind, a, b)
		}
	}
	ls, rs := live.Stats(), replay.Stats()
	if ls.Raised != rs.Raised || ls.Updated != rs.Updated || ls.Early == 0 || ls.EarlyUnconfirmed != 0 || rs.Early != 0 {
		t.Errorf("stats live %+v, replay %+v: want the same raised and updated, early only live, all confirmed", ls, rs)
	}
}

// A scan whose fan-out is of high severity already (40 destinations,
// all failing) is raised early as a scan, its probes never as lateral
// movement, and ends as the replay's scan; a smaller fan-out (20
// destinations: medium) waits for the close.
func TestEarlyFiringRaisesAHighScanAndLeavesASmallOneToTheClose(t *testing.T) {
	at := trainWindows + 30
	wantStart := time.UnixMilli(newMini(2).start + int64(at)*10_000).UTC()
	firstSec := -1
	live, lc := playLive(t, DefaultConfig(), true, at+20, attackWindows(at, 3, scanFlows), func(_ *Detector, c *collector, i, sec int) {
		if i != at || firstSec >= 0 {
			return
		}
		for _, d := range c.got {
			if d.Kind == models.Scan && d.WindowStart.Equal(wantStart) {
				firstSec = sec
			}
		}
	})
	if k := lc.kinds(); k[models.Scan] != 1 || k[models.LateralMovement] != 0 {
		t.Fatalf("raised %v, want one scan", k)
	}
	// The window before stays open for min_lateness (2 s): its close
	// comes first, then the scan is raised from the open window.
	if firstSec < 0 || firstSec > 3 {
		t.Fatalf("the scan was raised in second %d of its window, want while it is open (by its fourth second)", firstSec)
	}
	replay, rc := playLive(t, DefaultConfig(), false, at+20, attackWindows(at, 3, scanFlows), nil)
	endsAsReplay(t, live, lc, replay, rc)

	small := func(ws int64) []models.Flow { return scanFlows(ws)[:20] }
	d, c := playLive(t, DefaultConfig(), true, at+20, attackWindows(at, 3, small), nil)
	if k := c.kinds(); k[models.Scan] != 1 || k[models.LateralMovement] != 0 {
		t.Fatalf("20 probes a window raised %v, want one scan", k)
	}
	if st := d.Stats(); st.Early != 0 {
		t.Errorf("a medium scan raised early (%d)", st.Early)
	}
}

// Plaintext seen only by the client side may yet be contradicted by the
// destination's proxy, the TLS authority: it waits for the close.
func TestEarlyStrictPlaintextNeedsTheDestinationsWord(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StrictMTLSNamespaces = []string{"data"}
	at := trainWindows + 30
	d, c := playLive(t, cfg, true, at+5, attackWindows(at, 1, func(ws int64) []models.Flow {
		f := flow(ws+1, "shop/cart", "data/db", "/query", 200)
		f.TLS = models.TLSPlaintext
		return []models.Flow{f}
	}), nil)
	if k := c.kinds(); k[models.MTLSDowngrade] != 1 {
		t.Fatalf("raised %v, want the downgrade at close", k)
	}
	if st := d.Stats(); st.Early != 0 {
		t.Errorf("client-side plaintext raised early (%d)", st.Early)
	}
}

// A partition whose records arrive in order allows only min_lateness
// once it has measured a few windows; a record later than that is late
// and widens the lateness of the windows after it, up to
// allowed_lateness.
func TestLatenessFollowsTheRecordsDelay(t *testing.T) {
	d, _ := New(DefaultConfig(), nil, nil, WithClock(func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }))
	ctx := context.Background()
	base := int64(1_700_000_000_000)
	for ms := int64(0); ms < 100_000; ms += 500 {
		d.ConsumeFlows(ctx, []models.Flow{flow(base+ms, "a/x", "b/y", "/", 200)})
	}
	sh := d.shards[0]
	if got := sh.latenessMs(); got != DefaultConfig().MinLateness.Milliseconds() {
		t.Fatalf("lateness %d ms for records in order, want min_lateness", got)
	}
	d.ConsumeFlows(ctx, []models.Flow{flow(base+99_500-5_000, "a/x", "b/y", "/", 200)})
	if st := d.Stats(); st.Late != 0 {
		t.Fatalf("a record 5 s behind, in a window still open: stats %+v, want it counted", st)
	}
	if got := sh.latenessMs(); got != 10_000 {
		t.Fatalf("lateness %d ms after a record 5 s behind, want 10000", got)
	}
	d.ConsumeFlows(ctx, []models.Flow{flow(base+99_500-12_000, "a/x", "b/y", "/", 200)})
	if st := d.Stats(); st.Late != 1 {
		t.Fatalf("a record 12 s behind, in a window closed: stats %+v, want it late", st)
	}
	if got := sh.latenessMs(); got != DefaultConfig().AllowedLateness.Milliseconds() {
		t.Fatalf("lateness %d ms after a record 12 s behind, want allowed_lateness at most", got)
	}

	fixed := DefaultConfig()
	fixed.MinLateness = fixed.AllowedLateness
	d, _ = New(fixed, nil, nil)
	for ms := int64(0); ms < 100_000; ms += 500 {
		d.ConsumeFlows(ctx, []models.Flow{flow(base+ms, "a/x", "b/y", "/", 200)})
	}
	if got := d.shards[0].latenessMs(); got != fixed.AllowedLateness.Milliseconds() {
		t.Fatalf("min_lateness = allowed_lateness: lateness %d ms, want fixed", got)
	}
}

// An idle partition's open window closes by the wall clock: idle_after
// of silence, then the window's end plus the lateness.
func TestIdlePartitionClosesByWallClock(t *testing.T) {
	wall := time.UnixMilli(1_700_000_000_000)
	d, _ := New(DefaultConfig(), nil, nil, WithClock(func() time.Time { return wall }))
	ctx := context.Background()
	base := wall.UnixMilli()
	for ms := int64(0); ms < 100_000; ms += 500 {
		wall = time.UnixMilli(base + ms + 100)
		d.ConsumeFlows(ctx, []models.Flow{flow(base+ms, "a/x", "b/y", "/", 200)})
	}
	// The last flow is at base+99.5 s; its window ends at base+100 s and,
	// with 2 s lateness, closes 2.5 s of wall-clock time after it.
	closed := d.Stats().Windows
	wall = wall.Add(DefaultConfig().IdleAfter - time.Second)
	d.Tick(ctx)
	if got := d.Stats().Windows; got != closed {
		t.Fatalf("a window closed before the partition was idle for idle_after")
	}
	wall = wall.Add(2 * time.Second)
	d.Tick(ctx)
	if got := d.Stats().Windows; got != closed+1 {
		t.Fatalf("windows closed %d, want the idle partition's last one closed too (%d)", got, closed+1)
	}
}

func TestWatermarkAndEarlyConfigNameTheKey(t *testing.T) {
	for key, edit := range map[string]func(*Config){
		"detect.min_lateness": func(c *Config) { c.MinLateness = c.AllowedLateness + time.Second },
		"detect.idle_after":   func(c *Config) { c.IdleAfter = 0 },
		"detect.early_factor": func(c *Config) { c.EarlyFactor = 0.5 },
	} {
		c := DefaultConfig()
		edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v, want it named", key, err)
		}
	}
}
