// Package deploy checks what deploy/ and the Dockerfile promise without a
// cluster: the container runs as a non-root user on a read-only root
// filesystem with no capabilities, the image is a static binary on a
// minimal base. test/e2e renders the kustomize overlays and applies the
// same checks to what they produce.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// HardenedUID is the user every meshguard container runs as: distroless'
// nonroot.
const HardenedUID = 65532

// Deployments decodes the Deployments in a multi-document YAML stream
// and ignores every other kind.
func Deployments(data []byte) ([]appsv1.Deployment, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []appsv1.Deployment
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if raw["kind"] != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := retype(raw, &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
}

// ConfigMaps decodes the ConfigMaps in a multi-document YAML stream.
func ConfigMaps(data []byte) ([]corev1.ConfigMap, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []corev1.ConfigMap
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if raw["kind"] != "ConfigMap" {
			continue
		}
		var cm corev1.ConfigMap
		if err := retype(raw, &cm); err != nil {
			return nil, err
		}
		out = append(out, cm)
	}
}

// Hardening lists every way d falls short of issue 8's hardened pod:
// non-root (65532), read-only root filesystem, no privilege escalation,
// every capability dropped, seccomp RuntimeDefault, requests and limits,
// a writable /tmp, no service links (they would inject MESHGUARD_*
// variables meshguard rejects), probes on /healthz and /readyz and the
// POD_NAME the Lease is held under. Empty means hardened.
func Hardening(d appsv1.Deployment) []string {
	var bad []string
	add := func(format string, args ...any) {
		bad = append(bad, d.Name+": "+fmt.Sprintf(format, args...))
	}
	spec := d.Spec.Template.Spec
	psc := spec.SecurityContext
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		add("enableServiceLinks must be false: a Service named meshguard injects MESHGUARD_* variables that are not config keys")
	}
	if len(spec.Containers) == 0 {
		add("no containers")
	}
	tmpVolumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.EmptyDir != nil {
			tmpVolumes[v.Name] = true
		}
	}
	for _, c := range spec.Containers {
		where := "container " + c.Name
		sc := c.SecurityContext
		if sc == nil {
			add("%s: no securityContext", where)
			continue
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil && psc != nil {
			nonRoot = psc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			add("%s: runAsNonRoot must be true", where)
		}
		uid := sc.RunAsUser
		if uid == nil && psc != nil {
			uid = psc.RunAsUser
		}
		if uid == nil || *uid != HardenedUID {
			add("%s: runAsUser must be %d", where, HardenedUID)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			add("%s: readOnlyRootFilesystem must be true", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add("%s: allowPrivilegeEscalation must be false", where)
		}
		if sc.Privileged != nil && *sc.Privileged {
			add("%s: privileged", where)
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Add) > 0 || !hasAll(sc.Capabilities.Drop) {
			add("%s: capabilities must drop ALL and add none", where)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil && psc != nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			add("%s: seccompProfile must be RuntimeDefault", where)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				add("%s: no %s request", where, r)
			}
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			add("%s: no memory limit", where)
		}
		tmp := false
		for _, m := range c.VolumeMounts {
			if m.MountPath == "/tmp" && tmpVolumes[m.Name] {
				tmp = true
			}
		}
		if !tmp {
			add("%s: /tmp must be an emptyDir (the root filesystem is read-only)", where)
		}
		if !probes(c.LivenessProbe, "/healthz") {
			add("%s: livenessProbe must GET /healthz on 8080", where)
		}
		if !probes(c.ReadinessProbe, "/readyz") {
			add("%s: readinessProbe must GET /readyz on 8080", where)
		}
		podName := false
		for _, e := range c.Env {
			if e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
				podName = true
			}
		}
		if !podName {
			add("%s: POD_NAME must come from the downward API (metadata.name): it names the Lease holder", where)
		}
	}
	return bad
}

// retype turns a decoded document into its typed object, strictly: a
// misspelt field is an error here as it is for the API server.
func retype(raw map[string]any, into any) error {
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

func hasAll(caps []corev1.Capability) bool {
	for _, c := range caps {
		if strings.EqualFold(string(c), "ALL") {
			return true
		}
	}
	return false
}

// probes reports whether p GETs path on port 8080 (by number or by the
// port named http).
func probes(p *corev1.Probe, path string) bool {
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
		return false
	}
	port := p.HTTPGet.Port
	return port.IntValue() == 8080 || port.String() == "http"
}
