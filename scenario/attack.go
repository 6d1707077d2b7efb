package scenario

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/models"
)

// Attack is one injected attack and the ground truth an evaluation
// matches detections against.
//
// Strength multiplies the attack's intensity (0 means 1): its rate for
// lateral_movement (0.5 requests/s), scan (20 probes/s),
// credential_stuffing (20 logins/s) and unusual_path (0.5 probes/s); its
// excess over the edge's current rate for request_flood (9x the edge, at
// least 20/s, on top of it) and error_surge (as many failing requests as
// the edge carries, at least 2/s, 90% of them 500); the response size for
// exfiltration (2 requests/s of about 1 MB); the plaintext rate for
// mtls_downgrade (the edge's rate, at least 1/s).
type Attack struct {
	Kind       models.DetectionKind
	Start, End time.Time
	Strength   float64
	// Source and Destination are "namespace/workload". Destination is
	// empty for a scan, which targets every service.
	Source, Destination string
	// Variant of mtls_downgrade: "plaintext" (default; the caller's
	// proxy sends without TLS) or "principal" (the caller presents
	// another service account's certificate); of lateral_movement,
	// "leaf": a workload only ever called starts calling Destination,
	// 2 requests/s, 90% answered 500.
	Variant string
}

func (a Attack) String() string {
	dst := a.Destination
	if dst == "" {
		dst = "*"
	}
	v := ""
	if a.Variant != "" {
		v = " (" + a.Variant + ")"
	}
	return fmt.Sprintf("%s%s %s -> %s from %s to %s, strength %g", a.Kind, v, a.Source, dst,
		a.Start.UTC().Format(time.RFC3339), a.End.UTC().Format(time.RFC3339), a.strength())
}

func (a Attack) strength() float64 {
	if a.Strength <= 0 {
		return 1
	}
	return a.Strength
}

// Active reports whether t falls within the attack.
func (a Attack) Active(t time.Time) bool { return !t.Before(a.Start) && t.Before(a.End) }

// DefaultAttack is the attack of kind injected by default into
// RealisticMesh, every kind from a different source, each source a
// workload with an established profile that is not rolled out:
//
//	lateral_movement     shop/recommendations-v1 -> billing/payments-v1 (never called)
//	scan                 shop/ads-v1 -> every service, real and closed ports
//	request_flood        shop/search-v1 -> shop/catalog-v1
//	credential_stuffing  shop/frontend-v1 -> identity/auth-v1
//	error_surge          shop/checkout-v1 -> shop/shipping-v1
//	exfiltration         identity/auth-v1 -> identity/users-v1
//	mtls_downgrade       billing/payments-v1 -> billing/ledger-v1 (plaintext)
//	unusual_path         istio-system/istio-ingressgateway -> shop/frontend-v1
//
// Start and End are left for the caller (see Schedule).
func DefaultAttack(kind models.DetectionKind) (Attack, error) {
	pairs := map[models.DetectionKind][2]string{
		models.LateralMovement:    {"shop/recommendations-v1", "billing/payments-v1"},
		models.Scan:               {"shop/ads-v1", ""},
		models.RequestFlood:       {"shop/search-v1", "shop/catalog-v1"},
		models.CredentialStuffing: {"shop/frontend-v1", "identity/auth-v1"},
		models.ErrorSurge:         {"shop/checkout-v1", "shop/shipping-v1"},
		models.Exfiltration:       {"identity/auth-v1", "identity/users-v1"},
		models.MTLSDowngrade:      {"billing/payments-v1", "billing/ledger-v1"},
		models.UnusualPath:        {"istio-system/istio-ingressgateway", "shop/frontend-v1"},
	}
	p, ok := pairs[kind]
	if !ok {
		return Attack{}, fmt.Errorf("scenario: no attack of kind %q", kind)
	}
	return Attack{Kind: kind, Strength: 1, Source: p[0], Destination: p[1]}, nil
}

