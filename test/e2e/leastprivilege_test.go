package e2e

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/test/deploy"
	"github.com/meshguard/meshguard/test/testenv"
)

// meshguardUser is the service account the Deployments run as.
const meshguardUser = "system:serviceaccount:meshguard:meshguard"

// rendered is what one kustomization renders that least privilege is
// about.
type rendered struct {
	roles    []rbacv1.ClusterRole
	policies []admissionv1.ValidatingAdmissionPolicy
	bindings []admissionv1.ValidatingAdmissionPolicyBinding
	backend  string // respond.backend of the meshguard Deployment running respond
}

func render(t *testing.T, dir string) rendered {
	t.Helper()
	out, err := exec.Command(testenv.Kubectl(t), "kustomize", filepath.Join(testenv.RepoRoot(t), dir)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var r rendered
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		b, _ := u.MarshalJSON()
		switch u.GetKind() {
		case "ClusterRole":
			var x rbacv1.ClusterRole
			err = sigsyaml.UnmarshalStrict(b, &x)
			r.roles = append(r.roles, x)
		case "ValidatingAdmissionPolicy":
			var x admissionv1.ValidatingAdmissionPolicy
			err = sigsyaml.UnmarshalStrict(b, &x)
			r.policies = append(r.policies, x)
		case "ValidatingAdmissionPolicyBinding":
			var x admissionv1.ValidatingAdmissionPolicyBinding
			err = sigsyaml.UnmarshalStrict(b, &x)
			r.bindings = append(r.bindings, x)
		}
		if err != nil {
			t.Fatalf("%s: %s %s: %v", dir, u.GetKind(), u.GetName(), err)
		}
	}
	deps, err := deploy.Deployments(out)
	if err != nil {
		t.Fatal(err)
	}
	cms, err := deploy.ConfigMaps(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps {
		if d.Labels["app.kubernetes.io/name"] != "meshguard" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			stages := ""
			for _, a := range c.Args {
				if s, ok := strings.CutPrefix(a, "--stages="); ok {
					stages = s
				}
			}
			if !slices.Contains(strings.Split(stages, ","), "respond") {
				continue
			}
			backend := "istio"
			for _, cm := range cms {
				var cfg struct {
					Respond struct {
						Backend string `json:"backend"`
					} `json:"respond"`
				}
				if err := sigsyaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err == nil && cfg.Respond.Backend != "" {
					backend = cfg.Respond.Backend
				}
			}
			for _, e := range c.Env {
				if e.Name == "MESHGUARD_RESPOND_BACKEND" {
					backend = e.Value
				}
			}
			r.backend = backend
		}
	}
	return r
}

// writes reports whether role may create, patch or delete resource.
func writes(role rbacv1.ClusterRole, group, resource string) bool {
	for _, rule := range role.Rules {
		if !slices.Contains(rule.APIGroups, group) && !slices.Contains(rule.APIGroups, "*") {
			continue
		}
		if !slices.Contains(rule.Resources, resource) && !slices.Contains(rule.Resources, "*") {
			continue
		}
		for _, v := range rule.Verbs {
			if v == "create" || v == "patch" || v == "update" || v == "delete" || v == "*" {
				return true
			}
		}
	}
	return false
}

// confined reports whether an admission policy, bound with Deny, covers
// create, update and delete of resource by meshguard's service account
// and fails closed.
func (r rendered) confined(group, resource string) bool {
	for _, p := range r.policies {
		covers := false
		for _, rule := range p.Spec.MatchConstraints.ResourceRules {
			ops := map[admissionv1.OperationType]bool{}
			for _, op := range rule.Operations {
				ops[op] = true
			}
			if slices.Contains(rule.APIGroups, group) && slices.Contains(rule.Resources, resource) &&
				(ops["*"] || ops[admissionv1.Create] && ops[admissionv1.Update] && ops[admissionv1.Delete]) {
				covers = true
			}
		}
		matchesSA := false
		for _, c := range p.Spec.MatchConditions {
			matchesSA = matchesSA || strings.Contains(c.Expression, "'"+meshguardUser+"'")
		}
		failClosed := p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy == admissionv1.Fail
		if !covers || !matchesSA || !failClosed || len(p.Spec.Validations) == 0 {
			continue
		}
		for _, b := range r.bindings {
			if b.Spec.PolicyName == p.Name && slices.Contains(b.Spec.ValidationActions, admissionv1.Deny) {
				return true
			}
		}
	}
	return false
}

// TestDeployLeastPrivilege: in every kustomization that runs respond,
// meshguard's role writes the policies of its backend and no other
// kind, and each kind it writes is confined by a bound admission policy
// (only its own, deny-only policies). The behaviour of those admission
// policies against the API server is respond's
// TestKubeAdmissionPolicyConfinesServiceAccount and
// TestKubeNetworkPolicyOverlayConfinesServiceAccount.
func TestDeployLeastPrivilege(t *testing.T) {
	kinds := map[string][2]string{
		"istio":         {"security.istio.io", "authorizationpolicies"},
		"networkpolicy": {"networking.k8s.io", "networkpolicies"},
	}
	seen := map[string]bool{}
	for _, dir := range []string{"deploy/kubernetes", "deploy/overlays/dev", "deploy/overlays/production", "deploy/overlays/networkpolicy"} {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			var role *rbacv1.ClusterRole
			for i := range r.roles {
				if r.roles[i].Name == "meshguard-respond" {
					role = &r.roles[i]
				}
			}
			if role == nil || r.backend == "" {
				t.Fatalf("no ClusterRole meshguard-respond (%v) or no Deployment running respond (backend %q)", role != nil, r.backend)
			}
			seen[r.backend] = true
			for backend, gr := range kinds {
				w := writes(*role, gr[0], gr[1])
				switch {
				case backend == r.backend && !w:
					t.Errorf("respond.backend %s, and meshguard-respond cannot write %s", r.backend, gr[1])
				case backend != r.backend && w:
					t.Errorf("respond.backend %s, and meshguard-respond can write %s, which it never writes", r.backend, gr[1])
				case w && !r.confined(gr[0], gr[1]):
					t.Errorf("meshguard-respond writes %s with no bound, fail-closed ValidatingAdmissionPolicy confining %s", gr[1], meshguardUser)
				}
			}
		})
	}
	for backend := range kinds {
		if !seen[backend] {
			t.Errorf("no kustomization runs respond.backend %s", backend)
		}
	}
}
