package respond

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshguard/meshguard/models"
)

// Telemetry is untrusted: a record may claim any principal, workload or
// IP. Before a policy names an identity, respond guards every identity
// the detection claims (protected places are never touched) and checks
// them against what the cluster says. A claim that the cluster does not
// confirm, or two claims that disagree, never get an enforced policy nor
// spend the budget: at most a dry-run, with the reason.

var serviceAccountsGVR = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}

// vetting is what respond learned about a detection's parties.
type vetting struct {
	// protected: the action may not touch a party (nothing is written).
	protected string
	// unverified: some claim is not confirmed by the cluster, or claims
	// disagree; the action is at most a dry-run and spends no budget.
	unverified []string
	// podIPs are the source workload's pod IPs, when they were asked for
	// and every pod may be denied; podIPsWhy says why there are none.
	podIPs    []string
	podIPsWhy string
}

// maxPodIPs bounds the addresses one policy names for a workload.
const maxPodIPs = 32

// needsPodIPs says whether a policy against d's source must name the
// source workload's pod IPs: it has no other name a policy can match (a
// plaintext caller has no principal, and detect names a workload, not
// its address), or the detection is plaintext, which a principal rule
// never matches.
func needsPodIPs(d models.Detection, src source) bool {
	if src.Workload == "" {
		return false
	}
	if src.Principal == "" && src.IPBlock == "" {
		return true
	}
	if d.Kind != models.MTLSDowngrade {
		return false
	}
	for _, f := range d.Evidence.Features {
		if f.Feature == models.FeatPlaintext.String() {
			return true
		}
	}
	return false
}

// saNamespaceFile is where a pod learns its own namespace.
const saNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// ownNamespaces are the namespaces meshguard itself runs in: never a
// target, whatever respond.protected_namespaces says.
func ownNamespaces(cfg Config) []string {
	out := []string{cfg.RootNamespace}
	if cfg.LeaderElection.Namespace != "" {
		out = append(out, cfg.LeaderElection.Namespace)
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		out = append(out, ns)
	}
	if b, err := os.ReadFile(saNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			out = append(out, ns)
		}
	}
	return out
}

func (r *Responder) nsProtected(ns string) bool {
	if ns == "" {
		return false
	}
	for _, p := range r.ownNS {
		if p == ns {
			return true
		}
	}
	for _, p := range r.cfg.ProtectedNamespaces {
		if p == ns {
			return true
		}
	}
	return false
}

// wlProtected returns the first of names that respond.protected_workloads
// names (a workload, or its "-service-account").
func (r *Responder) wlProtected(names ...string) string {
	for _, n := range names {
		if n == "" {
			continue
		}
		for _, p := range r.cfg.ProtectedWorkloads {
			if n == p || n == p+"-service-account" {
				return n
			}
		}
	}
	return ""
}

// ipProtected returns the respond.protected_cidrs range holding the
// address of block, or "".
func (r *Responder) ipProtected(block string) string {
	pfx, err := netip.ParsePrefix(block)
	if err != nil {
		return ""
	}
	for _, c := range r.cidrs {
		if c.Contains(pfx.Addr()) {
			return c.String()
		}
	}
	return ""
}

// protected returns why the action may not touch one of the identities
// the detection claims, or "": the principal's namespace and service
// account, the workload and its namespace, the IP's range, and for edges
// the destination.
func (r *Responder) protected(kind models.ActionKind, src source, dstNS, dstWL string) string {
	const list = "respond.protected_namespaces"
	switch {
	case r.nsProtected(src.PrincipalNS):
		return fmt.Sprintf("protected: the source principal's namespace %s is in %s (or meshguard's own)", src.PrincipalNS, list)
	case r.nsProtected(src.Namespace):
		return fmt.Sprintf("protected: the source workload's namespace %s is in %s (or meshguard's own)", src.Namespace, list)
	}
	if w := r.wlProtected(src.Workload, src.SA); w != "" {
		return fmt.Sprintf("protected: source %s is in respond.protected_workloads", w)
	}
	// The IP is what the policy names only without a principal.
	if c := r.ipProtected(src.IPBlock); c != "" && src.Principal == "" {
		return fmt.Sprintf("protected: source ip %s is in respond.protected_cidrs %s", src.IPBlock, c)
	}
	if kind == models.ActionQuarantine {
		return ""
	}
	if r.nsProtected(dstNS) {
		return fmt.Sprintf("protected: destination namespace %s is in %s (or meshguard's own)", dstNS, list)
	}
	if w := r.wlProtected(dstWL); w != "" {
		return fmt.Sprintf("protected: destination %s is in respond.protected_workloads", w)
	}
	return ""
}

