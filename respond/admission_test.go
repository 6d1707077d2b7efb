package respond

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// shippedUser is the username deploy/kubernetes/admission-policy.yaml
// restricts: meshguard's service account.
const shippedUser = "system:serviceaccount:meshguard:meshguard"

// applyAdmissionPolicy installs deploy/kubernetes/admission-policy.yaml
// for the service account meshguard/sa instead of meshguard/meshguard,
// under names of its own: the policy is cluster-wide, and other tests
// act as meshguard/meshguard on the same apiserver at the same time.
func applyAdmissionPolicy(t *testing.T, e *kubeEnv, sa string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "kubernetes", "admission-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vap *admissionv1.ValidatingAdmissionPolicy
	var binding *admissionv1.ValidatingAdmissionPolicyBinding
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var raw unstructured.Unstructured
		if err := dec.Decode(&raw.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		switch raw.GetKind() {
		case "ValidatingAdmissionPolicy":
			vap = &admissionv1.ValidatingAdmissionPolicy{}
			err = fromUnstructured(raw, vap)
		case "ValidatingAdmissionPolicyBinding":
			binding = &admissionv1.ValidatingAdmissionPolicyBinding{}
			err = fromUnstructured(raw, binding)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if vap == nil || binding == nil || binding.Spec.PolicyName != vap.Name {
		t.Fatalf("admission-policy.yaml: want a ValidatingAdmissionPolicy and its binding, got %v and %v", vap, binding)
	}
	user := "system:serviceaccount:meshguard:" + sa
	replaced := false
	for i, c := range vap.Spec.MatchConditions {
		if strings.Contains(c.Expression, "'"+shippedUser+"'") {
			vap.Spec.MatchConditions[i].Expression = strings.ReplaceAll(c.Expression, "'"+shippedUser+"'", "'"+user+"'")
			replaced = true
		}
	}
	if !replaced {
		t.Fatalf("admission-policy.yaml: no matchCondition names %s", shippedUser)
	}
	vap.Name += "-" + sa
	binding.Name += "-" + sa
	binding.Spec.PolicyName = vap.Name
	ctx := context.Background()
	adm := e.cs.AdmissionregistrationV1()
	if _, err := adm.ValidatingAdmissionPolicies().Create(ctx, vap, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adm.ValidatingAdmissionPolicies().Delete(context.Background(), vap.Name, metav1.DeleteOptions{})
	})
	if _, err := adm.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = adm.ValidatingAdmissionPolicyBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
}

func fromUnstructured(u unstructured.Unstructured, into any) error {
	b, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	return yaml.Unmarshal(b, into)
}

// authzPolicy is an AuthorizationPolicy selecting app=payments; labels
// nil means unlabelled, action "" means none (Istio reads ALLOW).
func authzPolicy(ns, name, action string, labels map[string]string) *unstructured.Unstructured {
	spec := map[string]any{
		"selector": map[string]any{"matchLabels": map[string]any{"app": "payments"}},
		"rules":    []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"namespaces": []any{"shop"}}}}}},
	}
	if action != "" {
		spec["action"] = action
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": istioAPIVersion, "kind": istioKind,
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     spec,
	}}
	u.SetLabels(labels)
	return u
}

