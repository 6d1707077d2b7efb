package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/posture"
	"github.com/meshguard/meshguard/report"
	"github.com/meshguard/meshguard/test/testenv"
	"github.com/meshguard/meshguard/test/zerotrust"
)

// runMeshguard runs `meshguard ARGS...` to its end and returns its
// standard output; a failure fails the test with both outputs.
func runMeshguard(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("meshguard %v: %v\n%s\n%s", args, err, out.String(), errOut.String())
	}
	return out.Bytes()
}

// TestPostureAndReportThroughTheBinary stores the zerotrust world in
// ClickHouse and the cluster, then asks the binary: `posture` shows the
// plaintext edges and the STRICT gap, `report` writes every format with
// the control mapping, and serve answers GET /api/v1/posture and
// /api/v1/report to a viewer.
func TestPostureAndReportThroughTheBinary(t *testing.T) {
	store, db := zerotrust.Store(t)
	w := zerotrust.Seed(t, store, testenv.KubeConfig(t))
	config := filepath.Join(t.TempDir(), "meshguard.yml")
	if err := os.WriteFile(config, []byte("clickhouse:\n  addr: ["+testenv.ClickHouseAddr(t)+"]\n  database: "+db+"\n"+
		"kubernetes:\n  kubeconfig: "+testenv.KubeconfigPath(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	since := fmt.Sprintf("%ds", int(time.Since(w.From).Seconds())+3600)

	var p posture.Posture
	if err := json.Unmarshal(runMeshguard(t, "posture", "--config", config, "--since", since, "--format", "json", "--root-namespace", w.Root), &p); err != nil {
		t.Fatal(err)
	}
	plain := map[string]posture.Edge{}
	for _, e := range p.PlaintextEdges {
		plain[fmt.Sprintf("%s->%s:%d", e.Source.Name(), e.Destination.Name(), e.Port)] = e
	}
	ipEdge, ok := plain["10.1.1.1->"+w.Shop+"/cart:9090"]
	if !ok || ipEdge.Plaintext != 5 || len(ipEdge.SampleRequestIDs) == 0 || ipEdge.PlaintextFirstSeen == nil {
		t.Errorf("plaintext edge 10.1.1.1 -> cart:9090 = %+v (found %v), want 5 plaintext requests with samples and times", ipEdge, ok)
	}
	if len(p.PlaintextEdges) != 4 {
		t.Errorf("%d plaintext edges, want 4: %v", len(p.PlaintextEdges), plain)
	}
	var gap *posture.Gap
	for i := range p.Gaps {
		if p.Gaps[i].Namespace == w.Shop {
			gap = &p.Gaps[i]
		}
	}
	if gap == nil {
		t.Fatalf("no STRICT gap for %s: %+v", w.Shop, p.Gaps)
	}
	breaks := map[string]bool{}
	for _, e := range gap.Breaks {
		breaks[e.Source.Name()+"->"+e.Destination.Workload] = true
	}
	if !breaks[w.Shop+"/frontend->cart"] || !breaks[w.Shop+"/"+zerotrust.Hostile+"->cart"] || len(gap.Breaks) != 2 {
		t.Errorf("STRICT would break %v, want frontend and the hostile caller into cart", breaks)
	}
	if len(gap.Exempt) != 1 || gap.Exempt[0].Port != 9090 || len(gap.Unverified) != 1 {
		t.Errorf("exempt %+v, unverified %+v; want cart:9090 (port-level DISABLE) exempt and batch's unknown calls unverified", gap.Exempt, gap.Unverified)
	}
	table := string(runMeshguard(t, "posture", "--config", config, "--since", since, "--root-namespace", w.Root))
	for _, want := range []string{"PLAINTEXT EDGES", "IF THE NAMESPACE WENT STRICT", "breaks", "NO ALLOW POLICY", w.Shop + "/cart"} {
		if !strings.Contains(table, want) {
			t.Errorf("posture table lacks %q:\n%s", want, table)
		}
	}

	from, to := w.From.Format(time.RFC3339), w.To.Format(time.RFC3339)
	var rep report.Report
	if err := json.Unmarshal(runMeshguard(t, "report", "--config", config, "--from", from, "--to", to, "--format", "json", "--root-namespace", w.Root), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Coverage.Plaintext != w.Plaintext || len(rep.Controls) == 0 || len(rep.Incidents) != 2 || len(rep.Actions) != 2 {
		t.Errorf("report: coverage %+v, %d controls, %d incidents, %d actions", rep.Coverage, len(rep.Controls), len(rep.Incidents), len(rep.Actions))
	}
	md := string(runMeshguard(t, "report", "--config", config, "--from", from, "--to", to, "--format", "md"))
	if !strings.Contains(md, "| SOC 2 | CC7.4 |") || strings.Contains(md, "<img") {
		t.Errorf("md report lacks the control table or carries raw HTML:\n%.2000s", md)
	}
	dir := t.TempDir()
	for _, format := range []string{"html", "pdf"} {
		out := filepath.Join(dir, "report."+format)
		runMeshguard(t, "report", "--config", config, "--from", from, "--to", to, "--format", format, "--out", out)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if format == "pdf" && !bytes.HasPrefix(b, []byte("%PDF-")) || format == "html" && !bytes.Contains(b, []byte("CC6.7")) {
			t.Errorf("report --format %s --out wrote %d bytes that are not one: %.100q", format, len(b), b)
		}
	}

	// serve answers the same to a viewer.
	brokers := testenv.Kafka(t)
	topic := testenv.NewTopic(t, brokers, 1)
	apiAddr := freeAddr(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("viewer-token-0123456789 viewer alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(serveEnv(brokers, topic, fmt.Sprintf("clickhouse://%s/%s", testenv.ClickHouseAddr(t), db)),
		"MESHGUARD_SERVER_LISTEN="+apiAddr, "MESHGUARD_SERVER_AUTH_MODE=token", "MESHGUARD_SERVER_AUTH_TOKENS_FILE="+tokens,
		"MESHGUARD_KUBERNETES_KUBECONFIG="+testenv.KubeconfigPath(t))
	srv := startMeshguard(t, env, "serve", "--stages", "ingest")
	get := func(path, token string) (int, http.Header, []byte) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+apiAddr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if code, _, _ := get("/healthz", ""); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) || !srv.alive() {
			t.Fatalf("serve's API did not come up:\n%s", srv.out)
		}
	}
	if code, _, _ := get("/api/v1/posture", ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous GET /api/v1/posture: %d, want 401", code)
	}
	code, _, body := get("/api/v1/posture?since="+since, "viewer-token-0123456789")
	var viaAPI posture.Posture
	if err := json.Unmarshal(body, &viaAPI); code != http.StatusOK || err != nil || len(viaAPI.PlaintextEdges) != 4 || !viaAPI.ClusterRead {
		t.Errorf("GET /api/v1/posture: %d %v, %d plaintext edges, cluster read %v; want 200, 4, true: %.300s", code, err, len(viaAPI.PlaintextEdges), viaAPI.ClusterRead, body)
	}
	code, header, body := get("/api/v1/report?format=pdf&from="+from+"&to="+to, "viewer-token-0123456789")
	if code != http.StatusOK || header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(body, []byte("%PDF-")) ||
		!strings.HasPrefix(header.Get("Content-Disposition"), "attachment") {
		t.Errorf("GET /api/v1/report?format=pdf: %d %q %q, %d bytes", code, header.Get("Content-Type"), header.Get("Content-Disposition"), len(body))
	}
	if code, _, body := get("/api/v1/report?format=doc", "viewer-token-0123456789"); code != http.StatusBadRequest {
		t.Errorf("GET /api/v1/report?format=doc: %d %s, want 400", code, body)
	}
	srv.terminate(t, 30*time.Second)
}
