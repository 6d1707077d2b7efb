package scenario

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// burst is a workload's current surge.
type burst struct {
	until time.Time
	mult  float64
}

// prepareDynamics checks the mesh's dynamics and gives every rolled-out
// version without calls of its own the calls of the version it replaces.
func (g *Generator) prepareDynamics() error {
	g.bursts = make([]burst, len(g.mesh.Services))
	for _, r := range g.mesh.Rollouts {
		if g.svc[r.From] == nil || g.svc[r.To] == nil {
			return fmt.Errorf("scenario: rollout %s -> %s names an unknown workload", r.From, r.To)
		}
		if len(r.Weights) == 0 || r.Every <= 0 {
			return fmt.Errorf("scenario: rollout %s -> %s needs weights and a step", r.From, r.To)
		}
		has := false
		for _, c := range g.calls {
			has = has || c.From == r.To
		}
		if !has {
			calls := append([]Call(nil), g.calls...)
			for _, c := range g.calls {
				if c.From == r.From {
					c.From = r.To
					calls = append(calls, c)
				}
			}
			g.calls = calls
		}
	}
	for _, j := range g.mesh.Jobs {
		if g.svc[j.Workload] == nil {
			return fmt.Errorf("scenario: job %s is not a workload", j.Workload)
		}
		if j.Every <= 0 || j.RunFor <= 0 || j.RunFor > j.Every {
			return fmt.Errorf("scenario: job %s: want 0 < run_for <= every", j.Workload)
		}
	}
	for _, in := range g.mesh.Incidents {
		if g.svc[in.Workload] == nil {
			return fmt.Errorf("scenario: incident on %s: not a workload", in.Workload)
		}
		switch in.Mode {
		case "", IncidentConnect, IncidentUnavailable, IncidentOverflow, IncidentReset:
		default:
			return fmt.Errorf("scenario: incident on %s: mode %q; use connect, unavailable, overflow or reset", in.Workload, in.Mode)
		}
	}
	for _, d := range g.mesh.Deploys {
		if g.svc[d.Workload] == nil {
			return fmt.Errorf("scenario: deploy of %s: not a workload", d.Workload)
		}
		if d.Pods < 0 || d.Pods > 200 {
			return fmt.Errorf("scenario: deploy of %s: %d pods; use 0 to 200", d.Workload, d.Pods)
		}
	}
	for _, l := range g.mesh.Launches {
		if g.svc[l.Workload] == nil {
			return fmt.Errorf("scenario: launch of %s: not a workload", l.Workload)
		}
	}
	return nil
}

// launched reports whether workload w is online at t.
func (g *Generator) launched(w string, t time.Time) bool {
	for _, l := range g.mesh.Launches {
		if l.Workload == w && t.Sub(g.start) < l.At {
			return false
		}
	}
	return true
}

// podIP is the address of the pod of workload w serving a request at t:
// after each Deploy of w, one of its Pods new addresses.
func (g *Generator) podIP(w string, t time.Time) netip.Addr {
	gen, pods := 0, 1
	for _, d := range g.mesh.Deploys {
		if d.Workload == w && t.Sub(g.start) >= d.At {
			gen++
			pods = max(d.Pods, 1)
		}
	}
	if gen == 0 {
		return g.ip[w]
	}
	p := 0
	if pods > 1 {
		p = g.rng.IntN(pods)
	}
	i := g.index[w]
	return netip.AddrFrom4([4]byte{10, byte(45 + gen), byte(i), byte(10 + p)})
}

// weight is the share of traffic a rollout has moved to its new version
// at t.
func (g *Generator) weight(r *Rollout, t time.Time) float64 {
	since := t.Sub(g.start) - r.At
	if since < 0 {
		return 0
	}
	return r.Weights[min(int(since/r.Every), len(r.Weights)-1)]
}

// share is the part of its app's traffic workload w serves at t.
func (g *Generator) share(w string, t time.Time) float64 {
	s := 1.0
	for i := range g.mesh.Rollouts {
		r := &g.mesh.Rollouts[i]
		switch w {
		case r.To:
			s *= g.weight(r, t)
		case r.From:
			s *= 1 - g.weight(r, t)
		}
	}
	return s
}

