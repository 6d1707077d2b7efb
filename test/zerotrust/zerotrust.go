// Package zerotrust is the posture and compliance tests' world: a cluster
// (cluster.yaml: a root namespace with a mesh-wide STRICT, a shop
// namespace PERMISSIVE with workload and port-level exceptions, an ops
// namespace, ALLOW policies enforced and in dry-run) and a day and a half
// of stored traffic, detections and audit rows on top of it, with a
// caller whose name is hostile HTML.
package zerotrust

import (
	"context"
	_ "embed"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
)

//go:embed cluster.yaml
var clusterYAML string

// Hostile is a workload name an attacker chose.
const Hostile = `<img src=x onerror=alert(1)>`

// Names are the fixture's namespaces.
type Names struct{ Root, Shop, Ops string }

// ApplyCluster creates cluster.yaml with fresh namespace names.
func ApplyCluster(t testing.TB, kube *rest.Config) Names {
	t.Helper()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	n := Names{Root: "root-" + suffix, Shop: "shop-" + suffix, Ops: "ops-" + suffix}
	testenv.ApplyManifest(t, kube, strings.NewReplacer("ROOT", n.Root, "SHOP", n.Shop, "OPS", n.Ops).Replace(clusterYAML))
	return n
}

// World is what Seed stored.
type World struct {
	Names
	// From and To bound everything stored: two UTC days.
	From, To time.Time
	// Requests by TLS state, counted once per request.
	MTLS, Plaintext, Unknown uint64
	// Answered is the incident that got a response, after AnsweredTTR;
	// Unanswered the one that got none.
	Answered, Unanswered string
	AnsweredTTD          time.Duration
	AnsweredTTR          time.Duration
}

// Seed applies the cluster and stores the traffic, detections and audit
// rows through store's own write path.
func Seed(t testing.TB, store *storage.ClickHouse, kube *rest.Config) World {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := World{Names: ApplyCluster(t, kube)}
	now := testenv.Recent().Truncate(time.Minute)
	yesterday := now.Add(-24 * time.Hour)
	w.From = time.Date(yesterday.Year(), yesterday.Month(), yesterday.Day(), 0, 0, 0, 0, time.UTC)
	w.To = now.Add(time.Hour)
	base := models.NewFlowIDBase("otlp_logs", 0, now.UnixNano())
	var flows []models.Flow
	add := func(at time.Time, rep models.Reporter, srcNS, src, ip, dstNS, dst string, port uint16, tls models.TLS, n int) {
		for range n {
			f := models.Flow{ID: base.ID(len(flows)), TimestampMs: at.UnixMilli() + int64(len(flows)), Reporter: rep,
				Source:      models.Source{Workload: src, Namespace: srcNS},
				Destination: models.Destination{Workload: dst, Namespace: dstNS, Service: dst + "." + dstNS + ".svc.cluster.local", Port: port},
				Method:      "GET", Path: "/", ResponseCode: 200, TLS: tls, Count: 1, RequestID: fmt.Sprintf("req-%04d", len(flows))}
			if ip != "" {
				f.Source.IP = netip.MustParseAddr(ip)
			}
			if tls == models.TLSMutual {
				f.Source.Principal = "cluster.local/ns/" + srcNS + "/sa/" + src
				f.Destination.Principal = "cluster.local/ns/" + dstNS + "/sa/" + dst
			}
			flows = append(flows, f)
			switch tls {
			case models.TLSMutual:
				w.MTLS++
			case models.TLSPlaintext:
				w.Plaintext++
			default:
				w.Unknown++
			}
		}
	}
	dst, src := models.ReporterDestination, models.ReporterSource
	shop, ops := w.Shop, w.Ops
	add(yesterday, dst, shop, "frontend", "", shop, "payments", 8080, models.TLSMutual, 10)
	add(now, dst, shop, "frontend", "", shop, "payments", 8080, models.TLSMutual, 10)
	add(now, dst, shop, "frontend", "", shop, "cart", 8080, models.TLSMutual, 8)
	add(now, dst, shop, "frontend", "", shop, "cart", 8080, models.TLSPlaintext, 2)
	add(now, dst, "", "", "10.1.1.1", shop, "cart", 9090, models.TLSPlaintext, 5)
	add(now, src, shop, "batch", "", shop, "frontend", 8080, models.TLSUnknown, 4)
	add(now, dst, ops, "metrics", "", ops, "scraper", 8080, models.TLSPlaintext, 1)
	add(now, dst, shop, Hostile, "", shop, "cart", 8080, models.TLSPlaintext, 1)
	if err := store.ConsumeFlows(ctx, flows); err != nil {
		t.Fatal(err)
	}

	w.Answered, w.Unanswered = "det-lateral", "det-hostile"
	w.AnsweredTTD, w.AnsweredTTR = 30*time.Second, 45*time.Second
	start := now.Add(-10 * time.Minute)
	for _, d := range []storage.DetectionRow{
		{DetectionID: w.Answered, IncidentID: w.Answered, DetectedAt: start.Add(w.AnsweredTTD), WindowStart: start, WindowEnd: start.Add(10 * time.Second),
			Kind: "lateral_movement", Severity: "high", Score: 9, SourceWorkload: "frontend", SourceNamespace: shop,
			DestinationWorkload: "payments", DestinationNamespace: shop},
		{DetectionID: w.Unanswered, IncidentID: w.Unanswered, DetectedAt: start.Add(time.Minute), WindowStart: start.Add(50 * time.Second),
			WindowEnd: start.Add(time.Minute), Kind: "mtls_downgrade", Severity: "medium", Score: 4, SourceWorkload: Hostile,
			SourceNamespace: shop, DestinationWorkload: "cart", DestinationNamespace: shop},
	} {
		if err := store.WriteDetection(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	applied := start.Add(w.AnsweredTTD + w.AnsweredTTR)
	for _, a := range []storage.ActionRow{
		{ActionID: "act-1", At: applied, DetectionID: w.Answered, Kind: "block_edge", Mode: "dry-run", State: "applied",
			Actor: "meshguard", Reason: "lateral movement", Target: shop + "/payments", PolicyName: "mg-block-frontend-payments", PolicyNamespace: shop},
		{ActionID: "act-1", At: applied.Add(2 * time.Minute), DetectionID: w.Answered, Kind: "block_edge", Mode: "dry-run", State: "revoked",
			Actor: "cli:eve", Reason: "false positive", Target: shop + "/payments", PolicyName: "mg-block-frontend-payments", PolicyNamespace: shop},
	} {
		if err := store.WriteAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// Store returns a store on a fresh, migrated database of the test
// ClickHouse (closed when the test ends) and the database's name.
func Store(t testing.TB) (*storage.ClickHouse, string) {
	t.Helper()
	_, db := testenv.ClickHouse(t)
	cfg := storage.DefaultClickHouseConfig()
	cfg.Addr, cfg.Database = []string{testenv.ClickHouseAddr(t)}, db
	store, err := storage.NewClickHouse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store, db
}