// TestKubeAdmissionPolicyConfinesServiceAccount: under the shipped
// RBAC and admission policy, meshguard's service account writes,
// revokes and lists its own DENY policies through the responder, and
// the API server refuses it everything else RBAC alone would allow: an
// ALLOW, a policy without meshguard's label, taking over or deleting
// someone else's policy.
func TestKubeAdmissionPolicyConfinesServiceAccount(t *testing.T) {
	e := newKubeEnv(t)
	applyRBAC(t, e)
	ctx := context.Background()
	sa := "mg-vap-" + randSuffix()
	if _, err := e.cs.CoreV1().ServiceAccounts("meshguard").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "meshguard-respond"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: "meshguard"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), sa, metav1.DeleteOptions{})
		_ = e.cs.CoreV1().ServiceAccounts("meshguard").Delete(context.Background(), sa, metav1.DeleteOptions{})
	})
	applyAdmissionPolicy(t, e, sa)
	saCfg := serviceAccountConfig(t, e.cfg, "meshguard", sa)
	aps := dynamic.NewForConfigOrDie(saCfg).Resource(authorizationPolicies).Namespace(e.app)
	ours := map[string]string{LabelManagedBy: ManagedBy, LabelInstance: e.instance}

	apply := func(u *unstructured.Unstructured, dryRun bool) error {
		opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		_, err := aps.Apply(ctx, u.GetName(), u, opts)
		return err
	}
	refused := func(what string, err error, want string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: allowed", what)
			return
		}
		if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want a refusal saying %q", what, err, want)
		}
	}

	// The API server loads a new policy asynchronously: wait until it
	// refuses a dry-run ALLOW (nothing is stored either way) before the
	// assertions below, which must not race the load.
	canary := authzPolicy(e.app, "canary", "ALLOW", ours)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := apply(canary, true)
		if err != nil && strings.Contains(err.Error(), "action DENY") {
			break
		}
		if err != nil && !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			t.Fatalf("dry-run as %s: %v", sa, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admission policy never took effect (last: %v); is the ValidatingAdmissionPolicy admission plugin on?", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// What respond does passes: apply, list, revoke (delete).
	h := e.responder(t, e.config(models.ModeEnforce), nil, saCfg)
	if err := h.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments")); err != nil {
		t.Fatalf("as %s under the admission policy: %v", sa, err)
	}
	a := h.sink.last()
	if a.State != models.StateApplied {
		t.Fatalf("the responder's DENY: %+v", a)
	}
	if n := e.count(t); n != 1 {
		t.Fatalf("%d policies after apply; want 1", n)
	}
	if _, err := h.r.Revoke(ctx, a.ID, "carol"); err != nil {
		t.Fatalf("revoke as %s: %v", sa, err)
	}
	if n := e.count(t); n != 0 {
		t.Errorf("%d policies after revoke; want 0", n)
	}

	if err := apply(authzPolicy(e.app, "mg-deny", "DENY", ours), false); err != nil {
		t.Errorf("a meshguard-labelled DENY: %v", err)
	}
	refused("a meshguard-labelled ALLOW", apply(authzPolicy(e.app, "mg-allow", "ALLOW", ours), false), "action DENY")
	refused("a meshguard-labelled policy without action (ALLOW)", apply(authzPolicy(e.app, "mg-noaction", "", ours), false), "no action (ALLOW)")
	refused("a meshguard-labelled CUSTOM", apply(authzPolicy(e.app, "mg-custom", "CUSTOM", ours), false), "action DENY")
	refused("an unlabelled DENY", apply(authzPolicy(e.app, "team-deny", "DENY", nil), false), "labelled app.kubernetes.io/managed-by: meshguard")
	refused("a DENY labelled managed-by someone else", apply(authzPolicy(e.app, "helm-deny", "DENY", map[string]string{LabelManagedBy: "Helm"}), false), "labelled app.kubernetes.io/managed-by: meshguard")
	// Turning its own DENY into an ALLOW.
	refused("patching its DENY to ALLOW", func() error {
		_, err := aps.Patch(ctx, "mg-deny", types.MergePatchType, []byte(`{"spec":{"action":"ALLOW"}}`), metav1.PatchOptions{})
		return err
	}(), "action DENY")

	// Someone else's policy, written by the admin: the service account
	// can neither adopt it (relabel as meshguard's, make it a DENY),
	// change it, nor delete it.
	theirs := authzPolicy(e.app, "team-allow", "ALLOW", map[string]string{"team": "payments"})
	if _, err := e.dyn.Resource(authorizationPolicies).Namespace(e.app).Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the admin's ALLOW (the policy must not bind anyone else): %v", err)
	}
	t.Cleanup(func() {
		_ = e.dyn.Resource(authorizationPolicies).Namespace(e.app).Delete(context.Background(), "team-allow", metav1.DeleteOptions{})
	})
	adopt := `{"metadata":{"labels":{"app.kubernetes.io/managed-by":"meshguard"}},"spec":{"action":"DENY"}}`
	_, err := aps.Patch(ctx, "team-allow", types.MergePatchType, []byte(adopt), metav1.PatchOptions{})
	refused("adopting a non-meshguard policy by patch", err, "it wrote")
	refused("adopting a non-meshguard policy by server-side apply", apply(authzPolicy(e.app, "team-allow", "DENY", ours), false), "it wrote")
	_, err = aps.Patch(ctx, "team-allow", types.MergePatchType, []byte(`{"spec":{"rules":[{}]}}`), metav1.PatchOptions{})
	refused("patching a non-meshguard policy", err, "labelled app.kubernetes.io/managed-by: meshguard")
	refused("deleting a non-meshguard policy", aps.Delete(ctx, "team-allow", metav1.DeleteOptions{}), "it wrote")
	got := e.get(t, e.app, "team-allow")
	if str(got, "spec", "action") != "ALLOW" || got.GetLabels()[LabelManagedBy] != "" {
		t.Errorf("the other policy changed: %v", got.Object)
	}

	// Its own policy it may delete.
	if err := aps.Delete(ctx, "mg-deny", metav1.DeleteOptions{}); err != nil {
		t.Errorf("deleting its own DENY: %v", err)
	}
}
