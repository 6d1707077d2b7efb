package respond

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/test/testenv"
)

// shippedUser is the username deploy/'s admission policies restrict:
// meshguard's service account.
const shippedUser = "system:serviceaccount:meshguard:meshguard"

// confinedServiceAccount renders the kustomization dir (relative to the
// repository) and gives a new service account of its own what the
// rendered meshguard-respond ClusterRole grants, under the rendered
// admission policies, rewritten to name that account instead of
// meshguard/meshguard and renamed: both are cluster-wide, and other
// tests act as meshguard/meshguard on the same apiserver at the same
// time. It returns the account's client config once every policy is
// bound.
func confinedServiceAccount(t *testing.T, e *kubeEnv, dir string) *rest.Config {
	t.Helper()
	out, err := exec.Command(testenv.Kubectl(t), "kustomize", filepath.Join(testenv.RepoRoot(t), dir)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var role *rbacv1.ClusterRole
	var vaps []*admissionv1.ValidatingAdmissionPolicy
	var bindings []*admissionv1.ValidatingAdmissionPolicyBinding
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var raw unstructured.Unstructured
		if err := dec.Decode(&raw.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		switch {
		case raw.GetKind() == "ClusterRole" && raw.GetName() == "meshguard-respond":
			role = &rbacv1.ClusterRole{}
			err = fromUnstructured(raw, role)
		case raw.GetKind() == "ValidatingAdmissionPolicy":
			v := &admissionv1.ValidatingAdmissionPolicy{}
			vaps, err = append(vaps, v), fromUnstructured(raw, v)
		case raw.GetKind() == "ValidatingAdmissionPolicyBinding":
			b := &admissionv1.ValidatingAdmissionPolicyBinding{}
			bindings, err = append(bindings, b), fromUnstructured(raw, b)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if role == nil || len(vaps) == 0 || len(vaps) != len(bindings) {
		t.Fatalf("%s renders ClusterRole meshguard-respond %v, %d admission policies and %d bindings; want the role and a binding per policy",
			dir, role != nil, len(vaps), len(bindings))
	}

	ctx := context.Background()
	sa := "mg-vap-" + randSuffix()
	if _, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshguard"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().ServiceAccounts("meshguard").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: role.Rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: sa},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: "meshguard"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), sa, metav1.DeleteOptions{})
		_ = e.cs.RbacV1().ClusterRoles().Delete(context.Background(), sa, metav1.DeleteOptions{})
		_ = e.cs.CoreV1().ServiceAccounts("meshguard").Delete(context.Background(), sa, metav1.DeleteOptions{})
	})

	user := "system:serviceaccount:meshguard:" + sa
	adm := e.cs.AdmissionregistrationV1()
	renamed := map[string]string{}
	for _, vap := range vaps {
		replaced := false
		for i, c := range vap.Spec.MatchConditions {
			if strings.Contains(c.Expression, "'"+shippedUser+"'") {
				vap.Spec.MatchConditions[i].Expression = strings.ReplaceAll(c.Expression, "'"+shippedUser+"'", "'"+user+"'")
				replaced = true
			}
		}
		if !replaced {
			t.Fatalf("%s: admission policy %s has no matchCondition naming %s", dir, vap.Name, shippedUser)
		}
		renamed[vap.Name] = vap.Name + "-" + sa
		vap.Name = renamed[vap.Name]
		if _, err := adm.ValidatingAdmissionPolicies().Create(ctx, vap, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		name := vap.Name
		t.Cleanup(func() {
			_ = adm.ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
	for _, b := range bindings {
		policy, ok := renamed[b.Spec.PolicyName]
		if !ok {
			t.Fatalf("%s: binding %s names policy %s, which is not there", dir, b.Name, b.Spec.PolicyName)
		}
		b.Name, b.Spec.PolicyName = b.Name+"-"+sa, policy
		if _, err := adm.ValidatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		name := b.Name
		t.Cleanup(func() {
			_ = adm.ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
	return serviceAccountConfig(t, e.cfg, "meshguard", sa)
}

// awaitAdmission waits until the API server refuses probe (a dry run:
// nothing is stored either way) with a message containing want. The
// API server loads new admission policies asynchronously, and the
// assertions after this must not race the load.
func awaitAdmission(t *testing.T, probe func() error, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := probe()
		if err != nil && strings.Contains(err.Error(), want) {
			return
		}
		if err != nil && !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			t.Fatalf("dry-run probe: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admission policy never took effect (last: %v); is the ValidatingAdmissionPolicy admission plugin on?", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// refused fails t unless err is the API server's refusal saying want.
func refused(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: allowed", what)
		return
	}
	if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v; want a refusal saying %q", what, err, want)
	}
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
	ctx := context.Background()
	saCfg := confinedServiceAccount(t, e, "deploy/kubernetes")
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
	canary := authzPolicy(e.app, "canary", "ALLOW", ours)
	awaitAdmission(t, func() error { return apply(canary, true) }, "action DENY")

	// What respond does passes: apply, list, revoke (delete).
	h := e.responder(t, e.config(models.ModeEnforce), nil, saCfg)
	if err := h.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityHigh, e.principal("web"), e.app, "payments")); err != nil {
		t.Fatalf("under the admission policy: %v", err)
	}
	a := h.sink.last()
	if a.State != models.StateApplied {
		t.Fatalf("the responder's DENY: %+v", a)
	}
	if n := e.count(t); n != 1 {
		t.Fatalf("%d policies after apply; want 1", n)
	}
	if _, err := h.r.Revoke(ctx, a.ID, "carol"); err != nil {
		t.Fatalf("revoke under the admission policy: %v", err)
	}
	if n := e.count(t); n != 0 {
		t.Errorf("%d policies after revoke; want 0", n)
	}

	if err := apply(authzPolicy(e.app, "mg-deny", "DENY", ours), false); err != nil {
		t.Errorf("a meshguard-labelled DENY: %v", err)
	}
	refused(t, "a meshguard-labelled ALLOW", apply(authzPolicy(e.app, "mg-allow", "ALLOW", ours), false), "action DENY")
	refused(t, "a meshguard-labelled policy without action (ALLOW)", apply(authzPolicy(e.app, "mg-noaction", "", ours), false), "no action (ALLOW)")
	refused(t, "a meshguard-labelled CUSTOM", apply(authzPolicy(e.app, "mg-custom", "CUSTOM", ours), false), "action DENY")
	refused(t, "an unlabelled DENY", apply(authzPolicy(e.app, "team-deny", "DENY", nil), false), "labelled app.kubernetes.io/managed-by: meshguard")
	refused(t, "a DENY labelled managed-by someone else", apply(authzPolicy(e.app, "helm-deny", "DENY", map[string]string{LabelManagedBy: "Helm"}), false), "labelled app.kubernetes.io/managed-by: meshguard")
	// Turning its own DENY into an ALLOW.
	refused(t, "patching its DENY to ALLOW", func() error {
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
	refused(t, "adopting a non-meshguard policy by patch", err, "it wrote")
	refused(t, "adopting a non-meshguard policy by server-side apply", apply(authzPolicy(e.app, "team-allow", "DENY", ours), false), "it wrote")
	_, err = aps.Patch(ctx, "team-allow", types.MergePatchType, []byte(`{"spec":{"rules":[{}]}}`), metav1.PatchOptions{})
	refused(t, "patching a non-meshguard policy", err, "labelled app.kubernetes.io/managed-by: meshguard")
	refused(t, "deleting a non-meshguard policy", aps.Delete(ctx, "team-allow", metav1.DeleteOptions{}), "it wrote")
	got := e.get(t, e.app, "team-allow")
	if str(got, "spec", "action") != "ALLOW" || got.GetLabels()[LabelManagedBy] != "" {
		t.Errorf("the other policy changed: %v", got.Object)
	}

	// Its own policy it may delete.
	if err := aps.Delete(ctx, "mg-deny", metav1.DeleteOptions{}); err != nil {
		t.Errorf("deleting its own DENY: %v", err)
	}
}

// isolation is a NetworkPolicy selecting app=name for Ingress and
// Egress; allow adds an ingress rule (which opens traffic).
func isolation(ns, name string, labels map[string]string, allow bool) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	if allow {
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
	}
	return np
}

// TestKubeNetworkPolicyOverlayConfinesServiceAccount: the base grants
// no NetworkPolicy writes; deploy/overlays/networkpolicy grants them
// (and no AuthorizationPolicy writes), confined to isolating policies
// labelled as meshguard's. The responder quarantines and expires under
// it; an opening rule, an unlabelled policy, or someone else's policy
// (meshguard's own NetworkPolicy included) are refused.
func TestKubeNetworkPolicyOverlayConfinesServiceAccount(t *testing.T) {
	e := newKubeEnv(t)
	ctx := context.Background()
	ours := map[string]string{LabelManagedBy: ManagedBy, LabelInstance: e.instance}

	base := kubernetes.NewForConfigOrDie(confinedServiceAccount(t, e, "deploy/kubernetes"))
	_, err := base.NetworkingV1().NetworkPolicies(e.app).Create(ctx, isolation(e.app, "cart", ours, false), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "cannot create resource") {
		t.Errorf("the base role writing a NetworkPolicy: %v; want RBAC's refusal", err)
	}

	saCfg := confinedServiceAccount(t, e, "deploy/overlays/networkpolicy")
	cs := kubernetes.NewForConfigOrDie(saCfg)
	nps := cs.NetworkingV1().NetworkPolicies(e.app)
	awaitAdmission(t, func() error {
		_, err := nps.Create(ctx, isolation(e.app, "canary", ours, true), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}, "isolating NetworkPolicies")
	_, err = dynamic.NewForConfigOrDie(saCfg).Resource(authorizationPolicies).Namespace(e.app).
		Create(ctx, authzPolicy(e.app, "mg-deny", "DENY", ours), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "cannot create resource") {
		t.Errorf("the networkpolicy overlay writing an AuthorizationPolicy: %v; want RBAC's refusal", err)
	}

	cfg := e.config(models.ModeEnforce)
	cfg.Backend = BackendNetworkPolicy
	h := e.responder(t, cfg, nil, saCfg)
	if err := h.r.HandleDetection(ctx, detection(models.LateralMovement, models.SeverityCritical, e.principal("cart"), e.app, "payments")); err != nil {
		t.Fatalf("under the overlay's admission policy: %v", err)
	}
	a := h.sink.last()
	if a.State != models.StateApplied {
		t.Fatalf("the responder's quarantine: %+v", a)
	}
	h.clock.add(2 * time.Hour)
	if err := h.r.Reconcile(ctx); err != nil {
		t.Fatalf("expiry under the overlay's admission policy: %v", err)
	}
	if _, err := e.cs.NetworkingV1().NetworkPolicies(e.app).Get(ctx, a.PolicyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the quarantine after expiry: %v; want it deleted", err)
	}

	create := func(np *networkingv1.NetworkPolicy) error {
		_, err := nps.Create(ctx, np, metav1.CreateOptions{})
		return err
	}
	refused(t, "a meshguard-labelled policy with an ingress rule", create(isolation(e.app, "web", ours, true)), "isolating NetworkPolicies")
	whole := isolation(e.app, "api", ours, false)
	whole.Spec.PodSelector = metav1.LabelSelector{}
	refused(t, "a meshguard-labelled policy selecting the whole namespace", create(whole), "isolating NetworkPolicies")
	refused(t, "an unlabelled isolation", create(isolation(e.app, "db", nil, false)), "labelled app.kubernetes.io/managed-by: meshguard")

	// Someone else's: meshguard's own NetworkPolicy (written by whoever
	// installs meshguard) stands for every policy not meshguard's.
	theirs := isolation(e.app, "payments", map[string]string{"app.kubernetes.io/name": "meshguard"}, true)
	if _, err := e.cs.NetworkingV1().NetworkPolicies(e.app).Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cs.NetworkingV1().NetworkPolicies(e.app).Delete(context.Background(), "payments", metav1.DeleteOptions{})
	})
	adopt := `{"metadata":{"labels":{"app.kubernetes.io/managed-by":"meshguard"}},"spec":{"ingress":null}}`
	_, err = nps.Patch(ctx, "payments", types.MergePatchType, []byte(adopt), metav1.PatchOptions{})
	refused(t, "adopting a non-meshguard NetworkPolicy", err, "it wrote")
	refused(t, "deleting a non-meshguard NetworkPolicy", nps.Delete(ctx, "payments", metav1.DeleteOptions{}), "it wrote")
	if got, err := e.cs.NetworkingV1().NetworkPolicies(e.app).Get(ctx, "payments", metav1.GetOptions{}); err != nil || len(got.Spec.Ingress) != 1 || got.Labels[LabelManagedBy] != "" {
		t.Errorf("the other policy changed: %+v %v", got, err)
	}
}
