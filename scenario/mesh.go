// Package scenario generates the telemetry of a realistic service mesh as
// Istio's OpenTelemetry access-log provider emits it (OTLP logs with
// Istio's JSON label names plus identity labels), in event time, for the
// demo, the benchmarks and the detection evaluation.
//
// A Generator is deterministic: the same mesh, start time and seed give
// the same records, so evaluations and benchmarks are repeatable.
package scenario

import "time"

// Service is one workload of the mesh.
type Service struct {
	Name      string // workload name, e.g. "cart-v1"
	App       string // service (app label), e.g. "cart"
	Namespace string
	SA        string // service account
	Port      uint16
	// Paths the service serves; "{id}" is replaced by a random number and
	// "{uuid}" by a random UUID.
	Paths []string
	// MeanBytes is the typical response size.
	MeanBytes int
	// MeanMs is the typical latency.
	MeanMs int
	// BurstsPerHour is how often the workload's clients surge (a
	// marketing push, a page going viral, a retry storm upstream): every
	// call it makes runs at 1.5 to 3 times its rate for 10 to 60 seconds.
	// Zero: steady. Used by generators with Dynamics.
	BurstsPerHour float64
}

// Call is a caller -> callee dependency with its request rate at the
// daily peak.
type Call struct {
	From, To   string // workload names
	PeakPerSec float64
	// ErrorRate is the share of requests answered 5xx; AuthFailRate 401.
	ErrorRate    float64
	AuthFailRate float64
	// Retries is how many times the caller retries a 503 (Istio's default
	// retry policy retries twice). The destination proxy logs every
	// attempt, the caller's proxy once with the final answer (flag URX
	// when the retries ran out). Zero: no retries, both sides log once.
	Retries int
	// Paths overrides the paths asked for (default the callee's Paths):
	// a new version calling an endpoint its peers do not.
	Paths []string
	// MeanBytes overrides the callee's typical response size (a batch
	// job reading large pages).
	MeanBytes int
}

// Rollout is a canary deploy: traffic to From shifts to To in steps.
// Every call into From goes to To with the current weight; To's outgoing
// calls run at that weight and From's at the rest. Calls of To not listed
// in the mesh copy From's.
type Rollout struct {
	From, To string // workloads of one app
	// At is when the first step starts, from the generator's start.
	At time.Duration
	// Every is the time between steps; Weights the share of traffic on To
	// at each step (the last one stays).
	Every   time.Duration
	Weights []float64
}

// Job is a CronJob: its calls run at their full PeakPerSec (no diurnal
// curve) for RunFor, every Every, first at Offset after the hour; idle
// otherwise.
type Job struct {
	Workload string
	Every    time.Duration
	Offset   time.Duration
	RunFor   time.Duration
}

// Incident is a destination failing for a while (a pod restart, a bad
// node): ErrorRate of the requests to it fail, and are retried by callers
// whose Call has Retries. Mode says how, as Envoy logs it:
//   - IncidentConnect (the default): the connection fails, 503 UF, logged
//     by the caller only (the destination never saw it);
//   - IncidentUnavailable: the destination answers 503 itself (its own
//     outage: a dependency down, overload): its proxy logs every attempt
//     503 via_upstream, the caller's the final answer with URX when its
//     retries ran out;
//   - IncidentOverflow: the caller's circuit breaker is open (Envoy's
//     outlier and overflow limits): 503 UO, logged by the caller only and
//     not retried, no attempt reaches the destination;
//   - IncidentReset: in-flight requests on terminating pods during a
//     rollout: 503 UC (upstream connection termination), retried.
type Incident struct {
	Workload  string
	At, For   time.Duration // from the generator's start
	ErrorRate float64
	Mode      string
}

// Incident modes.
const (
	IncidentConnect     = "connect"
	IncidentUnavailable = "unavailable"
	IncidentOverflow    = "overflow"
	IncidentReset       = "reset"
)

// Deploy replaces a workload's pods at At: a new ReplicaSet (every pod a
// new address) or an HPA scale-up or -down to Pods pods (one address
// each). The workload's name (Istio's source_workload and
// destination_workload, the Deployment's name) stays; for Reset after
// At, ResetRate of the requests in flight on terminating pods fail with
// 503 UC.
type Deploy struct {
	Workload  string
	At        time.Duration
	Pods      int // 0 means 1
	Reset     time.Duration
	ResetRate float64
}

// Launch brings a new service online at At: no call from or to Workload
// plays before it.
type Launch struct {
	Workload string
	At       time.Duration
}

// Mesh is the topology the generator plays.
type Mesh struct {
	TrustDomain string
	Services    []Service
	Calls       []Call
	// The dynamics below play only in a generator with Dynamics set.
	Rollouts  []Rollout
	Jobs      []Job
	Incidents []Incident
	Deploys   []Deploy
	Launches  []Launch
	// Telemetry, when set, makes the mesh mixed (see MixedMesh): how each
	// workload's proxy reports (absent: the label form), and the pods'
	// inventory with Restarts.
	Telemetry map[string]Telemetry
	Restarts  []Restart
}