// vet guards and checks the source's identities. A PermissionError is
// returned as such (the fix is RBAC); other lookup failures make the
// claim unverified, never trusted.
func (r *Responder) vet(ctx context.Context, kind models.ActionKind, src source, dstNS, dstWL string, wantIPs bool) (vetting, error) {
	var v vetting
	if v.protected = r.protected(kind, src, dstNS, dstWL); v.protected != "" {
		return v, nil
	}
	if src.PrincipalNS != "" && src.Namespace != "" && src.PrincipalNS != src.Namespace {
		v.unverified = append(v.unverified, fmt.Sprintf("identity conflict: the principal is in namespace %s but the workload %s/%s is not",
			src.PrincipalNS, src.Namespace, src.Workload))
	}
	if r.kube == nil {
		v.unverified = append(v.unverified, "identities not checked: no Kubernetes client (kubernetes.kubeconfig)")
		return v, nil
	}
	var perm *PermissionError
	if src.Principal != "" {
		_, err := r.kube.CoreV1().ServiceAccounts(src.PrincipalNS).Get(ctx, src.SA, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			v.unverified = append(v.unverified, fmt.Sprintf("no service account %s/%s behind the source principal", src.PrincipalNS, src.SA))
		case err != nil:
			if err := kubeErr(err, "get", serviceAccountsGVR, src.PrincipalNS); errors.As(err, &perm) {
				return v, err
			}
			v.unverified = append(v.unverified, "the source principal could not be checked: "+err.Error())
		}
	}
	if src.Workload != "" {
		sel, err := r.resolve(ctx, src.Namespace, src.Workload)
		switch {
		case errors.As(err, &perm):
			return v, err
		case err != nil:
			v.unverified = append(v.unverified, "the source workload is not in the cluster: "+err.Error())
		case src.Principal != "" && src.PrincipalNS == src.Namespace:
			why, err := r.workloadRunsAs(ctx, src, sel)
			switch {
			case errors.As(err, &perm):
				return v, err
			case err != nil:
				why = "the source workload's service account could not be checked: " + err.Error()
			}
			if why != "" {
				v.unverified = append(v.unverified, why)
			}
		}
		switch {
		case wantIPs && err != nil:
			v.podIPsWhy = fmt.Sprintf(" (no pod IPs of %s/%s to deny: it is not in the cluster)", src.Namespace, src.Workload)
		case wantIPs:
			if err := r.vetPodIPs(ctx, &v, src, sel); err != nil || v.protected != "" {
				return v, err
			}
		}
	}
	if src.IPBlock != "" && src.Principal == "" {
		// The policy names the IP: it must be a pod's, and that pod's
		// identities are guarded like claimed ones.
		why, err := r.vetIP(ctx, src)
		if err != nil {
			return v, err
		}
		if strings.HasPrefix(why, "protected") {
			v.protected = why
			return v, nil
		}
		if why != "" {
			v.unverified = append(v.unverified, why)
		}
	}
	return v, nil
}

// vetIP finds the pod that holds src's IP. It returns "" when one
// unprotected pod does and agrees with what else the record claims, a
// reason starting "protected" when the pod may not be touched, and
// another reason when the IP is no pod's.
func (r *Responder) vetIP(ctx context.Context, src source) (string, error) {
	ip, _, _ := strings.Cut(src.IPBlock, "/")
	pods, err := r.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("status.podIP", ip).String(), Limit: 10})
	if err != nil {
		err = kubeErr(err, "list", podsGVR, "")
		var perm *PermissionError
		if errors.As(err, &perm) {
			return "", err
		}
		return "the source ip could not be looked up: " + err.Error(), nil
	}
	var live int
	for _, p := range pods.Items {
		if p.Status.Phase == "Succeeded" || p.Status.Phase == "Failed" {
			continue
		}
		live++
		if why := r.podProtected(&p, ip); why != "" {
			return why, nil
		}
		if src.Namespace != "" && src.Namespace != p.Namespace {
			return fmt.Sprintf("identity conflict: source ip %s is pod %s/%s, not in the claimed namespace %s", ip, p.Namespace, p.Name, src.Namespace), nil
		}
	}
	if live == 0 {
		return fmt.Sprintf("source ip %s is no running pod's", ip), nil
	}
	return "", nil
}

