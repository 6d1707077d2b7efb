package models

import "strings"

// Principal is a parsed SPIFFE identity as Istio issues them:
// "spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT". Its fields are
// substrings of the parsed text: parsing allocates nothing.
type Principal struct {
	TrustDomain    string
	Namespace      string
	ServiceAccount string
}

// String renders the principal in the form AuthorizationPolicy uses:
// "TRUST_DOMAIN/ns/NS/sa/SA", without "spiffe://".
func (p Principal) String() string {
	return p.TrustDomain + "/ns/" + p.Namespace + "/sa/" + p.ServiceAccount
}

// ParsePrincipal accepts Istio principals with or without the "spiffe://"
// scheme. It rejects anything that is not exactly trust domain, "ns",
// namespace, "sa", service account, with no empty part.
func ParsePrincipal(s string) (Principal, bool) {
	s = strings.TrimPrefix(s, "spiffe://")
	td, rest, ok := strings.Cut(s, "/ns/")
	if !ok || td == "" || strings.IndexByte(td, '/') >= 0 {
		return Principal{}, false
	}
	ns, sa, ok := strings.Cut(rest, "/sa/")
	if !ok || ns == "" || sa == "" || strings.IndexByte(ns, '/') >= 0 || strings.IndexByte(sa, '/') >= 0 {
		return Principal{}, false
	}
	return Principal{TrustDomain: td, Namespace: ns, ServiceAccount: sa}, true
}

// NormalizePrincipal returns s without a leading "spiffe://" when it is a
// valid principal, and "" otherwise, so that stored principals have one
// form and attacker-supplied junk never becomes an identity.
func NormalizePrincipal(s string) string {
	if _, ok := ParsePrincipal(s); !ok {
		return ""
	}
	return strings.TrimPrefix(s, "spiffe://")
}
