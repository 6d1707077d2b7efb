// Package e2e runs the meshguard binary against the real servers that
// test/infra starts, the way an operator runs it.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshguard-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "meshguard")
	build := exec.Command("go", "build", "-o", binary, "github.com/meshguard/meshguard/cmd/meshguard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building meshguard:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running meshguard with its output captured.
type process struct {
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	done chan error
}

// startMeshguard runs `meshguard ARGS...` with MESHGUARD_* env on top of
// the test's environment.
func startMeshguard(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary, args...), out: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.alive() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("meshguard %v output:\n%s", args, p.out)
		}
	})
	return p
}

func (p *process) alive() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// kill sends SIGKILL: no flush, no commit, no goodbye to the group.
func (p *process) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
}

// terminate sends SIGTERM and expects a clean exit within the bound.
func (p *process) terminate(t *testing.T, within time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("meshguard exited with %v after SIGTERM; output:\n%s", err, p.out)
		}
	case <-time.After(within):
		t.Fatalf("meshguard did not stop within %s of SIGTERM", within)
	}
}
