package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// Kustomization is the kustomization.yaml of a GitOps output.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// ReportFile is the JSON report beside the policies: every suggestion,
// written or skipped, with its evidence and the callers not admitted.
const ReportFile = "suggestions.json"

// WriteDir writes the suggestions as a directory ready for a git repo:
// NAMESPACE/NAME.yaml per policy, a kustomization.yaml listing them, and
// the JSON report. The policies carry istio.io/dry-run: promoting one in
// git is deleting that annotation. It returns the files written.
func WriteDir(dir string, ss []Suggestion, instance string, dryRun bool, now time.Time) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("gitops output: %w", err)
	}
	var written []string
	k := Kustomization{APIVersion: "kustomize.config.k8s.io/v1beta1", Kind: "Kustomization", Resources: []string{}}
	for _, s := range ss {
		if s.Skipped != "" {
			continue
		}
		obj, err := s.Object(instance, dryRun, now)
		if err != nil {
			return written, err
		}
		data, err := obj.YAML()
		if err != nil {
			return written, fmt.Errorf("gitops output: %w", err)
		}
		// Namespace and name are DNS-1123 (Object checked), so the path
		// stays inside dir.
		rel := filepath.Join(s.Namespace, s.Name+".yaml")
		if err := writeFile(filepath.Join(dir, rel), data); err != nil {
			return written, err
		}
		written = append(written, rel)
		k.Resources = append(k.Resources, filepath.ToSlash(rel))
	}
	data, err := yaml.Marshal(k)
	if err != nil {
		return written, fmt.Errorf("gitops output: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "kustomization.yaml"), data); err != nil {
		return written, err
	}
	written = append(written, "kustomization.yaml")
	report, err := json.MarshalIndent(ss, "", "  ")
	if err != nil {
		return written, fmt.Errorf("gitops output: %w", err)
	}
	if err := writeFile(filepath.Join(dir, ReportFile), append(report, '\n')); err != nil {
		return written, err
	}
	return append(written, ReportFile), nil
}

// writeFile writes and renames, so a reader (git add, a sync tool) never
// sees half a file.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("gitops output: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("gitops output: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("gitops output: %w", err)
	}
	return nil
}
