package models

import "fmt"

// TLS is what a flow's records show of its transport security. It has
// three states because most records do not say: Istio's stock text format
// and a client proxy's record carry no client certificate, and reading
// their silence as plaintext turns every such request into a downgrade.
// Unknown stays unknown; only evidence makes a flow plaintext.
//
// The values are stored as they are (flows.mtls): 0 unknown, 1 mTLS,
// 2 plaintext. Rows written before the three states hold 0 or 1, and read
// back as unknown or mTLS, which is what they knew.
type TLS uint8

const (
	// TLSUnknown: the records carry no evidence either way.
	TLSUnknown TLS = iota
	// TLSMutual: a client certificate was presented (a peer principal),
	// or Istio's client proxy originated the connection (its SNI).
	TLSMutual
	// TLSPlaintext: the record carries the fields that would show mTLS,
	// and they are empty: no client certificate, no client proxy TLS, or
	// Istio's connection_security_policy "none".
	TLSPlaintext
)

var tlsNames = [...]string{TLSUnknown: "unknown", TLSMutual: "mtls", TLSPlaintext: "plaintext"}

func (t TLS) String() string {
	if int(t) < len(tlsNames) {
		return tlsNames[t]
	}
	return fmt.Sprintf("tls(%d)", uint8(t))
}

// MarshalText writes the state's name.
func (t TLS) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a name MarshalText wrote.
func (t *TLS) UnmarshalText(b []byte) error {
	for i, n := range tlsNames {
		if n == string(b) {
			*t = TLS(i)
			return nil
		}
	}
	return fmt.Errorf("TLS state %q: want unknown, mtls or plaintext", b)
}
