package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README's first command: the whole loop must run with no server,
// catch every attack it plays, write the policies it would apply, and
// account for every record it produced.
func TestDemoRunsTheLoopWithoutServers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	stderr = io.Discard
	var out bytes.Buffer
	dir := filepath.Join(t.TempDir(), "policies")
	err := runDemo(context.Background(), demoOptions{duration: 5 * time.Minute, speed: 300, start: "2026-11-16T08:00:00Z",
		seed: 1, learning: 15 * time.Minute, attacks: "all", policiesDir: dir}, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"none lost, none doubled", "1 dead-lettered", "8 of 8 attacks detected", "0 other detections",
		"DETECTED  lateral_movement", "AuthorizationPolicy billing/mg-block-recommendations-v1-payments"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.yaml"))
	if len(files) < 4 {
		t.Errorf("%d policy files in %s, want one per blocked attack (at least 4)", len(files), dir)
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if !bytes.Contains(b, []byte(`istio.io/dry-run: "true"`)) || !bytes.Contains(b, []byte("kind: AuthorizationPolicy")) {
			t.Errorf("%s is not a dry-run AuthorizationPolicy:\n%s", f, b)
		}
	}
}
