package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// IdentityAttributes are the resource attributes meshguard's ingest
// reads as the reporting workload's identity (ingest/decode_logs.go).
// The collector must set them from the cluster only.
var IdentityAttributes = []string{
	"k8s.namespace.name", "k8s.pod.name", "k8s.pod.ip", "k8s.deployment.name", "k8s.statefulset.name",
	"k8s.daemonset.name", "k8s.cronjob.name", "k8s.job.name", "service.name",
}

// CollectorPort is the OTLP gRPC port, the only one the collector's
// AuthorizationPolicy may admit.
const CollectorPort = "4317"

// Provenance lists every way the collector manifest (a multi-document
// YAML stream) falls short of issue 13's provenance: the receiver in
// the mesh with STRICT mTLS, an AuthorizationPolicy admitting only mesh
// identities on the OTLP port, TPROXY interception (the caller's IP
// kept), k8sattributes associating by connection only, and every
// identity attribute a sender asserts dropped before it. Empty means
// the manifest holds.
func Provenance(data []byte) []string {
	var bad []string
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	docs, err := documents(data)
	if err != nil {
		return []string{err.Error()}
	}
	var ns, dep, cm, pa, ap *unstructured.Unstructured
	for _, d := range docs {
		switch d.GetKind() {
		case "Namespace":
			ns = d
		case "Deployment":
			dep = d
		case "ConfigMap":
			cm = d
		case "PeerAuthentication":
			pa = d
		case "AuthorizationPolicy":
			ap = d
		}
	}
	if ns == nil || dep == nil || cm == nil {
		return []string{"want the collector's Namespace, Deployment and ConfigMap in one file"}
	}
	podLabels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
	ann, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "annotations")
	selects := func(u *unstructured.Unstructured) bool {
		sel, found, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
		if !found {
			return true // namespace-wide
		}
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return true
	}

	// In the mesh, intercepting with TPROXY.
	injected := ns.GetLabels()["istio-injection"] == "enabled" || ann["sidecar.istio.io/inject"] == "true" || podLabels["sidecar.istio.io/inject"] == "true"
	if !injected || ann["sidecar.istio.io/inject"] == "false" || podLabels["sidecar.istio.io/inject"] == "false" {
		add("the collector's pods get no sidecar: label namespace %s istio-injection: enabled and do not set sidecar.istio.io/inject: \"false\"", ns.GetName())
	}
	if ann["sidecar.istio.io/interceptionMode"] != "TPROXY" {
		add("the collector's sidecar must intercept with TPROXY (sidecar.istio.io/interceptionMode): with REDIRECT every connection comes from 127.0.0.6 and k8sattributes cannot tell who sent it")
	}

	// STRICT mTLS on the collector.
	if pa == nil || pa.GetNamespace() != dep.GetNamespace() || !selects(pa) {
		add("no PeerAuthentication for the collector's pods in %s", dep.GetNamespace())
	} else {
		if mode, _, _ := unstructured.NestedString(pa.Object, "spec", "mtls", "mode"); mode != "STRICT" {
			add("PeerAuthentication %s: mtls.mode %q; want STRICT", pa.GetName(), mode)
		}
		if ports, found, _ := unstructured.NestedMap(pa.Object, "spec", "portLevelMtls"); found && len(ports) > 0 {
			add("PeerAuthentication %s: portLevelMtls relaxes some ports", pa.GetName())
		}
	}

	// ALLOW only mesh identities, only on the OTLP port.
	if ap == nil || ap.GetNamespace() != dep.GetNamespace() || !selects(ap) {
		add("no AuthorizationPolicy for the collector's pods in %s", dep.GetNamespace())
	} else {
		action, _, _ := unstructured.NestedString(ap.Object, "spec", "action")
		rules, _, _ := unstructured.NestedSlice(ap.Object, "spec", "rules")
		if action != "" && action != "ALLOW" {
			add("AuthorizationPolicy %s: action %s; want ALLOW (whatever no rule admits is denied)", ap.GetName(), action)
		}
		if len(rules) == 0 {
			add("AuthorizationPolicy %s: no rules (an ALLOW without rules denies all, and a missing spec allows all)", ap.GetName())
		}
		for i, r := range rules {
			rule, _ := r.(map[string]any)
			from, _, _ := unstructured.NestedSlice(rule, "from")
			if len(from) == 0 {
				add("AuthorizationPolicy %s rule %d: no from, so anyone is admitted", ap.GetName(), i)
			}
			for _, f := range from {
				src, _, _ := unstructured.NestedMap(f.(map[string]any), "source")
				principals, _, _ := unstructured.NestedStringSlice(src, "principals")
				namespaces, _, _ := unstructured.NestedStringSlice(src, "namespaces")
				if len(principals) == 0 && len(namespaces) == 0 {
					add("AuthorizationPolicy %s rule %d: a source without principals or namespaces admits callers with no mesh identity", ap.GetName(), i)
				}
				for k := range src {
					if k != "principals" && k != "namespaces" {
						add("AuthorizationPolicy %s rule %d: source.%s; admit by mesh identity only", ap.GetName(), i, k)
					}
				}
			}
			to, _, _ := unstructured.NestedSlice(rule, "to")
			if len(to) == 0 {
				add("AuthorizationPolicy %s rule %d: no to.operation.ports, so every port is admitted", ap.GetName(), i)
			}
			for _, t := range to {
				ports, _, _ := unstructured.NestedStringSlice(t.(map[string]any), "operation", "ports")
				if len(ports) == 0 || slices.ContainsFunc(ports, func(p string) bool { return p != CollectorPort }) {
					add("AuthorizationPolicy %s rule %d: ports %v; want only %s", ap.GetName(), i, ports, CollectorPort)
				}
			}
		}
	}

	// The pipeline: gRPC only, identities dropped, then set from the connection.
	var cfg struct {
		Receivers  map[string]map[string]any `json:"receivers"`
		Processors map[string]map[string]any `json:"processors"`
		Service    struct {
			Pipelines map[string]struct {
				Receivers  []string `json:"receivers"`
				Processors []string `json:"processors"`
			} `json:"pipelines"`
		} `json:"service"`
	}
	text, _, _ := unstructured.NestedString(cm.Object, "data", "config.yaml")
	if err := sigsyaml.Unmarshal([]byte(text), &cfg); err != nil {
		return append(bad, fmt.Sprintf("ConfigMap %s: config.yaml: %v", cm.GetName(), err))
	}
	protocols, _, _ := unstructured.NestedMap(cfg.Receivers["otlp"], "protocols")
	for p := range protocols {
		if p != "grpc" {
			add("otlp receiver: protocol %s; only grpc on %s is admitted by the AuthorizationPolicy", p, CollectorPort)
		}
	}
	if ep, _, _ := unstructured.NestedString(protocols, "grpc", "endpoint"); !strings.HasSuffix(ep, ":"+CollectorPort) {
		add("otlp receiver: grpc endpoint %q; want port %s", ep, CollectorPort)
	}
	assoc, _ := cfg.Processors["k8sattributes"]["pod_association"].([]any)
	if len(assoc) != 1 || fmt.Sprint(assoc) != "[map[sources:[map[from:connection]]]]" {
		add("k8sattributes: pod_association %v; want exactly [{sources: [{from: connection}]}] (an attribute the sender sets must not choose the pod)", assoc)
	}
	n := 0
	for name, p := range cfg.Service.Pipelines {
		if !slices.Contains(p.Receivers, "otlp") {
			continue
		}
		n++
		k8s := slices.Index(p.Processors, "k8sattributes")
		if k8s < 0 {
			add("pipeline %s: no k8sattributes", name)
			continue
		}
		dropped := map[string]bool{}
		for _, proc := range p.Processors[:k8s] {
			if proc != "resource" && !strings.HasPrefix(proc, "resource/") {
				continue
			}
			acts, _ := cfg.Processors[proc]["attributes"].([]any)
			for _, a := range acts {
				m, _ := a.(map[string]any)
				if m["action"] == "delete" {
					dropped[fmt.Sprint(m["key"])] = true
				}
			}
		}
		for _, key := range IdentityAttributes {
			if !dropped[key] {
				add("pipeline %s: %s is not deleted before k8sattributes, so a sender can assert it", name, key)
			}
		}
	}
	if n == 0 {
		add("no pipeline reads the otlp receiver")
	}
	return bad
}

func documents(data []byte) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}
