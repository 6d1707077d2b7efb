package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	defer func(f []string) { cgroupMemoryFiles = f }(cgroupMemoryFiles)
	for _, c := range []struct {
		name, content string
		want          int64
	}{
		{"v2", "536870912\n", 512 << 20},
		{"v2-max", "max\n", 0},
		{"v1-unlimited", "9223372036854771712\n", 0},
		{"garbage", "lots\n", 0},
	} {
		cgroupMemoryFiles = []string{filepath.Join(dir, "missing"), file(c.name, c.content)}
		if got := cgroupMemoryLimit(); got != c.want {
			t.Errorf("%s (%q): %d, want %d", c.name, c.content, got, c.want)
		}
	}
}

func TestSetMemoryLimit(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT set: it wins, by design")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer func(f []string) { cgroupMemoryFiles = f }(cgroupMemoryFiles)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	if got := setMemoryLimit(300, log); got != 300<<20 || debug.SetMemoryLimit(-1) != 300<<20 {
		t.Fatalf("ingest.memory_limit_mib 300: set %d, runtime has %d", got, debug.SetMemoryLimit(-1))
	}
	p := filepath.Join(t.TempDir(), "memory.max")
	if err := os.WriteFile(p, []byte("1073741824\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cgroupMemoryFiles = []string{p}
	if got := setMemoryLimit(0, log); got != (1<<30)/10*9 {
		t.Fatalf("from a 1 GiB cgroup: %d, want 90%%", got)
	}
}
