package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
	"github.com/meshguard/meshguard/test/testenv"
	"go.opentelemetry.io/collector/pdata/plog"
)

// serve against the real kube-apiserver names the workloads behind
// records that carry only IPs: Istio's stock text format (no labels, no
// principals), from both proxies. A label-form record whose attested
// principal contradicts its IP keeps its claim and is marked.
func TestServeResolvesIdentitiesFromTheCluster(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 1)
	conn, db := testenv.ClickHouse(t)
	cs, err := kubernetes.NewForConfig(testenv.KubeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ns := "e2e-id-" + strings.ReplaceAll(db, "_", "-")
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	// IPs of this run only: the apiserver is shared.
	n := time.Now().UnixNano()
	srcIP := netip.AddrFrom4([4]byte{10, 250, byte(n >> 8), byte(n%200) + 10})
	dstIP := srcIP.Next()
	testenv.CreateWorkload(t, cs, testenv.Workload{NS: ns, Name: "frontend", SA: "frontend", Labels: map[string]string{"app": "frontend"}, IPs: []string{srcIP.String()}})
	testenv.CreateWorkload(t, cs, testenv.Workload{NS: ns, Name: "catalog", SA: "catalog", Labels: map[string]string{"app": "catalog"}, IPs: []string{dstIP.String()}})
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "catalog"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "catalog"}, Ports: []corev1.ServicePort{{Port: 8080}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	env := append(serveEnv(brokers, topic, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)),
		"MESHGUARD_KUBERNETES_KUBECONFIG="+testenv.KubeconfigPath(t))
	srv := startMeshguard(t, env, "serve", "--stages", "ingest,detect")

	frontend := &scenario.Service{Name: "frontend", App: "frontend", Namespace: ns, SA: "frontend", Port: 8080}
	catalog := &scenario.Service{Name: "catalog", App: "catalog", Namespace: ns, SA: "catalog", Port: 8080}
	gen := scenario.New(scenario.Mesh{TrustDomain: "cluster.local"}, time.Now(), 1)
	gen.Body = true
	at := time.Now()
	text := plog.NewLogs()
	records := text.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < 3; i++ {
		gen.Emit(records, scenario.Request{From: frontend, To: catalog, SrcIP: srcIP, DstIP: dstIP, At: at.Add(time.Duration(i) * time.Millisecond),
			Method: "GET", Path: "/items", Code: 200, Flags: "-", BytesSent: 100, DurationMs: 3, UserAgent: "curl/8"})
	}
	// The stock text format: the line alone, as a proxy without
	// meshguard's labels sends it.
	for i := 0; i < records.Len(); i++ {
		records.At(i).Attributes().Clear()
	}
	// Label form, destination side, mTLS: the destination proxy attests a
	// principal of another namespace than the pod behind the IP.
	labelled := plog.NewLogs()
	lrs := labelled.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	impostor := *frontend
	impostor.Name, impostor.Namespace = "payments", "billing"
	gen.Emit(lrs, scenario.Request{From: &impostor, To: catalog, SrcIP: srcIP, DstIP: dstIP, At: at, ServerOnly: true,
		Method: "POST", Path: "/charges", Code: 200, Flags: "-", DurationMs: 2, UserAgent: "curl/8"})

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	for _, ld := range []plog.Logs{text, labelled} {
		values, err := scenario.Marshal(ld, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := w.WriteMessages(ctx, kafka.Message{Value: v}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := uint64(records.Len() + lrs.Len())
	waitFlows(t, conn, db, want, 90*time.Second)

	type row struct {
		reporter, srcWL, srcNS, srcPrincipal, dstWL, dstNS, dstPrincipal string
		resolved, conflict                                               uint8
	}
	rs, err := conn.Query(ctx, "SELECT reporter, source_workload, source_namespace, source_principal, destination_workload, destination_namespace, destination_principal, identity_resolved, identity_conflict FROM "+db+".flows ORDER BY method, reporter")
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.reporter, &r.srcWL, &r.srcNS, &r.srcPrincipal, &r.dstWL, &r.dstNS, &r.dstPrincipal, &r.resolved, &r.conflict); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	rs.Close()
	if uint64(len(rows)) != want {
		t.Fatalf("%d rows, want %d: %+v", len(rows), want, rows)
	}
	all := models.ResolvedSourceWorkload | models.ResolvedSourceNamespace | models.ResolvedSourcePrincipal |
		models.ResolvedDestinationWorkload | models.ResolvedDestinationNamespace | models.ResolvedDestinationPrincipal
	for _, r := range rows[:records.Len()] { // GET: the text-format records
		if r.srcWL != "frontend" || r.srcNS != ns || r.srcPrincipal != "cluster.local/ns/"+ns+"/sa/frontend" ||
			r.dstWL != "catalog" || r.dstNS != ns || r.dstPrincipal != "cluster.local/ns/"+ns+"/sa/catalog" ||
			models.Resolved(r.resolved) != all || r.conflict != 0 {
			t.Errorf("text-format %s-side record stored as %+v; want frontend -> catalog in %s, every identity field resolved", r.reporter, r, ns)
		}
	}
	if r := rows[len(rows)-1]; r.srcWL != "payments" || r.srcNS != "billing" || r.srcPrincipal != "cluster.local/ns/billing/sa/frontend" ||
		r.conflict != 1 || models.Resolved(r.resolved).Has(models.ResolvedSourceWorkload) {
		t.Errorf("attested contradicting record stored as %+v; want its claim kept and identity_conflict 1", r)
	}
	if !strings.Contains(srv.out.String(), "identity: pods listed") {
		t.Errorf("serve did not log the resolver's start:\n%s", srv.out.String())
	}
	srv.terminate(t, 30*time.Second)
}
