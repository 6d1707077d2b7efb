package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

var chdbServer = server{"chdb", "MESHGUARD_TEST_CHDB_CHQ"}

// chqMaxInput is the size of chq's statement buffer (1 MiB, less the NUL).
const chqMaxInput = 1<<20 - 1

// CHDB returns a function that runs SQL statements on modern ClickHouse
// (chDB's libchdb, 26.7) without a server, through test/infra's chq, on a
// data directory of its own that lives as long as the test. State persists
// from one call to the next, so a test can run the same DDL twice.
//
// The function returns what the statements printed (TSV, one result after
// another) and an error naming the statements that failed, if any did.
// Statements run in order; a failed one does not stop the rest.
func CHDB(t testing.TB) func(statements ...string) (string, error) {
	t.Helper()
	chq := locate(t, chdbServer)
	lib := lookupRequired(t, chdbServer, "MESHGUARD_TEST_CHDB_LIB")
	for _, f := range []string{chq, lib} {
		if _, err := os.Stat(f); err != nil {
			unavailable(t, chdbServer, "%v", err)
		}
	}
	dir := t.TempDir()
	var mu sync.Mutex // one chq per data directory at a time
	return func(statements ...string) (string, error) {
		for _, s := range statements {
			for _, line := range strings.Split(s, "\n") {
				if strings.TrimSpace(line) == ";;" {
					return "", fmt.Errorf("chdb: a line of only ;; separates statements for chq; it cannot appear inside one: %.80q", s)
				}
			}
		}
		input := strings.Join(statements, "\n;;\n") + "\n"
		if len(input) > chqMaxInput {
			return "", fmt.Errorf("chdb: %d bytes of statements, chq reads at most %d per call", len(input), chqMaxInput)
		}
		mu.Lock()
		defer mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, chq, lib, dir)
		cmd.Stdin = strings.NewReader(input)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		out := stdout.String()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return out, nil
		case errors.As(err, &exit) && exit.ExitCode() == 1:
			// chq's "some statement failed": its output names which and why.
			return out, fmt.Errorf("chdb: %s", failures(out))
		default:
			return out, fmt.Errorf("chdb: %s %s %s: %v: %s", chq, lib, dir, err, strings.TrimSpace(stderr.String()))
		}
	}
}

// failures keeps the "ERROR in:" lines of chq's output and the message
// line after each.
func failures(out string) string {
	lines := strings.Split(out, "\n")
	var keep []string
	for i, l := range lines {
		if strings.HasPrefix(l, "ERROR in: ") {
			keep = append(keep, l)
			if i+1 < len(lines) {
				keep = append(keep, lines[i+1])
			}
		}
	}
	if len(keep) == 0 {
		return "chq exited 1: " + out
	}
	return strings.Join(keep, "\n")
}
