package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The resolver runs only with identity.enabled and a cluster named; a
// stray KUBECONFIG is not one.
func TestIdentityOnlyWithANamedCluster(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	cfg := DefaultConfig()
	if r := identityFor(cfg, log); r != nil {
		t.Error("resolver on without kubernetes.kubeconfig, outside a pod")
	}
	cfg.Kubernetes.Kubeconfig = kubeconfig
	if r := identityFor(cfg, log); r == nil {
		t.Error("resolver off with kubernetes.kubeconfig set")
	}
	cfg.Identity.Enabled = false
	if r := identityFor(cfg, log); r != nil {
		t.Error("resolver on with identity.enabled false")
	}
}

func TestIdentityConfigErrorsNameTheKey(t *testing.T) {
	_, err := LoadConfig("", []string{"MESHGUARD_IDENTITY_TRUST_DOMAIN=spiffe://Cluster/x", "MESHGUARD_IDENTITY_REMEMBER=0s"})
	if err == nil || !strings.Contains(err.Error(), "identity.trust_domain") || !strings.Contains(err.Error(), "identity.remember") {
		t.Fatalf("bad identity section: %v", err)
	}
	cfg, err := LoadConfig("", []string{"MESHGUARD_IDENTITY_TRUST_DOMAIN=prod.example.org", "MESHGUARD_IDENTITY_REMEMBER=1h"})
	if err != nil || cfg.Identity.TrustDomain != "prod.example.org" || cfg.Identity.Remember != time.Hour {
		t.Fatalf("identity from the environment: %+v %v", cfg.Identity, err)
	}
}
