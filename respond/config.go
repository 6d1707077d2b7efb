package respond

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshguard/meshguard/models"
)

// Backend names.
const (
	BackendIstio         = "istio"
	BackendNetworkPolicy = "networkpolicy"
	BackendGitOps        = "gitops"
)

// Config is the `respond:` section.
type Config struct {
	// Mode is the global ceiling: alert (no policy is ever written),
	// dry-run (policies carry istio.io/dry-run) or enforce.
	Mode models.Mode `yaml:"mode"`
	// Backend: istio (AuthorizationPolicy), networkpolicy or gitops.
	Backend string `yaml:"backend"`
	// GitOpsDir is where the gitops backend writes its YAML.
	GitOpsDir string `yaml:"gitops_dir"`
	// RootNamespace is Istio's root namespace (MeshConfig rootNamespace):
	// a policy there applies mesh-wide. It is always protected.
	RootNamespace       string   `yaml:"root_namespace"`
	ProtectedNamespaces []string `yaml:"protected_namespaces"`
	// ProtectedWorkloads are workload (or service account) names never
	// denied, in any namespace.
	ProtectedWorkloads []string `yaml:"protected_workloads"`
	// ProtectedCIDRs are address ranges never denied by IP: the nodes'
	// and the services' ranges (a node's address is every host-network
	// pod's). An IP-only source is denied only when it is a pod's that is
	// not protected.
	ProtectedCIDRs []string `yaml:"protected_cidrs"`
	// BudgetPerHour caps new policy actions in any rolling hour; past it
	// respond alerts only. 0 means no policy action at all.
	BudgetPerHour int `yaml:"budget_per_hour"`
	// TTL is how long a policy lives after its latest detection update.
	TTL time.Duration `yaml:"ttl"`
	// MaxTTL caps how long repeated detections keep one action alive,
	// from its creation (a person's extend is not capped).
	MaxTTL time.Duration `yaml:"max_ttl"`
	// RevokeHold is how long a revoked action is not re-applied, by any
	// replica or after a restart, unless a person approves it again.
	RevokeHold time.Duration `yaml:"revoke_hold"`
	// PromoteAfter: an action whose mode is enforce starts in dry-run and
	// is promoted to enforce this long after, unless revoked. 0 enforces
	// at once.
	PromoteAfter time.Duration `yaml:"promote_after"`
	// BlastRadiusMaxRequests: before enforcing, respond counts the
	// requests of the 24 hours before the detection that the policy would
	// have denied; above this it stays in dry-run. 0 disables the check.
	BlastRadiusMaxRequests uint64 `yaml:"blast_radius_max_requests"`
	// Actions map detection kinds and severities to actions. The first
	// rule whose kind matches ("*" matches any) and whose min_severity and
	// min_score the detection reaches decides; no match means alert.
	Actions []ActionRule `yaml:"actions"`
	// Instance labels every object this meshguard writes
	// (meshguard.io/instance), so that two installations, or tests, sharing
	// one cluster never touch each other's policies.
	Instance string `yaml:"instance"`
	// ReconcileInterval is how often expiry and promotion run.
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
	// LeaderElection makes one replica act at a time.
	LeaderElection LeaderElectionConfig `yaml:"leader_election"`
}

// ActionRule is one entry of respond.actions.
type ActionRule struct {
	// Kind is a detection kind, or "*" for any.
	Kind        string            `yaml:"kind"`
	MinSeverity models.Severity   `yaml:"min_severity"`
	MinScore    float64           `yaml:"min_score"`
	Action      models.ActionKind `yaml:"action"`
	// Mode, when set, lowers the global mode for this rule (it never
	// raises it).
	Mode models.Mode `yaml:"mode,omitempty"`
}