// route picks the version a request for workload to lands on.
func (g *Generator) route(to string, t time.Time) string {
	for i := range g.mesh.Rollouts {
		r := &g.mesh.Rollouts[i]
		if r.From == to && g.rng.Float64() < g.weight(r, t) {
			return r.To
		}
	}
	return to
}

// jobActive reports whether workload w, when a Job, runs at t, and
// whether it is a Job at all.
func (g *Generator) jobActive(w string, t time.Time) (active, isJob bool) {
	for _, j := range g.mesh.Jobs {
		if j.Workload != w {
			continue
		}
		phase := (t.Sub(t.Truncate(time.Hour)) - j.Offset) % j.Every
		if phase < 0 {
			phase += j.Every
		}
		return phase < j.RunFor, true
	}
	return false, false
}

// failing is the share of requests to workload w failing at t, and how
// they fail (an Incident mode).
func (g *Generator) failing(w string, t time.Time) (float64, string) {
	for _, in := range g.mesh.Incidents {
		if in.Workload == w {
			if since := t.Sub(g.start) - in.At; since >= 0 && since < in.For {
				return in.ErrorRate, cmp.Or(in.Mode, IncidentConnect)
			}
		}
	}
	for _, d := range g.mesh.Deploys {
		if d.Workload == w {
			if since := t.Sub(g.start) - d.At; since >= 0 && since < d.Reset {
				return d.ResetRate, IncidentReset
			}
		}
	}
	return 0, ""
}

// rate is call c's benign rate per second at t, before routing.
func (g *Generator) rate(c *Call, t time.Time) float64 {
	var r float64
	if active, isJob := g.jobActive(c.From, t); isJob {
		if active {
			r = c.PeakPerSec
		}
	} else if strings.HasSuffix(c.From, "-job") {
		if t.Hour() == 1 {
			r = c.PeakPerSec
		}
	} else {
		r = c.PeakPerSec * Load(t)
	}
	if g.opts.Dynamics {
		if !g.launched(c.From, t) || !g.launched(c.To, t) {
			return 0
		}
		r *= g.share(c.From, t)
		if b := g.bursts[g.index[c.From]]; t.Before(b.until) {
			r *= b.mult
		}
	}
	return r * g.opts.Scale
}

// edgeRate is the benign rate from workload from to workload to at t.
func (g *Generator) edgeRate(from, to string, t time.Time) float64 {
	var r float64
	for i := range g.calls {
		if c := &g.calls[i]; c.From == from && c.To == to {
			r += g.rate(c, t)
		}
	}
	return r
}

// nextDynamic plays d of benign traffic with the mesh's dynamics.
func (g *Generator) nextDynamic(records plog.LogRecordSlice, d time.Duration) {
	if g.opts.Dynamics {
		for i := range g.mesh.Services {
			s := &g.mesh.Services[i]
			b := &g.bursts[i]
			if s.BurstsPerHour <= 0 || g.now.Before(b.until) {
				continue
			}
			if g.rng.Float64() < s.BurstsPerHour*d.Hours() {
				b.until = g.now.Add(time.Duration(10+g.rng.IntN(51)) * time.Second)
				b.mult = 1.5 + 1.5*g.rng.Float64()
			}
		}
	}
	for i := range g.calls {
		c := &g.calls[i]
		for n := g.poisson(g.rate(c, g.now) * d.Seconds()); n > 0; n-- {
			at := g.now.Add(time.Duration(g.rng.Int64N(int64(d))))
			to := c.To
			if g.opts.Dynamics {
				to = g.route(to, at)
			}
			g.call(records, c, to, at)
		}
	}
}

