package identity

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Config is the `identity:` section.
type Config struct {
	// Enabled resolves flows' missing identities from the cluster when
	// serve has one (kubernetes.kubeconfig, or running in a pod). Without
	// a cluster the resolver is off whatever this says.
	Enabled bool `yaml:"enabled"`
	// TrustDomain is the mesh's SPIFFE trust domain, the first part of
	// the principals resolved from service accounts
	// (TRUST_DOMAIN/ns/NS/sa/SA). It must match the mesh's (Istio's
	// meshConfig.trustDomain).
	TrustDomain string `yaml:"trust_domain"`
	// Remember is how long a deleted pod's IP still resolves to it, for
	// records that arrive late. serve never uses less than
	// detect.allowed_lateness plus a minute.
	Remember time.Duration `yaml:"remember"`
}

// DefaultConfig is what an empty section means.
func DefaultConfig() Config {
	return Config{Enabled: true, TrustDomain: "cluster.local", Remember: 15 * time.Minute}
}

// A trust domain is a DNS-like name (SPIFFE: lowercase letters, digits,
// dots, dashes and underscores).
var trustDomain = regexp.MustCompile(`^[a-z0-9._-]{1,255}$`)

// Validate reports every problem in the section.
func (c Config) Validate() error {
	var errs []error
	if !trustDomain.MatchString(c.TrustDomain) {
		errs = append(errs, fmt.Errorf("identity.trust_domain: %q; use the mesh's trust domain (lowercase letters, digits, '.', '-', '_'), e.g. cluster.local", c.TrustDomain))
	}
	if c.Remember <= 0 {
		errs = append(errs, fmt.Errorf("identity.remember: %s; use a positive duration, e.g. 15m", c.Remember))
	}
	return errors.Join(errs...)
}