// LeaderElectionConfig is respond.leader_election: a coordination.k8s.io
// Lease that one replica holds while it acts.
type LeaderElectionConfig struct {
	Enabled       bool          `yaml:"enabled"`
	Namespace     string        `yaml:"namespace"`
	LeaseName     string        `yaml:"lease_name"`
	LeaseDuration time.Duration `yaml:"lease_duration"`
	RenewDeadline time.Duration `yaml:"renew_deadline"`
	RetryPeriod   time.Duration `yaml:"retry_period"`
}

// DefaultActions are the rules of DefaultConfig: high and critical
// attacks are blocked (critical lateral movement and exfiltration
// quarantine the source); everything else alerts.
func DefaultActions() []ActionRule {
	return []ActionRule{
		{Kind: string(models.LateralMovement), MinSeverity: models.SeverityCritical, Action: models.ActionQuarantine},
		{Kind: string(models.LateralMovement), MinSeverity: models.SeverityHigh, Action: models.ActionBlockEdge},
		{Kind: string(models.Exfiltration), MinSeverity: models.SeverityCritical, Action: models.ActionQuarantine},
		{Kind: string(models.Exfiltration), MinSeverity: models.SeverityHigh, Action: models.ActionBlockEdge},
		// A scan has no one destination to block: isolate the scanner.
		{Kind: string(models.Scan), MinSeverity: models.SeverityHigh, Action: models.ActionQuarantine},
		{Kind: string(models.CredentialStuffing), MinSeverity: models.SeverityHigh, Action: models.ActionBlockEdge},
		{Kind: string(models.MTLSDowngrade), MinSeverity: models.SeverityHigh, Action: models.ActionBlockEdge},
	}
}

// DefaultConfig is what an empty respond section means.
func DefaultConfig() Config {
	return Config{
		Mode:                   models.ModeDryRun,
		Backend:                BackendIstio,
		RootNamespace:          "istio-system",
		ProtectedNamespaces:    []string{"istio-system", "istio-ingress", "kube-system", "kube-public", "meshguard"},
		ProtectedWorkloads:     []string{"istio-ingressgateway", "istio-egressgateway"},
		ProtectedCIDRs:         []string{"127.0.0.0/8", "169.254.0.0/16", "::1/128", "fe80::/10"},
		BudgetPerHour:          5,
		TTL:                    time.Hour,
		MaxTTL:                 24 * time.Hour,
		RevokeHold:             24 * time.Hour,
		BlastRadiusMaxRequests: 10000,
		Actions:                DefaultActions(),
		Instance:               "meshguard",
		ReconcileInterval:      10 * time.Second,
		LeaderElection: LeaderElectionConfig{
			Enabled:       true,
			Namespace:     "meshguard",
			LeaseName:     "meshguard-respond",
			LeaseDuration: 15 * time.Second,
			RenewDeadline: 10 * time.Second,
			RetryPeriod:   2 * time.Second,
		},
	}
}

