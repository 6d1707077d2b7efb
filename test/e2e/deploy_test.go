package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/test/deploy"
	"github.com/meshguard/meshguard/test/testenv"
)

// TestDeployManifestsPassServerSideDryRun validates every manifest under
// deploy/ the way the cluster would: schema, CRD (CEL) validation and
// admission, without changing anything. Kustomizations are validated as
// they render (TestDeployKustomizationsPassServerSideDryRun); their own
// files and the data their generators read (a meshguard config, a
// dashboard) are not manifests and are skipped here. Files that are not
// *.yaml or *.yml (e.g. Strimzi resources as *.yaml.example, for clusters
// with CRDs this apiserver lacks) are documentation.
func TestDeployManifestsPassServerSideDryRun(t *testing.T) {
	files, _ := manifests(t, filepath.Join(testenv.RepoRoot(t), "deploy"))
	if len(files) == 0 {
		t.Fatal("no manifests under deploy/")
	}
	createNamespaces(t, namespacesOf(t, files))
	for _, f := range files {
		rel, _ := filepath.Rel(testenv.RepoRoot(t), f)
		t.Run(rel, func(t *testing.T) { dryRun(t, f) })
	}
}

// TestDeployKustomizationsPassServerSideDryRun renders every
// kustomization under deploy/ (the base, the dev, production and networkpolicy overlays,
// the Grafana dashboard) with the kubectl the apiserver was built with,
// dry-runs the result, checks that every meshguard Deployment in it is
// hardened, and that the config each one mounts passes `meshguard config
// check` with the Deployment's own MESHGUARD_* overrides.
func TestDeployKustomizationsPassServerSideDryRun(t *testing.T) {
	kubectl := testenv.Kubectl(t)
	_, dirs := manifests(t, filepath.Join(testenv.RepoRoot(t), "deploy"))
	for _, want := range []string{"deploy/kubernetes", "deploy/overlays/dev", "deploy/overlays/production", "deploy/overlays/networkpolicy"} {
		if !containsDir(t, dirs, want) {
			t.Errorf("no kustomization in %s", want)
		}
	}
	for _, dir := range dirs {
		rel, _ := filepath.Rel(testenv.RepoRoot(t), dir)
		t.Run(rel, func(t *testing.T) {
			out, err := exec.Command(kubectl, "kustomize", dir).Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("kubectl kustomize %s: %v\n%s", rel, err, ee.Stderr)
				}
				t.Fatal(err)
			}
			rendered := filepath.Join(t.TempDir(), "rendered.yaml")
			if err := os.WriteFile(rendered, out, 0o644); err != nil {
				t.Fatal(err)
			}
			createNamespaces(t, namespacesOf(t, []string{rendered}))
			dryRun(t, rendered)

			deps, err := deploy.Deployments(out)
			if err != nil {
				t.Fatal(err)
			}
			cms, err := deploy.ConfigMaps(out)
			if err != nil {
				t.Fatal(err)
			}
			configs := map[string]string{}
			for _, cm := range cms {
				if c, ok := cm.Data["config.yaml"]; ok {
					configs[cm.Name] = c
				}
			}
			for _, d := range deps {
				if d.Labels["app.kubernetes.io/name"] != "meshguard" {
					continue
				}
				for _, p := range deploy.Hardening(d) {
					t.Error(p)
				}
				checkMountedConfig(t, d.Name, d.Spec.Template.Spec, configs)
			}
		})
	}
}

// secretsDir is where the Deployments mount the Secret meshguard-secrets.
const secretsDir = "/etc/meshguard/secrets/"

// checkMountedConfig runs `meshguard config check` on the config the
// pod mounts, with its MESHGUARD_* env, and the Secret's files stood in
// for by test values.
func checkMountedConfig(t *testing.T, name string, spec corev1.PodSpec, configs map[string]string) {
	t.Helper()
	var cmName string
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			if _, ok := configs[v.ConfigMap.Name]; ok {
				cmName = v.ConfigMap.Name
			}
		}
	}
	if cmName == "" {
		t.Errorf("%s mounts no ConfigMap with a config.yaml", name)
		return
	}
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets") + "/"
	writeTestSecrets(t, secrets)
	cfg := strings.ReplaceAll(configs[cmName], secretsDir, secrets)
	for _, ref := range regexp.MustCompile(regexp.QuoteMeta(secretsDir)+`[A-Za-z0-9._-]+`).FindAllString(configs[cmName], -1) {
		if _, err := os.Stat(filepath.Join(secrets, strings.TrimPrefix(ref, secretsDir))); err != nil {
			t.Errorf("%s: config names %s, which is not one of the Secret's keys listed in deploy/README.md", name, ref)
		}
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, c := range spec.Containers {
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "MESHGUARD_") {
				env = append(env, e.Name+"="+e.Value)
			}
		}
	}
	cmd := exec.Command(binary, "config", "check", path)
	cmd.Env = append(withoutMeshguardEnv(os.Environ()), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return
	}
	t.Errorf("%s: meshguard config check (env %v): %v\n%s", name, env, err, out)
}

func withoutMeshguardEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "MESHGUARD_") || strings.HasPrefix(kv, "MESHGUARD_TEST_") || strings.HasPrefix(kv, "MESHGUARD_INFRA_") || strings.HasPrefix(kv, "MESHGUARD_CACHE_") {
			out = append(out, kv)
		}
	}
	return out
}

// writeTestSecrets writes a stand-in for every key of the Secret
// meshguard-secrets (deploy/README.md lists them).
func writeTestSecrets(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"api-tokens":           "test-viewer-token viewer grafana\ntest-operator-token operator oncall\n",
		"slack-token":          "xoxb-test-token\n",
		"slack-webhook-url":    "https://hooks.slack.com/services/T000/B000/test\n",
		"slack-signing-secret": "test-signing-secret\n",
		"kafka-sasl-password":  "test-kafka-password\n",
		"clickhouse-password":  "test-clickhouse-password\n",
		"kafka-ca.crt":         testCA(t),
		"clickhouse-ca.crt":    testCA(t),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "meshguard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func containsDir(t *testing.T, dirs []string, rel string) bool {
	t.Helper()
	for _, d := range dirs {
		if r, _ := filepath.Rel(testenv.RepoRoot(t), d); r == rel {
			return true
		}
	}
	return false
}

// dryRun server-side applies file with --dry-run=server.
func dryRun(t *testing.T, file string) {
	t.Helper()
	out, err := exec.Command(testenv.Kubectl(t), "--kubeconfig", testenv.KubeconfigPath(t), "apply", "--dry-run=server", "--server-side",
		"--field-manager", "meshguard-test", "-f", file).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server -f %s: %v\n%s", file, err, out)
	}
	if !strings.Contains(string(out), "(server dry run)") {
		t.Fatalf("no server dry run happened:\n%s", out)
	}
}

// createNamespaces creates (for real) the namespaces the manifests use:
// a dry run does not create a namespace, so objects in one the same file
// creates would fail.
func createNamespaces(t *testing.T, namespaces map[string]bool) {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(testenv.KubeConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ns := range namespaces {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// kustomizationNames are the file names kustomize reads in a directory.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// manifests lists the Kubernetes YAML files under dir, and the
// directories holding a kustomization. Kustomization files and the files
// a kustomization uses as generator data or patches are not manifests.
func manifests(t *testing.T, dir string) (files, kustomizations []string) {
	t.Helper()
	notManifest := map[string]bool{}
	var all []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			for _, k := range kustomizationNames {
				kf := filepath.Join(path, k)
				if _, err := os.Stat(kf); err == nil {
					kustomizations = append(kustomizations, path)
					notManifest[kf] = true
					for _, f := range kustomizationInputs(t, kf) {
						notManifest[filepath.Join(path, f)] = true
					}
				}
			}
			return nil
		}
		if strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml") {
			all = append(all, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if !notManifest[f] {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	sort.Strings(kustomizations)
	return files, kustomizations
}

// kustomizationInputs returns the files a kustomization reads as data
// (configMapGenerator, secretGenerator) or as patches.
func kustomizationInputs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		ConfigMapGenerator []struct {
			Files []string `json:"files"`
		} `json:"configMapGenerator"`
		SecretGenerator []struct {
			Files []string `json:"files"`
		} `json:"secretGenerator"`
		Patches []struct {
			Path string `json:"path"`
		} `json:"patches"`
		PatchesStrategicMerge []string `json:"patchesStrategicMerge"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, g := range append(k.ConfigMapGenerator, k.SecretGenerator...) {
		for _, f := range g.Files {
			// "key=path" or "path".
			if _, p, ok := strings.Cut(f, "="); ok {
				f = p
			}
			out = append(out, f)
		}
	}
	for _, p := range k.Patches {
		if p.Path != "" {
			out = append(out, p.Path)
		}
	}
	return append(out, k.PatchesStrategicMerge...)
}

// namespacesOf returns the namespaces the manifests use or create.
func namespacesOf(t *testing.T, files []string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
				} `json:"metadata"`
			}
			if err := dec.Decode(&obj); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			if obj.Kind == "Namespace" {
				out[obj.Metadata.Name] = true
			}
			if obj.Metadata.Namespace != "" {
				out[obj.Metadata.Namespace] = true
			}
		}
	}
	return out
}
