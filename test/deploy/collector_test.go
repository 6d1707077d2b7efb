package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/test/testenv"
)

func collectorManifest(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "collector", "collector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestCollectorAdmitsOnlyTheMesh: deploy/collector/collector.yaml puts
// the receiver in the mesh behind STRICT mTLS and an AuthorizationPolicy
// for mesh identities on 4317, and names the reporter from the
// connection only. test/e2e dry-runs the same file against the API
// server with Istio's CRDs.
func TestCollectorAdmitsOnlyTheMesh(t *testing.T) {
	for _, p := range Provenance([]byte(collectorManifest(t))) {
		t.Error(p)
	}
}

// TestProvenanceCatchesEachGap: the check fails the manifest without
// any one of its guarantees.
func TestProvenanceCatchesEachGap(t *testing.T) {
	data := collectorManifest(t)
	for name, breakIt := range map[string]func(string) string{
		"out of the mesh": func(s string) string {
			return strings.Replace(strings.Replace(s, `sidecar.istio.io/inject: "true"`, `sidecar.istio.io/inject: "false"`, 1), "istio-injection: enabled", "istio-injection: disabled", 1)
		},
		"REDIRECT": func(s string) string {
			return strings.Replace(s, "interceptionMode: TPROXY", "interceptionMode: REDIRECT", 1)
		},
		"PERMISSIVE": func(s string) string { return strings.Replace(s, "mode: STRICT", "mode: PERMISSIVE", 1) },
		"any principal-less caller": func(s string) string {
			return strings.Replace(s, `principals: ["*"]`, `ipBlocks: ["0.0.0.0/0"]`, 1)
		},
		"every port": func(s string) string { return strings.Replace(s, `ports: ["4317"]`, `ports: ["4317", "13133"]`, 1) },
		"OTLP/HTTP": func(s string) string {
			return strings.Replace(s, "endpoint: 0.0.0.0:4317\n", "endpoint: 0.0.0.0:4317\n          http:\n            endpoint: 0.0.0.0:4318\n", 1)
		},
		"association by attribute": func(s string) string {
			return strings.Replace(s, "- from: connection", "- from: resource_attribute\n            name: k8s.pod.ip", 1)
		},
		"pod name kept": func(s string) string { return strings.Replace(s, "- {key: k8s.pod.name, action: delete}\n", "", 1) },
		"dropped after k8sattributes": func(s string) string {
			return strings.Replace(s, "[memory_limiter, resource/provenance, k8sattributes, batch]", "[memory_limiter, k8sattributes, resource/provenance, batch]", 1)
		},
	} {
		broken := breakIt(data)
		if broken == data {
			t.Errorf("%s: the replacement did not apply; update the test", name)
			continue
		}
		if len(Provenance([]byte(broken))) == 0 {
			t.Errorf("%s: the collector still passes the provenance check", name)
		}
	}
}