// call plays one request of c to workload to, with c's retries: the
// destination logs every attempt it saw, the caller once, with the final
// answer and URX when the retries ran out. A connection that failed or
// that the caller's circuit breaker refused (an incident) reaches no
// destination proxy.
func (g *Generator) call(records plog.LogRecordSlice, c *Call, to string, at time.Time) {
	from, dst := g.svc[c.From], g.svc[to]
	paths := dst.Paths
	if len(c.Paths) > 0 {
		paths = c.Paths
	}
	r := Request{
		From: from, To: dst, SrcIP: g.ip[c.From], DstIP: g.ip[to], At: at,
		Method: "GET", Path: g.pathFrom(paths), Flags: "-", UserAgent: "Go-http-client/1.1",
	}
	switch {
	case g.mixed != nil:
		r.SrcIP, r.DstIP = g.addr(c.From, at), g.addr(to, at)
		// A caller outside the mesh has no proxy to originate mTLS.
		r.Plaintext = g.telemetry(c.From).NoSidecar
	case g.opts.Dynamics && len(g.mesh.Deploys) > 0:
		r.SrcIP, r.DstIP = g.podIP(c.From, at), g.podIP(to, at)
	}
	if strings.Contains(r.Path, "orders") || strings.Contains(r.Path, "charges") || strings.Contains(r.Path, "token") ||
		strings.HasSuffix(r.Path, "items") || strings.HasSuffix(r.Path, "events") || strings.HasSuffix(r.Path, "insert") {
		r.Method = "POST"
		r.BytesReceived = 200 + g.rng.IntN(400)
	}
	mean := dst.MeanBytes
	if c.MeanBytes > 0 {
		mean = c.MeanBytes
	}
	fail, mode := 0.0, ""
	if g.opts.Dynamics {
		fail, mode = g.failing(to, at)
	}
	r.RequestID = g.uuid()
	for i := range r.Trace {
		r.Trace[i] = byte(g.rng.Uint32())
	}
	r.SrcPort = 30000 + g.rng.IntN(30000)
	clientAt, total := at, 0
	retries := 0
	if g.opts.Dynamics {
		retries = c.Retries
	}
	for attempt := 0; ; attempt++ {
		failed := g.rng.Float64() < fail
		// connFailed: no destination proxy saw the attempt.
		connFailed := failed && mode != IncidentUnavailable
		r.Code, r.Flags, r.Details = 200, "-", "via_upstream"
		switch p := g.rng.Float64(); {
		case failed && mode == IncidentUnavailable:
			r.Code = 503
		case failed && mode == IncidentOverflow:
			r.Code, r.Flags, r.Details = 503, "UO", "upstream_reset_before_response_started{overflow}"
		case failed && mode == IncidentReset:
			r.Code, r.Flags, r.Details = 503, "UC", "upstream_reset_before_response_started{connection_termination}"
		case connFailed:
			r.Code, r.Flags, r.Details = 503, "UF", "upstream_reset_before_response_started{connection_failure}"
		case p < c.ErrorRate:
			r.Code = 503
		case p < c.ErrorRate+c.AuthFailRate:
			r.Code = 401
		case p < c.ErrorRate+c.AuthFailRate+0.004:
			r.Code = 404
		}
		r.BytesSent = g.jitter(mean)
		if r.Code >= 400 {
			r.BytesSent = 20 + g.rng.IntN(60)
		}
		r.DurationMs = 1 + g.jitter(dst.MeanMs)
		if connFailed {
			r.BytesSent, r.DurationMs = 0, 1+g.rng.IntN(3)
		}
		total += r.DurationMs
		// The circuit breaker's refusals are not retried: the retry would
		// meet the same open breaker.
		if r.Code == 503 && attempt < retries && !(failed && mode == IncidentOverflow) {
			if !connFailed {
				a := r
				a.ServerOnly = true
				g.Emit(records, a)
			}
			backoff := 25*(1<<attempt) + g.rng.IntN(25)
			r.At = r.At.Add(time.Duration(r.DurationMs+backoff) * time.Millisecond)
			total += backoff
			continue
		}
		cl := r
		cl.ClientOnly, cl.At, cl.DurationMs = true, clientAt, total
		if r.Code == 503 && retries > 0 && r.Flags != "UO" {
			cl.Flags = strings.TrimPrefix(strings.TrimPrefix(r.Flags, "-")+",URX", ",")
		}
		cl.UnknownDestination = connFailed && mode == IncidentConnect
		g.Emit(records, cl)
		if !connFailed {
			s := r
			s.ServerOnly = true
			g.Emit(records, s)
		}
		return
	}
}
