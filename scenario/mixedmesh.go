package scenario

import (
	"net/netip"
	"time"
)

// MixedMesh is RealisticMesh as a real mesh reports it: its proxies do
// not all use meshguard's label form, some log one side only, some
// collectors write otlp_json, callers outside the mesh send plaintext,
// pods restart at new addresses (one at an address another workload's
// pod released two minutes before), and one leaf workload, fraud-v1, can
// be compromised (the "leaf" lateral_movement variant). Offsets are from
// the generator's start; restarts recur every 3 hours for horizon.
//
//   - label form (deploy/istio): the ingress, frontend, catalog, cart,
//     checkout, payments, ledger, auth, users, sessions, the batch jobs;
//   - the stock text format only: search, recommendations (client side
//     only), ads, reviews, ratings (server side only), fraud, the search
//     indexer (server side only), wishlist;
//   - text with k8sattributes resources: inventory, shipping (server side
//     only), notifications, metrics-proxy, prometheus, currency, coupons,
//     loyalty, events, warehouse;
//   - otlp_json: the collector of namespaces identity and analytics;
//   - outside the mesh, plaintext: tools/netcheck (a pod in a namespace
//     without injection) calls catalog and users; legacy-erp, a VM at
//     192.168.20.7, calls ledger;
//   - restarts: users-v1 at 1h30m, ratings-v1 at 2h20m, coupons-v1 at
//     2h22m at ratings-v1's old address, catalog-v1 at 4h30m; again every
//     3 hours after.
func MixedMesh(horizon time.Duration) Mesh {
	m := RealisticMesh()
	svc := func(name, app, ns, sa string, port uint16, paths ...string) Service {
		return Service{Name: name, App: app, Namespace: ns, SA: sa, Port: port, Paths: paths}
	}
	m.Services = append(m.Services,
		svc("netcheck", "netcheck", "tools", "default", 8080),
		svc("legacy-erp", "legacy-erp", "external", "none", 8080),
	)
	m.Calls = append(m.Calls,
		Call{From: "netcheck", To: "catalog-v1", PeakPerSec: 0.5, Paths: []string{"/api/v1/categories/{id}/products"}},
		Call{From: "netcheck", To: "users-v1", PeakPerSec: 0.2},
		Call{From: "legacy-erp", To: "ledger-v1", PeakPerSec: 0.3},
	)
	tel := map[string]Telemetry{}
	for _, w := range []string{"search-v1", "ads-v1", "reviews-v1", "reviews-v2", "reviews-v3", "fraud-v1", "wishlist-v1"} {
		tel[w] = Telemetry{Format: FormatText}
	}
	tel["recommendations-v1"] = Telemetry{Format: FormatText, Sides: SidesClient}
	tel["ratings-v1"] = Telemetry{Format: FormatText, Sides: SidesServer}
	tel["search-indexer"] = Telemetry{Format: FormatText, Sides: SidesServer}
	for _, w := range []string{"inventory-v1", "notifications-v1", "metrics-proxy-v1", "prometheus-0", "currency-v1", "coupons-v1", "loyalty-v1", "events-v1", "warehouse-v1"} {
		tel[w] = Telemetry{Format: FormatK8s}
	}
	tel["shipping-v1"] = Telemetry{Format: FormatK8s, Sides: SidesServer}
	for _, s := range m.Services {
		if s.Namespace == "identity" || s.Namespace == "analytics" {
			t := tel[s.Name]
			t.JSON = true
			tel[s.Name] = t
		}
	}
	tel["netcheck"] = Telemetry{NoSidecar: true}
	tel["legacy-erp"] = Telemetry{NoSidecar: true, NoPod: true, Addr: netip.MustParseAddr("192.168.20.7")}
	m.Telemetry = tel
	for base := time.Duration(0); base < horizon; base += 3 * time.Hour {
		m.Restarts = append(m.Restarts,
			Restart{Workload: "users-v1", At: base + 90*time.Minute},
			Restart{Workload: "ratings-v1", At: base + 140*time.Minute},
			Restart{Workload: "coupons-v1", At: base + 142*time.Minute, ReuseIPOf: "ratings-v1"},
			Restart{Workload: "catalog-v1", At: base + 270*time.Minute},
		)
	}
	return m
}

// MixedAttacks are the attacks a mixed-mesh evaluation injects beside
// the DefaultAttack of each kind: the stolen certificate and the
// compromised leaf, fraud-v1 (stock text format) calling sessions-v1.
func MixedAttacks(strength float64) []Attack {
	return []Attack{
		{Kind: "mtls_downgrade", Strength: strength, Variant: "principal", Source: "identity/loyalty-v1", Destination: "identity/users-v1"},
		{Kind: "lateral_movement", Strength: strength, Variant: "leaf", Source: "billing/fraud-v1", Destination: "identity/sessions-v1"},
	}
}
