package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// OwnServer is a server started for one test alone, from the same
// test/infra script as the shared one but with its own state directory,
// so the test may stop and restart it without disturbing tests that run
// in parallel.
type OwnServer struct {
	name  string
	dir   string
	env   map[string]string
	infra string
	extra []string // environment for the script: the options
}

// OwnOption configures a private server.
type OwnOption func(*OwnServer)

// WithPassword makes the private ClickHouse require password p (letters,
// digits, . _ -) for its users default and meshguard. The modern server
// has no users, so the private server is Debian's 18.16: its keys are
// MESHGUARD_TEST_CLICKHOUSE18_*, the user MESHGUARD_TEST_CLICKHOUSE18_USER.
func WithPassword(p string) OwnOption {
	return func(s *OwnServer) {
		s.name = clickhouse18Server.name
		s.extra = append(s.extra, "MESHGUARD_INFRA_CLICKHOUSE_PASSWORD="+p)
	}
}

// WithTLS makes the private ClickHouse also listen with TLS, with the PEM
// certificate and key given; its address is
// Get("MESHGUARD_TEST_CLICKHOUSE18_SECURE_ADDR"). The modern server has no
// TLS, so the private server is Debian's 18.16, as with WithPassword.
func WithTLS(certFile, keyFile string) OwnOption {
	return func(s *OwnServer) {
		s.name = clickhouse18Server.name
		s.extra = append(s.extra, "MESHGUARD_INFRA_CLICKHOUSE_TLS_CERT="+certFile, "MESHGUARD_INFRA_CLICKHOUSE_TLS_KEY="+keyFile)
	}
}

// OwnClickHouse starts a private ClickHouse (stopped and deleted when the
// test ends): the modern server (chserver, keys MESHGUARD_TEST_CLICKHOUSE_*)
// unless an option needs Debian's 18.16 (keys MESHGUARD_TEST_CLICKHOUSE18_*).
// It needs the shared harness's packages installed, which `infra.sh start`
// does.
func OwnClickHouse(t testing.TB, opts ...OwnOption) *OwnServer {
	t.Helper()
	s := &OwnServer{name: clickhouseServer.name, dir: t.TempDir(), infra: infraScripts(t)}
	for _, o := range opts {
		o(s)
	}
	// The shared one must exist: its start installed or built the server.
	if s.name == clickhouse18Server.name {
		locate(t, clickhouse18Server)
	} else {
		locate(t, clickhouseServer)
	}
	s.Start(t)
	t.Cleanup(func() { s.run(t, "clean") })
	return s
}

// Get returns a key of the server's env file, e.g.
// MESHGUARD_TEST_CLICKHOUSE_ADDR.
func (s *OwnServer) Get(key string) string { return s.env[key] }

// Start starts (or restarts, at the same address and with the same data)
// the server.
func (s *OwnServer) Start(t testing.TB) {
	t.Helper()
	s.run(t, "start")
	env, err := ReadEnvFile(filepath.Join(s.dir, s.name+".env"))
	if err != nil {
		t.Fatalf("%s.sh start wrote no env file: %v", s.name, err)
	}
	s.env = env
}

// Stop stops the server, keeping its data and address.
func (s *OwnServer) Stop(t testing.TB) {
	t.Helper()
	s.run(t, "stop")
}

func (s *OwnServer) run(t testing.TB, verb string) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(s.infra, s.name+".sh"), verb)
	cmd.Env = append(append(os.Environ(), "MESHGUARD_INFRA_DIR="+s.dir), s.extra...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s.sh %s: %v\n%s", s.name, verb, err, out)
	}
}

// RepoRoot returns the root of the meshguard checkout.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the testenv source")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func infraScripts(t testing.TB) string { return filepath.Join(RepoRoot(t), "test", "infra") }
