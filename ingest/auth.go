package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/meshguard/meshguard/internal/secret"
)

// KafkaTLS is `kafka.tls`: TLS to the brokers. It is on when Enabled is
// true or any other key is set; with no CAFile the system roots verify
// the brokers.
type KafkaTLS struct {
	Enabled bool `yaml:"enabled"`
	// CAFile: PEM bundle of the CAs that signed the brokers' certificates.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile: a client certificate (PEM), for brokers that
	// require mutual TLS (ssl.client.auth=required). Set both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked against the brokers'
	// certificates (default: the host of each broker address).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any broker certificate. For tests only:
	// anyone on the path can then read the telemetry and the credentials.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// On reports whether TLS is used.
func (t *KafkaTLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// KafkaSASL is `kafka.sasl`: SASL authentication to the brokers. Empty
// Mechanism means none.
type KafkaSASL struct {
	// Mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. PLAIN sends the
	// password as it is: use it only with TLS.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password, or PasswordFile (a mounted Kubernetes Secret): set one.
	// Better in the file or in MESHGUARD_KAFKA_SASL_PASSWORD than in the
	// config file; it is never logged.
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// saslMechanisms are the accepted values of kafka.sasl.mechanism.
var saslMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

func (s *KafkaSASL) mechanism() string { return strings.ToUpper(strings.TrimSpace(s.Mechanism)) }

// String shows the section with the password redacted, so that %v of a
// KafkaConfig leaks nothing.
func (s KafkaSASL) String() string {
	return fmt.Sprintf("{mechanism:%s username:%s password:%s password_file:%s}",
		s.Mechanism, s.Username, secret.Redact(s.Password), s.PasswordFile)
}

// GoString keeps %#v from printing the password.
func (s KafkaSASL) GoString() string { return "ingest.KafkaSASL" + s.String() }

// LogValue makes slog print the section redacted.
func (s KafkaSASL) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mechanism", s.Mechanism),
		slog.String("username", s.Username),
		slog.String("password", secret.Redact(s.Password)),
		slog.String("password_file", s.PasswordFile),
	)
}

// MarshalJSON redacts too: slog's JSON handler and any API that shows
// the config encode it as JSON.
func (s KafkaSASL) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"mechanism": s.Mechanism, "username": s.Username,
		"password": secret.Redact(s.Password), "password_file": s.PasswordFile})
}

// validateSecurity checks kafka.tls and kafka.sasl, reading the files to
// see that they are usable (and never quoting a secret).
func (c *KafkaConfig) validateSecurity() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	t := &c.TLS
	if t.On() {
		if (t.CertFile == "") != (t.KeyFile == "") {
			add("kafka.tls.cert_file and kafka.tls.key_file: set both (a client certificate and its key) or neither")
		}
		if _, err := c.TLSConfig(); err != nil {
			errs = append(errs, err)
		}
	}
	s := &c.SASL
	if s.Mechanism == "" {
		if s.Username != "" || s.Password != "" || s.PasswordFile != "" {
			add("kafka.sasl.mechanism: empty while kafka.sasl credentials are set; use one of %s", strings.Join(saslMechanisms, ", "))
		}
		return errs
	}
	known := false
	for _, m := range saslMechanisms {
		known = known || s.mechanism() == m
	}
	if !known {
		add("kafka.sasl.mechanism: %q is not supported; use one of %s", s.Mechanism, strings.Join(saslMechanisms, ", "))
	}
	if s.Username == "" {
		add("kafka.sasl.username: empty; SASL %s needs a user name (env MESHGUARD_KAFKA_SASL_USERNAME)", s.Mechanism)
	}
	switch {
	case s.Password != "" && s.PasswordFile != "":
		add("kafka.sasl.password and kafka.sasl.password_file are both set; set one")
	case s.PasswordFile != "":
		if _, err := secret.ReadFile(s.PasswordFile); err != nil {
			add("kafka.sasl.password_file: %v", err)
		}
	case s.Password == "":
		add("kafka.sasl.password: empty; set kafka.sasl.password_file (e.g. a mounted Secret) or MESHGUARD_KAFKA_SASL_PASSWORD")
	}
	if s.mechanism() == "PLAIN" && !t.On() {
		add("kafka.sasl.mechanism: PLAIN sends the password in clear; enable kafka.tls (kafka.tls.enabled: true) or use SCRAM-SHA-512")
	}
	return errs
}

// TLSConfig returns the TLS client config of kafka.tls, nil when TLS is
// off. Errors name the key and the fix.
func (c *KafkaConfig) TLSConfig() (*tls.Config, error) {
	t := &c.TLS
	if !t.On() {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as test-only
	}
	var errs []error
	if t.CAFile != "" {
		pool, err := loadCAs(t.CAFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("kafka.tls.ca_file: %w", err))
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" && t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("kafka.tls.cert_file/key_file: %w; both must be PEM and the key must match the certificate", err))
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadCAs reads a PEM bundle of CA certificates.
func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// SASLMechanism returns the mechanism of kafka.sasl with its credentials
// (the password file read now), nil when SASL is off.
func (c *KafkaConfig) SASLMechanism() (sasl.Mechanism, error) {
	s := &c.SASL
	if s.Mechanism == "" {
		return nil, nil
	}
	pass := s.Password
	if s.PasswordFile != "" {
		p, err := secret.ReadFile(s.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl.password_file: %w", err)
		}
		pass = p
	}
	switch s.mechanism() {
	case "PLAIN":
		return plain.Mechanism{Username: s.Username, Password: pass}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, s.Username, pass)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, s.Username, pass)
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism: %q is not supported; use one of %s", s.Mechanism, strings.Join(saslMechanisms, ", "))
}

// dialTimeout bounds a connection's set-up: TCP, TLS handshake and SASL
// exchange. A broker that speaks another protocol (TLS to a plaintext
// listener) fails within it instead of hanging.
const dialTimeout = 10 * time.Second

// Dialer returns the dialer every kafka-go Reader and Conn of meshguard
// uses: TLS and SASL as configured.
func (c *KafkaConfig) Dialer() (*kafka.Dialer, error) {
	tc, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	mech, err := c.SASLMechanism()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{
		ClientID:      "meshguard",
		Timeout:       dialTimeout,
		DualStack:     true,
		TLS:           tc,
		SASLMechanism: mech,
	}, nil
}

// Transport returns the transport every kafka-go Writer and Client of
// meshguard uses: the same TLS and SASL as Dialer.
func (c *KafkaConfig) Transport() (*kafka.Transport, error) {
	tc, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	mech, err := c.SASLMechanism()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{
		ClientID:    "meshguard",
		DialTimeout: dialTimeout,
		TLS:         tc,
		SASL:        mech,
	}, nil
}