// Schedule places one DefaultAttack of each kind, in the order given: the
// first at first, the next every later, each lasting dur, all at
// strength.
func Schedule(kinds []models.DetectionKind, first time.Time, every, dur time.Duration, strength float64) ([]Attack, error) {
	out := make([]Attack, 0, len(kinds))
	for i, k := range kinds {
		a, err := DefaultAttack(k)
		if err != nil {
			return nil, err
		}
		a.Start = first.Add(time.Duration(i) * every).UTC()
		a.End = a.Start.Add(dur)
		a.Strength = strength
		out = append(out, a)
	}
	return out, nil
}

// Spread places one DefaultAttack of each kind over [start+learning,
// start+duration): the span is cut into equal slots, one per attack, and
// each attack starts a quarter into its slot and lasts half of it, at most
// 5 minutes, so that detections of one attack end before the next begins.
func Spread(kinds []models.DetectionKind, start time.Time, learning, duration time.Duration, strength float64) ([]Attack, error) {
	attacks := make([]Attack, 0, len(kinds))
	for _, k := range kinds {
		a, err := DefaultAttack(k)
		if err != nil {
			return nil, err
		}
		a.Strength = strength
		attacks = append(attacks, a)
	}
	return SpreadAttacks(attacks, start, learning, duration)
}

// SpreadAttacks sets the times of attacks as Spread does, keeping their
// kinds, workloads, strengths and variants.
func SpreadAttacks(attacks []Attack, start time.Time, learning, duration time.Duration) ([]Attack, error) {
	if len(attacks) == 0 {
		return nil, nil
	}
	if duration <= learning {
		return nil, fmt.Errorf("scenario: %v of traffic leaves no time for attacks after %v of learning", duration, learning)
	}
	slot := (duration - learning) / time.Duration(len(attacks))
	if slot < 20*time.Second {
		return nil, fmt.Errorf("scenario: %d attacks in %v: less than 20 s each", len(attacks), duration-learning)
	}
	out := slices.Clone(attacks)
	for i := range out {
		out[i].Start = start.Add(learning + slot/4 + time.Duration(i)*slot).UTC()
		out[i].End = out[i].Start.Add(min(slot/2, 5*time.Minute))
	}
	return out, nil
}