// Validate reports every problem at once, each prefixed with its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("respond."+key+": "+format, args...))
	}
	if _, err := models.ParseMode(string(c.Mode)); err != nil {
		bad("mode", "%q is not alert, dry-run or enforce", c.Mode)
	}
	switch c.Backend {
	case BackendIstio, BackendNetworkPolicy:
	case BackendGitOps:
		if c.GitOpsDir == "" {
			bad("gitops_dir", "empty; the gitops backend needs a directory")
		}
	default:
		bad("backend", "%q is not istio, networkpolicy or gitops", c.Backend)
	}
	if msgs := validation.IsDNS1123Label(c.RootNamespace); len(msgs) > 0 {
		bad("root_namespace", "%q is not a namespace name: %s", c.RootNamespace, msgs[0])
	}
	for _, ns := range c.ProtectedNamespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			bad("protected_namespaces", "%q is not a namespace name: %s", ns, msgs[0])
		}
	}
	for _, w := range c.ProtectedWorkloads {
		if msgs := validation.IsDNS1123Subdomain(w); len(msgs) > 0 {
			bad("protected_workloads", "%q is not a workload name: %s", w, msgs[0])
		}
	}
	for _, cidr := range c.ProtectedCIDRs {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			bad("protected_cidrs", "%q is not an address range such as 10.0.0.0/16: %v", cidr, err)
		}
	}
	if c.BudgetPerHour < 0 {
		bad("budget_per_hour", "%d: want 0 (alert only) or more", c.BudgetPerHour)
	}
	if c.TTL <= 0 {
		bad("ttl", "%v: want more than 0; every policy expires", c.TTL)
	}
	if c.MaxTTL < c.TTL {
		bad("max_ttl", "%v is less than respond.ttl (%v); want at least the ttl (default 24h)", c.MaxTTL, c.TTL)
	}
	if c.RevokeHold < 0 {
		bad("revoke_hold", "%v: want 0 (a revoke holds for nothing) or more (default 24h)", c.RevokeHold)
	}
	if c.PromoteAfter < 0 {
		bad("promote_after", "%v: want 0 (never staged) or more", c.PromoteAfter)
	}
	if c.ReconcileInterval <= 0 {
		bad("reconcile_interval", "%v: want more than 0", c.ReconcileInterval)
	}
	if msgs := validation.IsValidLabelValue(c.Instance); len(msgs) > 0 || c.Instance == "" {
		bad("instance", "%q is not a label value", c.Instance)
	}
	for i, r := range c.Actions {
		key := fmt.Sprintf("actions[%d]", i)
		if r.Kind != "*" {
			if _, err := models.ParseDetectionKind(r.Kind); err != nil {
				bad(key+".kind", "%v, or \"*\"", err)
			}
		}
		if _, err := models.ParseActionKind(string(r.Action)); err != nil {
			bad(key+".action", "%v", err)
		}
		if r.MinSeverity != 0 && r.MinSeverity.String() == "unknown" {
			bad(key+".min_severity", "%d is not low, medium, high or critical", r.MinSeverity)
		}
		if r.Mode != "" {
			if _, err := models.ParseMode(string(r.Mode)); err != nil {
				bad(key+".mode", "%q is not alert, dry-run or enforce", r.Mode)
			}
		}
	}
	if le := c.LeaderElection; le.Enabled {
		if msgs := validation.IsDNS1123Label(le.Namespace); len(msgs) > 0 {
			bad("leader_election.namespace", "%q is not a namespace name: %s", le.Namespace, msgs[0])
		}
		if msgs := validation.IsDNS1123Subdomain(le.LeaseName); len(msgs) > 0 {
			bad("leader_election.lease_name", "%q is not a Lease name: %s", le.LeaseName, msgs[0])
		}
		if le.RetryPeriod <= 0 || le.RenewDeadline <= le.RetryPeriod || le.LeaseDuration <= le.RenewDeadline {
			bad("leader_election", "want lease_duration (%v) > renew_deadline (%v) > retry_period (%v) > 0",
				le.LeaseDuration, le.RenewDeadline, le.RetryPeriod)
		}
	}
	return errors.Join(errs...)
}

// KubernetesConfig is the `kubernetes:` section.
type KubernetesConfig struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster, then the
	// KUBECONFIG variable, then ~/.kube/config.
	Kubeconfig string `yaml:"kubeconfig"`
}

// Validate checks that a named kubeconfig exists.
func (c KubernetesConfig) Validate() error {
	if c.Kubeconfig == "" {
		return nil
	}
	if _, err := os.Stat(c.Kubeconfig); err != nil {
		return fmt.Errorf("kubernetes.kubeconfig: %w", err)
	}
	return nil
}

// RESTConfig returns the client config c names.
func (c KubernetesConfig) RESTConfig() (*rest.Config, error) {
	if c.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes.kubeconfig %s: %w", c.Kubeconfig, err)
		}
		return cfg, nil
	}
	if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules() // KUBECONFIG, then ~/.kube/config
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: not in a cluster and no usable kubeconfig: %w", err)
	}
	return cfg, nil
}
