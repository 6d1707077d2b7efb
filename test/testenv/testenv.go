// Package testenv hands Go tests ready clients for the real servers that
// test/infra starts (ClickHouse, Apache Kafka, etcd + kube-apiserver with
// Istio's CRDs), and an in-process kfake broker for fast tests. ClickHouse
// is modern (26.7, test/infra/chserver.sh); Debian's 18.16 (clickhouse.sh)
// serves only the tests of passwords and TLS, which chserver lacks.
//
// Where a server is found: the MESHGUARD_TEST_* variable itself, else the
// env files that test/infra writes under $MESHGUARD_INFRA_DIR (default
// /tmp/meshguard-infra): infra.env, written by `infra.sh start`, or the
// server's own <name>.env.
//
// When a server is required and cannot be reached, the test FAILS with the
// reason. It is required when CI is set, when infra.env exists (the full
// harness was started) or when the server's own env file exists. Only
// otherwise, on a developer machine that never started the servers, does a
// test skip, and it says how to start them.
package testenv

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// InfraDir is where test/infra keeps state and env files.
func InfraDir() string {
	if d := os.Getenv("MESHGUARD_INFRA_DIR"); d != "" {
		return d
	}
	return "/tmp/meshguard-infra"
}

var (
	envOnce  sync.Once
	envFiles map[string]map[string]string // file base name -> key -> value
)

func loadEnvFiles() {
	envFiles = map[string]map[string]string{}
	matches, _ := filepath.Glob(filepath.Join(InfraDir(), "*.env"))
	for _, path := range matches {
		if kv, err := ReadEnvFile(path); err == nil {
			envFiles[strings.TrimSuffix(filepath.Base(path), ".env")] = kv
		}
	}
}

// ReadEnvFile parses an env file test/infra writes: KEY=VALUE lines,
// "export " and quotes tolerated, blank lines and # comments skipped.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[strings.TrimPrefix(k, "export ")] = strings.Trim(v, `"'`)
		}
	}
	return kv, sc.Err()
}

// Lookup returns a MESHGUARD_TEST_* value (the environment first, then the
// env files of InfraDir), or "" when nothing names it. For programs that
// are not tests, such as the benchmarks; tests use the typed helpers.
func Lookup(key string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	envOnce.Do(loadEnvFiles)
	if v := envFiles["infra"][key]; v != "" {
		return v
	}
	for _, kv := range envFiles {
		if v := kv[key]; v != "" {
			return v
		}
	}
	return ""
}

// server describes one test/infra server.
type server struct {
	name string // the test/infra script and env file name: chserver, clickhouse, kafka, k8s
	key  string // the MESHGUARD_TEST_* variable that locates it
}

var (
	// The tests' ClickHouse is modern (26.7, chserver.sh); Debian's 18.16
	// (clickhouse.sh) stays for what chserver cannot do: passwords, TLS.
	clickhouseServer   = server{"chserver", "MESHGUARD_TEST_CLICKHOUSE_ADDR"}
	clickhouse18Server = server{"clickhouse", "MESHGUARD_TEST_CLICKHOUSE18_ADDR"}
	kafkaServer        = server{"kafka", "MESHGUARD_TEST_KAFKA_BROKERS"}
	k8sServer          = server{"k8s", "MESHGUARD_TEST_KUBECONFIG"}
)

// lookup finds a MESHGUARD_TEST_* value: the environment first, then
// infra.env, then the server's own env file.
func lookup(s server, key string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	envOnce.Do(loadEnvFiles)
	for _, file := range []string{"infra", s.name} {
		if v := envFiles[file][key]; v != "" {
			return v
		}
	}
	return ""
}

// required reports whether an unreachable server must fail the test.
func required(s server) bool {
	if os.Getenv("CI") != "" || os.Getenv(s.key) != "" {
		return true
	}
	envOnce.Do(loadEnvFiles)
	_, full := envFiles["infra"]
	_, own := envFiles[s.name]
	return full || own
}

// locate returns the server's address, or ends the test: Fatal when the
// server is required, Skip with how to start it otherwise.
func locate(t testing.TB, s server) string {
	t.Helper()
	return lookupRequired(t, s, s.key)
}

// lookupRequired returns the server's value for key, or ends the test as
// locate does.
func lookupRequired(t testing.TB, s server, key string) string {
	t.Helper()
	if v := lookup(s, key); v != "" {
		return v
	}
	unavailable(t, s, "%s is not set and no env file in %s names it", key, InfraDir())
	return ""
}

// unavailable ends a test whose server cannot be used.
func unavailable(t testing.TB, s server, format string, args ...any) {
	t.Helper()
	hint := "; start it with `test/infra/infra.sh start " + s.name + "` (or run `make test`, which starts every server)"
	if required(s) {
		t.Fatalf(s.name+": "+format+hint, args...)
	}
	t.Skipf(s.name+" not started: "+format+hint, args...)
}

// uniqueName returns prefix plus random hex, usable as a database, topic
// or namespace name, so tests never share state.
func uniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
