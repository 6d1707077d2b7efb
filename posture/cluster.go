package posture

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// DefaultRootNamespace is Istio's default root namespace, where
// mesh-wide policies live (meshConfig.rootNamespace).
const DefaultRootNamespace = "istio-system"

var (
	peerAuthenticationsGVR   = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"}
	authorizationPoliciesGVR = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}
)

// Mode is a PeerAuthentication mTLS mode as Istio spells it.
type Mode string

// The modes. UNSET inherits from the parent level; with nothing set
// anywhere Istio runs PERMISSIVE.
const (
	ModeUnset      Mode = "UNSET"
	ModePermissive Mode = "PERMISSIVE"
	ModeStrict     Mode = "STRICT"
	ModeDisable    Mode = "DISABLE"
)

func parseMode(s string) Mode {
	switch m := Mode(strings.ToUpper(s)); m {
	case ModePermissive, ModeStrict, ModeDisable:
		return m
	}
	return ModeUnset
}

// PeerAuthentication is the part of a security.istio.io/v1
// PeerAuthentication that decides a mode.
type PeerAuthentication struct {
	Namespace, Name string
	Created         time.Time
	// Selector is spec.selector.matchLabels; nil: the whole namespace.
	Selector map[string]string
	Mode     Mode
	// PortModes is spec.portLevelMtls, by workload port.
	PortModes map[uint16]Mode
}

// AuthorizationPolicy is the part of an AuthorizationPolicy that decides
// which workloads it applies to.
type AuthorizationPolicy struct {
	Namespace, Name string
	// Action is ALLOW, DENY, AUDIT or CUSTOM (empty in the object is ALLOW).
	Action   string
	Selector map[string]string
	// TargetRefs: the policy applies to gateways or waypoints named by
	// spec.targetRef(s), not to sidecars by selector.
	TargetRefs bool
	// DryRun: annotated istio.io/dry-run "true", evaluated but not enforced.
	DryRun bool
}

// Cluster is what posture reads from the cluster: the policies, and the
// labels of the workloads' pods (which selectors match against).
type Cluster struct {
	RootNamespace         string
	PeerAuthentications   []PeerAuthentication
	AuthorizationPolicies []AuthorizationPolicy
	// Labels are pod template labels by namespace/workload; a workload
	// missing here has unknown labels.
	Labels map[string]map[string]string
}

// LoadCluster lists PeerAuthentications and AuthorizationPolicies in
// every namespace, and the pod labels of Deployments, StatefulSets,
// DaemonSets and of pods labelled with their workload's name (app,
// app.kubernetes.io/name, service.istio.io/canonical-name), as
// respond.KubeResolver finds workloads.
func LoadCluster(ctx context.Context, dyn dynamic.Interface, cs kubernetes.Interface, rootNamespace string) (*Cluster, error) {
	if rootNamespace == "" {
		rootNamespace = DefaultRootNamespace
	}
	c := &Cluster{RootNamespace: rootNamespace, Labels: map[string]map[string]string{}}
	pas, err := dyn.Resource(peerAuthenticationsGVR).Namespace("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("posture: list peerauthentications.security.istio.io (the ClusterRole needs list on them): %w", err)
	}
	for i := range pas.Items {
		c.PeerAuthentications = append(c.PeerAuthentications, peerAuthenticationOf(&pas.Items[i]))
	}
	aps, err := dyn.Resource(authorizationPoliciesGVR).Namespace("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("posture: list authorizationpolicies.security.istio.io: %w", err)
	}
	for i := range aps.Items {
		c.AuthorizationPolicies = append(c.AuthorizationPolicies, authorizationPolicyOf(&aps.Items[i]))
	}
	if err := c.loadLabels(ctx, cs); err != nil {
		return nil, err
	}
	return c, nil
}

func peerAuthenticationOf(u *unstructured.Unstructured) PeerAuthentication {
	p := PeerAuthentication{Namespace: u.GetNamespace(), Name: u.GetName(), Created: u.GetCreationTimestamp().UTC()}
	if sel, ok, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels"); ok {
		p.Selector = sel
	}
	mode, _, _ := unstructured.NestedString(u.Object, "spec", "mtls", "mode")
	p.Mode = parseMode(mode)
	ports, _, _ := unstructured.NestedMap(u.Object, "spec", "portLevelMtls")
	for k, v := range ports {
		port, err := strconv.ParseUint(k, 10, 16)
		m, ok := v.(map[string]any)
		if err != nil || !ok {
			continue
		}
		s, _ := m["mode"].(string)
		if p.PortModes == nil {
			p.PortModes = map[uint16]Mode{}
		}
		p.PortModes[uint16(port)] = parseMode(s)
	}
	return p
}

func authorizationPolicyOf(u *unstructured.Unstructured) AuthorizationPolicy {
	p := AuthorizationPolicy{Namespace: u.GetNamespace(), Name: u.GetName(), DryRun: u.GetAnnotations()["istio.io/dry-run"] == "true"}
	p.Action, _, _ = unstructured.NestedString(u.Object, "spec", "action")
	if p.Action == "" {
		p.Action = "ALLOW"
	}
	if sel, ok, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels"); ok {
		p.Selector = sel
	}
	_, one, _ := unstructured.NestedMap(u.Object, "spec", "targetRef")
	_, many, _ := unstructured.NestedSlice(u.Object, "spec", "targetRefs")
	p.TargetRefs = one || many
	return p
}

// workloadNameLabels name a pod's workload when no controller does.
var workloadNameLabels = []string{"app", "app.kubernetes.io/name", "service.istio.io/canonical-name"}

func (c *Cluster) loadLabels(ctx context.Context, cs kubernetes.Interface) error {
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("posture: list pods: %w", err)
	}
	for _, p := range pods.Items {
		for _, k := range workloadNameLabels {
			if v := p.Labels[k]; v != "" {
				c.setLabels(p.Namespace, v, p.Labels, false)
			}
		}
	}
	// Controllers name their workloads (Istio's workload name), so they
	// win over a pod's app label.
	deps, err := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("posture: list deployments: %w", err)
	}
	for _, d := range deps.Items {
		c.setLabels(d.Namespace, d.Name, d.Spec.Template.Labels, true)
	}
	sts, err := cs.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("posture: list statefulsets: %w", err)
	}
	for _, s := range sts.Items {
		c.setLabels(s.Namespace, s.Name, s.Spec.Template.Labels, true)
	}
	dss, err := cs.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("posture: list daemonsets: %w", err)
	}
	for _, d := range dss.Items {
		c.setLabels(d.Namespace, d.Name, d.Spec.Template.Labels, true)
	}
	return nil
}

func (c *Cluster) setLabels(ns, wl string, labels map[string]string, controller bool) {
	k := ns + "/" + wl
	if _, ok := c.Labels[k]; ok && !controller {
		return
	}
	c.Labels[k] = labels
}

// labelsOf returns a workload's pod labels, and whether they are known.
func (c *Cluster) labelsOf(ns, wl string) (map[string]string, bool) {
	l, ok := c.Labels[ns+"/"+wl]
	return l, ok
}

// matches reports whether selector matches labels (every key equal).
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// oldestFirst orders PeerAuthentications as Istio breaks ties: the oldest
// wins, then the name.
func oldestFirst(ps []PeerAuthentication) {
	sort.SliceStable(ps, func(i, j int) bool {
		if !ps[i].Created.Equal(ps[j].Created) {
			return ps[i].Created.Before(ps[j].Created)
		}
		if ps[i].Namespace != ps[j].Namespace {
			return ps[i].Namespace < ps[j].Namespace
		}
		return ps[i].Name < ps[j].Name
	})
}
