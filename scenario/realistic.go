package scenario

import "time"

// RealisticMesh is DefaultMesh grown to 33 workloads in 6 namespaces with
// the dynamics of a live cluster, for the detection evaluation and
// `meshguard simulate`. Offsets are from the generator's start; the
// evaluation learns for the first hour, so every dynamic below starts
// after it, where a detector could mistake it for an attack:
//
//   - bursty clients: the ingress, frontend, search, recommendations and
//     notifications surge to 1.5-3x for 10-60 s a few times an hour;
//   - retries: callers of inventory, payments, sessions, ratings and
//     catalog retry 503s twice (Istio's default), so every error shows
//     as several attempts on the destination side;
//   - canary deploys: cart-v2 takes 5%, 25%, 50%, then all of cart-v1's
//     traffic from 1h45m, 15 minutes a step (its callers, with
//     established profiles, call a workload they never called);
//     reviews-v3 takes a third, then two thirds of reviews-v2's traffic
//     from 2h30m and calls ratings, which its peers reviews-v1 and -v2
//     already call, on a new endpoint (/ratings/{id}/summary);
//   - batch jobs: billing-report (a CronJob) reads ledger and payments at
//     full speed for 4 minutes at :05 and :35 of every hour, with large
//     responses; search-indexer re-reads the catalog for 2 minutes every
//     15 minutes; the nightly reconcile-job runs 01:00-02:00;
//   - an incident: inventory-v1 fails 30% of connections for 40 s at
//     2h10m; cart and checkout retry;
//
// and the benign confounders that look like attacks to a per-edge
// statistic, placed between the evaluation's attack slots:
//
//   - a destination outage seen by many callers: catalog-v1 answers 503
//     itself to half the requests for 60 s at 3h00m; frontend,
//     recommendations, search (and the indexer when it runs) retry, their
//     proxies log URX;
//   - a retry storm of one caller: warehouse-v1, called only by events-v1
//     at that time, answers 503 to 60% for 90 s at 4h10m, and events-v1
//     retries twice;
//   - an open circuit breaker: 30% of the calls to ratings-v1 are refused
//     by the callers' proxies (503 UO) for 40 s at 4h45m;
//   - deploys: payments-v1 rolls out a new ReplicaSet of 2 pods at 3h40m
//     (new addresses; 5% of in-flight requests reset, 503 UC, for 20 s);
//     the frontend's HPA scales it to 4 pods at 5h15m;
//   - a new service coming online: wishlist-v1 at 5h20m, called by the
//     frontend, calling users and catalog.
func RealisticMesh() Mesh {
	m := DefaultMesh()
	svc := func(name, app, ns, sa string, port uint16, bytes, ms int, paths ...string) Service {
		return Service{Name: name, App: app, Namespace: ns, SA: sa, Port: port, Paths: paths, MeanBytes: bytes, MeanMs: ms}
	}
	m.Services = append(m.Services,
		svc("reviews-v1", "reviews", "shop", "reviews", 9080, 2100, 10, "/reviews/{id}"),
		svc("reviews-v3", "reviews", "shop", "reviews", 9080, 2300, 14, "/reviews/{id}"),
		svc("cart-v2", "cart", "shop", "cart", 8080, 950, 5, "/api/v1/carts/{uuid}", "/api/v1/carts/{uuid}/items"),
		svc("currency-v1", "currency", "shop", "currency", 7000, 120, 3, "/api/v1/convert", "/api/v1/currencies"),
		svc("coupons-v1", "coupons", "shop", "coupons", 8080, 180, 4, "/api/v1/coupons/{id}"),
		svc("loyalty-v1", "loyalty", "identity", "loyalty", 8080, 220, 9, "/api/v1/members/{id}/points"),
		svc("events-v1", "events", "analytics", "events", 8080, 40, 3, "/v1/events"),
		svc("warehouse-v1", "warehouse", "analytics", "warehouse", 8123, 300, 45, "/insert", "/query"),
		svc("billing-report", "billing-report", "billing", "billing-report", 8080, 0, 0),
		svc("search-indexer", "search-indexer", "shop", "search-indexer", 8080, 0, 0),
		svc("wishlist-v1", "wishlist", "shop", "wishlist", 8080, 700, 9, "/api/v1/wishlists/{id}"),
	)
	bursts := map[string]float64{
		"istio-ingressgateway": 3, "frontend-v1": 4, "search-v1": 3,
		"recommendations-v1": 2, "notifications-v1": 2,
	}
	for i := range m.Services {
		m.Services[i].BurstsPerHour = bursts[m.Services[i].Name]
	}
	retried := map[string]bool{"inventory-v1": true, "payments-v1": true, "sessions-v1": true, "ratings-v1": true, "catalog-v1": true}
	for i := range m.Calls {
		c := &m.Calls[i]
		if retried[c.To] {
			c.Retries = 2
		}
		// reviews now runs two versions side by side, half each.
		if c.From == "frontend-v1" && c.To == "reviews-v2" {
			c.PeakPerSec /= 2
		}
		if c.From == "reviews-v2" && c.To == "ratings-v1" {
			c.PeakPerSec /= 2
			c.ErrorRate = 0.001
		}
	}
	m.Calls = append(m.Calls,
		Call{From: "frontend-v1", To: "reviews-v1", PeakPerSec: 17.5},
		Call{From: "reviews-v1", To: "ratings-v1", PeakPerSec: 17.5, ErrorRate: 0.001, Retries: 2},
		Call{From: "reviews-v3", To: "ratings-v1", PeakPerSec: 17.5, ErrorRate: 0.001, Retries: 2,
			Paths: []string{"/ratings/{id}", "/ratings/{id}", "/ratings/{id}/summary"}},
		Call{From: "frontend-v1", To: "currency-v1", PeakPerSec: 50, ErrorRate: 0.0005},
		Call{From: "checkout-v1", To: "currency-v1", PeakPerSec: 6},
		Call{From: "cart-v1", To: "coupons-v1", PeakPerSec: 8, ErrorRate: 0.001},
		Call{From: "checkout-v1", To: "loyalty-v1", PeakPerSec: 6},
		Call{From: "loyalty-v1", To: "users-v1", PeakPerSec: 6},
		Call{From: "frontend-v1", To: "events-v1", PeakPerSec: 80, ErrorRate: 0.0005},
		Call{From: "checkout-v1", To: "events-v1", PeakPerSec: 6},
		Call{From: "events-v1", To: "warehouse-v1", PeakPerSec: 2, ErrorRate: 0.002, Retries: 2},
		Call{From: "billing-report", To: "ledger-v1", PeakPerSec: 25, MeanBytes: 60000,
			Paths: []string{"/api/v1/entries/{id}"}},
		Call{From: "billing-report", To: "payments-v1", PeakPerSec: 10, Retries: 2, MeanBytes: 8000},
		Call{From: "billing-report", To: "warehouse-v1", PeakPerSec: 1},
		Call{From: "search-indexer", To: "catalog-v1", PeakPerSec: 60, Retries: 2},
		Call{From: "search-indexer", To: "search-v1", PeakPerSec: 5},
		Call{From: "frontend-v1", To: "wishlist-v1", PeakPerSec: 10, ErrorRate: 0.001},
		Call{From: "wishlist-v1", To: "users-v1", PeakPerSec: 4},
		Call{From: "wishlist-v1", To: "catalog-v1", PeakPerSec: 6, Retries: 2},
	)
	m.Rollouts = []Rollout{
		{From: "cart-v1", To: "cart-v2", At: 105 * time.Minute, Every: 15 * time.Minute, Weights: []float64{0.05, 0.25, 0.5, 1}},
		{From: "reviews-v2", To: "reviews-v3", At: 150 * time.Minute, Every: 20 * time.Minute, Weights: []float64{1.0 / 3, 2.0 / 3}},
	}
	m.Jobs = []Job{
		{Workload: "billing-report", Every: 30 * time.Minute, Offset: 5 * time.Minute, RunFor: 4 * time.Minute},
		{Workload: "search-indexer", Every: 15 * time.Minute, Offset: 2 * time.Minute, RunFor: 2 * time.Minute},
	}
	m.Incidents = []Incident{
		{Workload: "inventory-v1", At: 130 * time.Minute, For: 40 * time.Second, ErrorRate: 0.3},
		{Workload: "catalog-v1", At: 180 * time.Minute, For: 60 * time.Second, ErrorRate: 0.5, Mode: IncidentUnavailable},
		{Workload: "warehouse-v1", At: 250 * time.Minute, For: 90 * time.Second, ErrorRate: 0.6, Mode: IncidentUnavailable},
		{Workload: "ratings-v1", At: 285 * time.Minute, For: 40 * time.Second, ErrorRate: 0.3, Mode: IncidentOverflow},
	}
	m.Deploys = []Deploy{
		{Workload: "payments-v1", At: 220 * time.Minute, Pods: 2, Reset: 20 * time.Second, ResetRate: 0.05},
		{Workload: "frontend-v1", At: 315 * time.Minute, Pods: 4},
	}
	m.Launches = []Launch{{Workload: "wishlist-v1", At: 320 * time.Minute}}
	return m
}