// ParseKinds reads a comma-separated list of detection kinds; "all" is
// every kind, "none" or "" none.
func ParseKinds(s string) ([]models.DetectionKind, error) {
	switch strings.TrimSpace(s) {
	case "", "none":
		return nil, nil
	case "all":
		return append([]models.DetectionKind(nil), models.DetectionKinds...), nil
	}
	var out []models.DetectionKind
	seen := map[models.DetectionKind]bool{}
	for _, f := range strings.Split(s, ",") {
		k, err := models.ParseDetectionKind(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if seen[k] {
			return nil, fmt.Errorf("attack %s listed twice", k)
		}
		seen[k] = true
		out = append(out, k)
	}
	return out, nil
}

// attack is an Attack with its workloads resolved.
type attack struct {
	Attack
	from, to *Service
}

func (g *Generator) workloadRef(ref string) (*Service, error) {
	ns, name, ok := strings.Cut(ref, "/")
	s := g.svc[name]
	if !ok || s == nil || s.Namespace != ns {
		return nil, fmt.Errorf("scenario: %q is not a workload of the mesh (want namespace/workload)", ref)
	}
	return s, nil
}

func (g *Generator) resolve(a Attack) (attack, error) {
	if _, err := models.ParseDetectionKind(string(a.Kind)); err != nil {
		return attack{}, err
	}
	if !a.End.After(a.Start) {
		return attack{}, fmt.Errorf("scenario: attack %s ends before it starts", a.Kind)
	}
	from, err := g.workloadRef(a.Source)
	if err != nil {
		return attack{}, err
	}
	var to *Service
	if a.Kind != models.Scan || a.Destination != "" {
		if to, err = g.workloadRef(a.Destination); err != nil {
			return attack{}, err
		}
	}
	switch {
	case a.Variant == "", a.Kind == models.MTLSDowngrade && (a.Variant == "plaintext" || a.Variant == "principal"),
		a.Kind == models.LateralMovement && a.Variant == "leaf":
	default:
		return attack{}, fmt.Errorf("scenario: unknown variant %q", a.Variant)
	}
	return attack{Attack: a, from: from, to: to}, nil
}

// Attacks returns the injected attacks, the ground truth.
func (g *Generator) Attacks() []Attack {
	out := make([]Attack, len(g.attacks))
	for i, a := range g.attacks {
		out[i] = a.Attack
	}
	return out
}

// IP returns the pod address of workload ("namespace/workload" or a bare
// name), the source address of everything it sends.
func (g *Generator) IP(workload string) netip.Addr {
	if _, name, ok := strings.Cut(workload, "/"); ok {
		workload = name
	}
	return g.ip[workload]
}

// Workload returns the mesh's workload named by ref ("namespace/workload"
// or a bare name).
func (g *Generator) Workload(ref string) (Service, bool) {
	if _, name, ok := strings.Cut(ref, "/"); ok {
		ref = name
	}
	s := g.svc[ref]
	if s == nil {
		return Service{}, false
	}
	return *s, true
}

// Principal returns the SPIFFE id of workload's service account in
// Istio's policy form (no "spiffe://"), or "".
func (g *Generator) Principal(workload string) string {
	if _, name, ok := strings.Cut(workload, "/"); ok {
		workload = name
	}
	s := g.svc[workload]
	if s == nil {
		return ""
	}
	return g.mesh.TrustDomain + "/ns/" + s.Namespace + "/sa/" + s.SA
}

var (
	scanPorts = []uint16{22, 80, 443, 2379, 3306, 5432, 6379, 8500, 9200, 10250, 15000, 27017}
	scanPaths = []string{"/", "/api", "/api/v1", "/v1", "/health", "/version", "/swagger.json", "/openapi.json", "/login", "/graphql"}
	oddPaths  = []string{
		"/admin", "/admin/console", "/.env", "/.git/config", "/.aws/credentials", "/debug/pprof/",
		"/debug/pprof/heap", "/debug/pprof/goroutine", "/actuator/env", "/actuator/heapdump",
		"/server-status", "/wp-admin/install.php", "/phpmyadmin/", "/console", "/.ssh/id_rsa",
	}
	oddMethods = []string{"GET", "GET", "GET", "GET", "POST", "PUT", "DELETE", "TRACE"}
)

// playAttacks adds the attacks' requests in [now, now+d).
func (g *Generator) playAttacks(records plog.LogRecordSlice, d time.Duration) {
	end := g.now.Add(d)
	for i := range g.attacks {
		a := &g.attacks[i]
		lo, hi := a.Start, a.End
		if lo.Before(g.now) {
			lo = g.now
		}
		if hi.After(end) {
			hi = end
		}
		if !hi.After(lo) {
			continue
		}
		span := hi.Sub(lo)
		s := a.strength()
		var perSec float64
		switch a.Kind {
		case models.LateralMovement, models.UnusualPath:
			perSec = 0.5 * s
			if a.Variant == "leaf" {
				perSec = 2 * s
			}
		case models.Scan, models.CredentialStuffing:
			perSec = 20 * s
		case models.RequestFlood:
			perSec = max(9*g.edgeRate(a.from.Name, a.to.Name, lo), 20) * s
		case models.ErrorSurge:
			perSec = max(g.edgeRate(a.from.Name, a.to.Name, lo), 2) * s
		case models.Exfiltration:
			perSec = 2
		case models.MTLSDowngrade:
			perSec = max(g.edgeRate(a.from.Name, a.to.Name, lo), 1) * s
		}
		for n := g.poisson(perSec * span.Seconds()); n > 0; n-- {
			at := lo.Add(time.Duration(g.rng.Int64N(int64(span))))
			g.Emit(records, g.attackRequest(a, at, s))
		}
	}
}

// attackRequest draws one request of attack a at t.
func (g *Generator) attackRequest(a *attack, t time.Time, s float64) Request {
	to := a.to
	if a.Kind == models.Scan {
		// A service not yet online has no endpoints to probe.
		for to == nil || to == a.from || !g.launched(to.Name, t) {
			to = &g.mesh.Services[g.rng.IntN(len(g.mesh.Services))]
		}
	}
	r := Request{
		From: a.from, To: to, SrcIP: g.ip[a.from.Name], DstIP: g.ip[to.Name], At: t,
		Method: "GET", Path: g.path(to), Code: 200, Flags: "-", UserAgent: "Go-http-client/1.1",
	}
	if g.mixed != nil {
		r.SrcIP, r.DstIP = g.addr(a.from.Name, t), g.addr(to.Name, t)
	}
	r.BytesSent = g.jitter(max(to.MeanBytes, 100))
	r.DurationMs = 1 + g.jitter(max(to.MeanMs, 2))
	p := g.rng.Float64()
	switch a.Kind {
	case models.LateralMovement:
		if a.Variant == "leaf" {
			// A compromised leaf probing its new target: mostly 500s.
			if p < 0.9 {
				r.Code, r.BytesSent = 500, 60+g.rng.IntN(40)
			}
			break
		}
		if p < 0.2 {
			r.Code, r.BytesSent = 403, 19
			r.Details = "rbac_access_denied_matched_policy[none]"
		}
	case models.Scan:
		r.Path = scanPaths[g.rng.IntN(len(scanPaths))]
		r.UserAgent = "Mozilla/5.0 zgrab/0.x"
		r.BytesSent, r.DurationMs = 20+g.rng.IntN(40), 1+g.rng.IntN(5)
		switch q := g.rng.Float64(); {
		case q < 0.4:
			// A closed port: the caller's proxy fails to connect.
			r.Port = scanPorts[g.rng.IntN(len(scanPorts))]
			r.Code, r.BytesSent = 0, 0
			r.Flags, r.Details = "UF", "upstream_reset_before_response_started{connection_failure}"
			if g.rng.IntN(3) == 0 {
				r.Flags = "UF,URX"
			}
			r.ClientOnly, r.UnknownDestination = true, true
		case q < 0.75:
			r.Code = 404
		case q < 0.9:
			r.Code, r.Details = 403, "rbac_access_denied_matched_policy[ns["+to.Namespace+"]-policy[default-deny]-rule[0]]"
		default:
			r.Code = 503
		}
	case models.RequestFlood:
		if p < 0.01 {
			r.Code, r.BytesSent = 503, 40
		}
	case models.CredentialStuffing:
		r.Method, r.Path = "POST", "/oauth/token"
		r.BytesReceived = 120 + g.rng.IntN(80)
		r.BytesSent = 60 + g.rng.IntN(30)
		switch {
		case p < 0.92:
			r.Code = 401
		case p < 0.97:
			r.Code = 403
		default:
			r.BytesSent = g.jitter(max(to.MeanBytes, 100))
		}
	case models.ErrorSurge:
		if p < 0.9 {
			r.Code, r.BytesSent = 500, 60+g.rng.IntN(40)
			r.DurationMs = 1 + g.jitter(max(to.MeanMs, 2)*3)
		}
	case models.Exfiltration:
		r.BytesSent = g.jitter(int(1_000_000 * s))
		r.DurationMs = 200 + g.rng.IntN(800)
	case models.MTLSDowngrade:
		if a.Variant == "principal" {
			// Another workload's certificate (a stolen key): the first
			// other service account of its namespace.
			r.Principal = "spiffe://" + g.mesh.TrustDomain + "/ns/" + a.from.Namespace + "/sa/" + g.otherSA(a.from)
		} else {
			r.Plaintext = true
		}
	case models.UnusualPath:
		r.Path = oddPaths[g.rng.IntN(len(oddPaths))]
		r.Method = oddMethods[g.rng.IntN(len(oddMethods))]
		r.BytesSent = 40 + g.rng.IntN(100)
		switch {
		case p < 0.6:
			r.Code = 404
		case p < 0.8:
			r.Code = 403
		default:
			r.BytesSent = g.jitter(4000) // answered: a debug endpoint left open
		}
	}
	return r
}

// otherSA is the first service account in s's namespace that is not s's.
func (g *Generator) otherSA(s *Service) string {
	for _, o := range g.mesh.Services {
		if o.Namespace == s.Namespace && o.SA != s.SA {
			return o.SA
		}
	}
	return "default"
}
