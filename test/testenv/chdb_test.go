package testenv_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

func TestCHDBModernClickHouse(t *testing.T) {
	run := testenv.CHDB(t)

	out, err := run("SELECT version()")
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(out)
	if major, _, _ := strings.Cut(version, "."); atoi(major) < 24 {
		t.Fatalf("chDB reports ClickHouse %q, want 24 or newer", version)
	}
	t.Logf("chDB: ClickHouse %s", version)

	// State persists between calls on one data directory; features 18.16
	// lacks work here.
	// The row is dated an hour before the (shifted) clock: a TTL of a week
	// keeps it at any date and any shift within a day.
	ts := testenv.Now().Add(-time.Hour).Truncate(time.Second).Add(123 * time.Millisecond).Format("2006-01-02 15:04:05.000")
	if _, err := run(
		"CREATE TABLE t (ts DateTime64(3, 'UTC'), tags Map(String, String), s LowCardinality(String)) "+
			"ENGINE = MergeTree ORDER BY ts TTL toDateTime(ts) + INTERVAL 7 DAY",
		"INSERT INTO t VALUES ('"+ts+"', {'a': 'b'}, 'x')",
	); err != nil {
		t.Fatal(err)
	}
	out, err = run("SELECT ts, tags['a'], s FROM t")
	if err != nil {
		t.Fatal(err)
	}
	if want := ts + "\tb\tx\n"; out != want {
		t.Fatalf("read back %q, want %q", out, want)
	}

	// A failure names the statement and the server's reason; the
	// statements around it still run.
	out, err = run("SELECT 1", "SELECT * FROM missing", "SELECT 2")
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("error %v, want one naming the failed statement", err)
	}
	if !strings.HasPrefix(out, "1\n") || !strings.HasSuffix(out, "2\n") {
		t.Fatalf("output %q, want the results of the statements that ran", out)
	}
	// The setting 18.16 needs is unknown to modern servers.
	if _, err := run("SET allow_experimental_low_cardinality_type = 1"); err == nil {
		t.Error("26.x accepted allow_experimental_low_cardinality_type; the reason to send it only to old servers is gone")
	}

	if _, err := run("SELECT 1\n;;\nSELECT 2"); err == nil {
		t.Error("a statement containing the ;; separator was passed through")
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