// podProtected returns why a policy may not deny ip, pod p's address, or
// "".
func (r *Responder) podProtected(p *corev1.Pod, ip string) string {
	// A host-network pod has its node's address: denying it denies the
	// node.
	if p.Spec.HostNetwork {
		return fmt.Sprintf("protected: source ip %s is node %s's (host-network pod %s/%s)", ip, p.Spec.NodeName, p.Namespace, p.Name)
	}
	if r.nsProtected(p.Namespace) {
		return fmt.Sprintf("protected: source ip %s is pod %s/%s, in protected namespace %s", ip, p.Namespace, p.Name, p.Namespace)
	}
	names := []string{p.Spec.ServiceAccountName}
	for _, k := range []string{"app", "app.kubernetes.io/name", "service.istio.io/canonical-name"} {
		names = append(names, p.Labels[k])
	}
	if w := r.wlProtected(names...); w != "" {
		return fmt.Sprintf("protected: source ip %s is pod %s/%s of %s, in respond.protected_workloads", ip, p.Namespace, p.Name, w)
	}
	if a, err := netip.ParseAddr(ip); err == nil {
		if c := r.ipProtected(netip.PrefixFrom(a, a.BitLen()).String()); c != "" {
			return fmt.Sprintf("protected: source ip %s (pod %s/%s) is in respond.protected_cidrs %s", ip, p.Namespace, p.Name, c)
		}
	}
	return ""
}

// vetPodIPs fills v.podIPs with the IPs of the live pods the source
// workload's selector selects, as the cluster reports them: the caller's
// name in a policy when it has no principal. A pod that may not be
// denied makes the action protected; no such pod, or too many, leaves
// the reason in v.podIPsWhy.
func (r *Responder) vetPodIPs(ctx context.Context, v *vetting, src source, sel map[string]string) error {
	pods, err := r.kube.CoreV1().Pods(src.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(sel).String(), Limit: maxPodIPs + 1})
	if err != nil {
		err = kubeErr(err, "list", podsGVR, src.Namespace)
		var perm *PermissionError
		if errors.As(err, &perm) {
			return err
		}
		v.podIPsWhy = fmt.Sprintf(" (the pods of %s/%s could not be listed: %v)", src.Namespace, src.Workload, err)
		return nil
	}
	if len(pods.Items) > maxPodIPs {
		v.podIPsWhy = fmt.Sprintf(" (%s/%s has more than %d pods: too many addresses for one policy)", src.Namespace, src.Workload, maxPodIPs)
		return nil
	}
	var ips []string
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, pip := range podIPs(p) {
			a, err := netip.ParseAddr(pip)
			if err != nil || a.IsUnspecified() {
				continue
			}
			a = a.Unmap()
			if why := r.podProtected(p, a.String()); why != "" {
				v.protected = why
				return nil
			}
			if b := netip.PrefixFrom(a, a.BitLen()).String(); !slices.Contains(ips, b) {
				ips = append(ips, b)
			}
		}
	}
	if len(ips) == 0 {
		v.podIPsWhy = fmt.Sprintf(" (a plaintext caller has no principal, and %s/%s has no running pod with an IP to deny)", src.Namespace, src.Workload)
	}
	v.podIPs = ips
	return nil
}

// podIPs are p's addresses, dual-stack included.
func podIPs(p *corev1.Pod) []string {
	var out []string
	for _, pi := range p.Status.PodIPs {
		out = append(out, pi.IP)
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		out = append(out, p.Status.PodIP)
	}
	return out
}

// workloadRunsAs checks that the claimed workload runs as the claimed
// principal's service account: a record pairing one workload with
// another's certificate identity would otherwise deny that other.
func (r *Responder) workloadRunsAs(ctx context.Context, src source, sel map[string]string) (string, error) {
	var sa string
	d, err := r.kube.AppsV1().Deployments(src.Namespace).Get(ctx, src.Workload, metav1.GetOptions{})
	switch {
	case err == nil:
		sa = d.Spec.Template.Spec.ServiceAccountName
	case !apierrors.IsNotFound(err):
		return "", kubeErr(err, "get", deploymentsGVR, src.Namespace)
	default:
		pods, err := r.kube.CoreV1().Pods(src.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: labels.SelectorFromSet(sel).String(), Limit: 1})
		if err != nil {
			return "", kubeErr(err, "list", podsGVR, src.Namespace)
		}
		if len(pods.Items) == 0 {
			return "", nil
		}
		sa = pods.Items[0].Spec.ServiceAccountName
	}
	if sa == "" {
		sa = "default"
	}
	if sa != src.SA {
		return fmt.Sprintf("identity conflict: workload %s/%s runs as service account %s, not the principal's %s", src.Namespace, src.Workload, sa, src.SA), nil
	}
	return "", nil
}
