package respond

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// gitOpsBackend writes each AuthorizationPolicy as DIR/NAMESPACE/NAME.yaml
// for teams that apply policies through Git; the files are the state.
// Names and namespaces are DNS-1123 (validated before a Policy exists),
// so they cannot leave the directory.
type gitOpsBackend struct {
	dir string
}

// NewGitOpsBackend returns the gitops backend writing under dir.
func NewGitOpsBackend(dir string) Backend { return &gitOpsBackend{dir: dir} }

func (b *gitOpsBackend) Name() string { return BackendGitOps }

func (b *gitOpsBackend) Supports(p Policy) error {
	if p.Role == RoleIsolate {
		return errors.New("gitops backend: isolate is a NetworkPolicy role")
	}
	return nil
}

func (b *gitOpsBackend) path(p Policy) (string, error) {
	if len(validation.IsDNS1123Label(p.Namespace)) > 0 || len(validation.IsDNS1123Subdomain(p.Name)) > 0 {
		return "", fmt.Errorf("gitops: %q/%q is not a namespace and name", p.Namespace, p.Name)
	}
	return filepath.Join(b.dir, p.Namespace, p.Name+".yaml"), nil
}

func (b *gitOpsBackend) Apply(_ context.Context, p Policy) error {
	path, err := b.path(p)
	if err != nil {
		return err
	}
	u, err := p.istioObject()
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(u.Object)
	if err != nil {
		return fmt.Errorf("gitops: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("gitops: %w", err)
	}
	// Write and rename, so a reader (git add, a sync tool) never sees half
	// a file.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".meshguard-*")
	if err != nil {
		return fmt.Errorf("gitops: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append([]byte("# Written by meshguard; deleted when it expires or is revoked.\n"), data...)); err != nil {
		tmp.Close()
		return fmt.Errorf("gitops: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("gitops: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("gitops: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gitops: %w", err)
	}
	return nil
}

func (b *gitOpsBackend) Delete(_ context.Context, p Policy) error {
	path, err := b.path(p)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("gitops: %w", err)
	}
	return nil
}

func (b *gitOpsBackend) List(_ context.Context, instance, actionID string) ([]Policy, error) {
	var items []unstructured.Unstructured
	var errs []error
	err := filepath.WalkDir(b.dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == b.dir {
				return filepath.SkipDir
			}
			return err
		}
		if e.IsDir() || !strings.HasSuffix(path, ".yaml") || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("gitops: %w", err))
			return nil
		}
		var obj map[string]any
		if err := yaml.Unmarshal(data, &obj); err != nil {
			errs = append(errs, fmt.Errorf("gitops: %s: %w", path, err))
			return nil
		}
		u := unstructured.Unstructured{Object: obj}
		l := u.GetLabels()
		if u.GetKind() != istioKind || l[LabelManagedBy] != ManagedBy || l[LabelInstance] != instance ||
			actionID != "" && l[LabelActionID] != actionID {
			return nil
		}
		items = append(items, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gitops: %w", err)
	}
	ps, perr := policiesFromObjects(items)
	return ps, errors.Join(append(errs, perr)...)
}