// DefaultMesh is an online shop of 22 workloads in 5 namespaces: an
// ingress gateway, a storefront, catalog, cart, checkout, payments, users
// and their back ends, and a nightly batch job.
func DefaultMesh() Mesh {
	svc := func(name, app, ns, sa string, port uint16, bytes, ms int, paths ...string) Service {
		return Service{Name: name, App: app, Namespace: ns, SA: sa, Port: port, Paths: paths, MeanBytes: bytes, MeanMs: ms}
	}
	return Mesh{
		TrustDomain: "cluster.local",
		Services: []Service{
			svc("istio-ingressgateway", "istio-ingressgateway", "istio-system", "istio-ingressgateway-service-account", 8080, 0, 0),
			svc("frontend-v1", "frontend", "shop", "frontend", 8080, 18000, 25, "/", "/products/{id}", "/cart", "/checkout", "/static/app.{hash}.js"),
			svc("catalog-v1", "catalog", "shop", "catalog", 8080, 4200, 8, "/api/v1/products", "/api/v1/products/{id}", "/api/v1/categories/{id}/products"),
			svc("search-v1", "search", "shop", "search", 8080, 6000, 30, "/api/v1/search"),
			svc("recommendations-v1", "recommendations", "shop", "recommendations", 8080, 1500, 40, "/api/v1/recommendations/{id}"),
			svc("reviews-v2", "reviews", "shop", "reviews", 9080, 2200, 12, "/reviews/{id}"),
			svc("ratings-v1", "ratings", "shop", "ratings", 9080, 300, 4, "/ratings/{id}"),
			svc("cart-v1", "cart", "shop", "cart", 8080, 900, 6, "/api/v1/carts/{uuid}", "/api/v1/carts/{uuid}/items"),
			svc("checkout-v1", "checkout", "shop", "checkout", 8080, 700, 60, "/api/v1/orders", "/api/v1/orders/{uuid}"),
			svc("inventory-v1", "inventory", "shop", "inventory", 8080, 250, 5, "/api/v1/stock/{id}", "/api/v1/reservations"),
			svc("shipping-v1", "shipping", "shop", "shipping", 8080, 400, 15, "/api/v1/quotes", "/api/v1/shipments/{uuid}"),
			svc("ads-v1", "ads", "shop", "ads", 8080, 2500, 10, "/api/v1/ads"),
			svc("payments-v1", "payments", "billing", "payments", 8443, 350, 90, "/api/v1/charges", "/api/v1/charges/{uuid}", "/api/v1/refunds"),
			svc("fraud-v1", "fraud", "billing", "fraud", 8080, 120, 20, "/score"),
			svc("ledger-v1", "ledger", "billing", "ledger", 8080, 200, 8, "/api/v1/entries"),
			svc("users-v1", "users", "identity", "users", 8080, 800, 7, "/api/v1/users/{id}", "/api/v1/users/{id}/addresses"),
			svc("auth-v1", "auth", "identity", "auth", 8080, 600, 12, "/oauth/token", "/oauth/introspect"),
			svc("sessions-v1", "sessions", "identity", "sessions", 6379, 150, 2, "/sessions/{uuid}"),
			svc("notifications-v1", "notifications", "ops", "notifications", 8080, 100, 30, "/api/v1/emails"),
			svc("metrics-proxy-v1", "metrics-proxy", "ops", "metrics-proxy", 9090, 50000, 5, "/metrics"),
			svc("prometheus-0", "prometheus", "ops", "prometheus", 9090, 0, 0),
			svc("reconcile-job", "reconcile", "billing", "reconcile", 8080, 0, 0),
		},
		Calls: []Call{
			{From: "istio-ingressgateway", To: "frontend-v1", PeakPerSec: 120, ErrorRate: 0.002},
			{From: "frontend-v1", To: "catalog-v1", PeakPerSec: 150, ErrorRate: 0.001},
			{From: "frontend-v1", To: "search-v1", PeakPerSec: 30, ErrorRate: 0.002},
			{From: "frontend-v1", To: "recommendations-v1", PeakPerSec: 40, ErrorRate: 0.003},
			{From: "frontend-v1", To: "reviews-v2", PeakPerSec: 35},
			{From: "frontend-v1", To: "cart-v1", PeakPerSec: 45, ErrorRate: 0.001},
			{From: "frontend-v1", To: "checkout-v1", PeakPerSec: 6, ErrorRate: 0.005},
			{From: "frontend-v1", To: "ads-v1", PeakPerSec: 60},
			{From: "frontend-v1", To: "auth-v1", PeakPerSec: 25, AuthFailRate: 0.02},
			{From: "frontend-v1", To: "users-v1", PeakPerSec: 12},
			{From: "reviews-v2", To: "ratings-v1", PeakPerSec: 35},
			{From: "recommendations-v1", To: "catalog-v1", PeakPerSec: 40},
			{From: "search-v1", To: "catalog-v1", PeakPerSec: 20},
			{From: "cart-v1", To: "inventory-v1", PeakPerSec: 20},
			{From: "cart-v1", To: "sessions-v1", PeakPerSec: 45},
			{From: "checkout-v1", To: "cart-v1", PeakPerSec: 6},
			{From: "checkout-v1", To: "payments-v1", PeakPerSec: 6, ErrorRate: 0.01},
			{From: "checkout-v1", To: "shipping-v1", PeakPerSec: 6},
			{From: "checkout-v1", To: "inventory-v1", PeakPerSec: 6},
			{From: "checkout-v1", To: "notifications-v1", PeakPerSec: 6},
			{From: "checkout-v1", To: "users-v1", PeakPerSec: 6},
			{From: "payments-v1", To: "fraud-v1", PeakPerSec: 6},
			{From: "payments-v1", To: "ledger-v1", PeakPerSec: 6},
			{From: "auth-v1", To: "users-v1", PeakPerSec: 25},
			{From: "auth-v1", To: "sessions-v1", PeakPerSec: 25},
			{From: "prometheus-0", To: "metrics-proxy-v1", PeakPerSec: 0.2},
			{From: "reconcile-job", To: "ledger-v1", PeakPerSec: 3},
		},
	}
}
