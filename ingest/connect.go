package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Probe connects to the brokers one after the other with the configured
// TLS and SASL and asks for the cluster's metadata; it returns nil at the
// first that answers. Otherwise it returns an error naming each broker
// and, when the cause is a setting (a rejected password, an unknown CA,
// TLS to a plaintext listener or the reverse), the key to fix.
func (c *KafkaConfig) Probe(ctx context.Context) error {
	d, err := c.Dialer()
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range c.Brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(dialTimeout))
			_, err = conn.Brokers()
			conn.Close()
		}
		if err == nil {
			return nil
		}
		errs = append(errs, c.ExplainError(b, err))
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// ExplainError wraps err, met talking to broker, with the broker and, when
// the cause is a setting, the key to fix. The error still wraps err.
func (c *KafkaConfig) ExplainError(broker string, err error) error {
	hint := c.hint(err)
	if hint == "" {
		return fmt.Errorf("kafka broker %s: %w", broker, err)
	}
	return fmt.Errorf("kafka broker %s: %w (%s)", broker, err, hint)
}

func (c *KafkaConfig) hint(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recordHeader tls.RecordHeaderError
	var opErr *net.OpError
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Sprintf("the broker rejected user %q over %s: check kafka.sasl.password (or kafka.sasl.password_file), kafka.sasl.username and kafka.sasl.mechanism", c.SASL.Username, c.SASL.Mechanism)
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return fmt.Sprintf("the broker does not offer %s: check kafka.sasl.mechanism", c.SASL.Mechanism)
	case errors.Is(err, kafka.IllegalSASLState):
		return "the broker expected a SASL handshake first: set kafka.sasl.mechanism, kafka.sasl.username and kafka.sasl.password"
	case errors.As(err, &unknownCA):
		if c.TLS.CAFile == "" {
			return "the broker's certificate is not signed by a system CA: set kafka.tls.ca_file to the CA that signed it"
		}
		return "the broker's certificate is not signed by a CA in kafka.tls.ca_file: check kafka.tls.ca_file"
	case errors.As(err, &hostname):
		return "the broker's certificate does not name this address: set kafka.tls.server_name to a name it holds"
	case errors.As(err, &invalid):
		return "the broker's certificate is not valid (expired, or not for a server): check the broker's certificate and kafka.tls.ca_file"
	case errors.As(err, &recordHeader):
		return "the broker does not speak TLS on this port: turn kafka.tls off or use the broker's TLS listener"
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		if c.TLS.On() {
			return "no answer in time: is this the broker's TLS listener? (kafka.tls)"
		}
		return "no answer in time: is the broker up, and is this a plaintext listener? (kafka.tls)"
	case !c.TLS.On() && (errors.Is(err, io.EOF) || errors.As(err, &opErr) && opErr.Op == "read"):
		return "the broker closed the connection: it may require TLS (set kafka.tls.enabled: true and kafka.tls.ca_file) or SASL (kafka.sasl.*)"
	case c.TLS.On() && c.SASL.Mechanism == "" && errors.Is(err, io.EOF):
		return "the broker closed the connection: it may require SASL (kafka.sasl.*)"
	}
	return ""
}

// waitForKafka probes the brokers until one accepts the connection and
// its credentials, logging each failure (with the broker and the setting
// to fix) and backing off up to a minute: a wrong password or CA is
// reported clearly and retried, never a crash loop and never a silent
// hang. It returns false when ctx ends first.
func (c *Consumer) waitForKafka(ctx context.Context) bool {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, dialTimeout+5*time.Second)
		err := c.kcfg.Probe(pctx)
		cancel()
		if err == nil {
			c.connected.Store(true)
			if attempt > 1 {
				c.log.Info("kafka reachable; consuming", "brokers", c.kcfg.Brokers, "attempts", attempt)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.stats.connectFailures.Add(1)
		c.lastConnectErr.Store(&err)
		c.log.Error("cannot connect to kafka; retrying", "err", err, "attempt", attempt, "retry_in", wait)
		select {
		case <-time.After(jitter(wait)):
		case <-ctx.Done():
			return false
		}
		wait = min(2*wait, time.Minute)
	}
}

// ConnectError returns the error of the last failed attempt to reach
// Kafka while the consumer has not yet connected, nil otherwise (a
// readiness probe can report it).
func (c *Consumer) ConnectError() error {
	if c.connected.Load() {
		return nil
	}
	if p := c.lastConnectErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Diagnose explains err, from a Writer or Client on these brokers: a
// kafka-go Transport reports a rejected SASL exchange only as a closed
// connection, so the brokers are probed through the Dialer, which sees
// the broker's reason. It returns the probe's explanation when the probe
// fails too, else err with the brokers named.
func (c *KafkaConfig) Diagnose(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dialTimeout+5*time.Second)
	defer cancel()
	if perr := c.Probe(ctx); perr != nil {
		return fmt.Errorf("%w; probing the brokers: %w", err, perr)
	}
	return c.ExplainError(strings.Join(c.Brokers, ","), err)
}
