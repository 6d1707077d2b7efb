// SPDX-License-Identifier: AGPL-3.0-only
// Part of a Go translation of ARTime by Mark Hampton (github.com/markNZed/ARTimeNAB.jl); see README.md.

package artime

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/meshguard/meshguard"

// TestProductDoesNotLinkIt lists the packages the product's commands
// (cmd/...) link and fails if any lies under test/nab: this package is
// under the AGPL and the project's own licence is not chosen yet, so it
// may reach a binary only through test/nab/cmd/nabrun and nabsearch.
func TestProductDoesNotLinkIt(t *testing.T) {
	deps := goList(t, "-deps", module+"/cmd/...")
	if !slices.Contains(deps, module+"/cmd/meshguard") {
		t.Fatalf("go list -deps %s/cmd/... does not list cmd/meshguard: the check would prove nothing (got %d packages)", module, len(deps))
	}
	for _, p := range deps {
		if p == module+"/test/nab" || strings.HasPrefix(p, module+"/test/nab/") {
			t.Errorf("the product links %s", p)
		}
	}
}

// TestOnlyNabrunImportsIt checks every package of the module (tests
// aside): the benchmark tools nabrun and nabsearch are the only ones
// allowed to import this package.
func TestOnlyNabrunImportsIt(t *testing.T) {
	const self = module + "/test/nab/artime"
	lines := goList(t, "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"/...")
	importers := 0
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) == 0 || !slices.Contains(fields[1:], self) {
			continue
		}
		importers++
		if fields[0] != module+"/test/nab/cmd/nabrun" && fields[0] != module+"/test/nab/cmd/nabsearch" {
			t.Errorf("%s imports %s; only test/nab/cmd/nabrun and nabsearch may", fields[0], self)
		}
	}
	if importers == 0 {
		t.Errorf("no package imports %s: not even nabrun, so the listing is wrong", self)
	}
}

// goList runs `go list` with args (go from PATH) and returns its output's
// lines; it skips the test when there is no go command to run.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH (%v): cannot list what the product links", err)
	}
	out, err := exec.Command(goTool, append([]string{"list"}, args...)...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, exit.Stderr)
		}
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
