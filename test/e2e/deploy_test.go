package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/test/testenv"
)

// TestDeployManifestsPassServerSideDryRun validates every manifest under
// deploy/ the way the cluster would: schema, CRD (CEL) validation and
// admission, without changing anything.
func TestDeployManifestsPassServerSideDryRun(t *testing.T) {
	cfg := testenv.KubeConfig(t)
	kubectl := testenv.Kubectl(t)
	kubeconfig := testenv.KubeconfigPath(t)
	files := manifests(t, filepath.Join(testenv.RepoRoot(t), "deploy"))
	if len(files) == 0 {
		t.Fatal("no manifests under deploy/")
	}

	// A dry run does not create namespaces, so objects in a namespace the
	// same file creates would fail: create those for real first.
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ns := range namespacesOf(t, files) {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		rel, _ := filepath.Rel(testenv.RepoRoot(t), f)
		t.Run(rel, func(t *testing.T) {
			out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "--server-side",
				"--field-manager", "meshguard-test", "-f", f).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server -f %s: %v\n%s", rel, err, out)
			}
			if !strings.Contains(string(out), "(server dry run)") {
				t.Fatalf("no server dry run happened:\n%s", out)
			}
		})
	}
}

// manifests lists the Kubernetes YAML files under dir.
func manifests(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
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
