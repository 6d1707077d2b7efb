package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// The README's first command: the whole loop must run with no server and
// account for every record it produced.
func TestDemoRunsTheLoopWithoutServers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	stderr = io.Discard
	var out bytes.Buffer
	err := runDemo(context.Background(), demoOptions{duration: 5 * time.Second, speed: 10, start: "2026-11-18T14:00:00Z", seed: 1}, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"none lost, none doubled", "1 dead-lettered", "shop/frontend-v1 -> shop/catalog-v1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
