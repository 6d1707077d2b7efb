// Package secret reads secrets from files and keeps them out of output:
// the one place that knows how a secret file is read and how a secret,
// or a URL holding one, is shown.
package secret

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Redacted is what is shown in place of a secret.
const Redacted = "[redacted]"

// ReadFile reads a secret file (a mounted Kubernetes Secret, say),
// trimming the surrounding whitespace editors and `kubectl create secret`
// leave. Errors name the path, never the content.
func ReadFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// Redact returns "" for an empty secret (so "not set" stays visible) and
// Redacted for any other.
func Redact(s string) string {
	if s == "" {
		return ""
	}
	return Redacted
}

// RedactURL hides the password of a URL or DSN
// (clickhouse://user:pass@host/db becomes clickhouse://user:xxxxx@host/db)
// and the values of query parameters that may hold one. Something that
// does not parse is hidden whole: it may be a secret mistyped.
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL, not shown)"
	}
	q := u.Query()
	changed := false
	for k := range q {
		switch strings.ToLower(k) {
		case "password", "pass", "pwd", "secret", "token", "access_token":
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
