package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/test/testenv"
)

// stage is one FROM ... block of the Dockerfile.
type stage struct {
	from  string // the image, without --platform
	alias string
	lines []string // instructions after FROM, continuations joined
}

func dockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.RepoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		fields := strings.Fields(line)
		if strings.EqualFold(fields[0], "FROM") {
			s := stage{}
			for i := 1; i < len(fields); i++ {
				switch {
				case strings.HasPrefix(fields[i], "--"):
				case strings.EqualFold(fields[i], "AS") && i+1 < len(fields):
					s.alias = fields[i+1]
					i++
				default:
					s.from = fields[i]
				}
			}
			stages = append(stages, s)
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
		}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// TestDockerfileBuildsAStaticNonRootImage: multi-stage, the binary built
// with CGO_ENABLED=0 -trimpath -ldflags "-s -w" from ./cmd/meshguard, a
// final stage on distroless static nonroot (or scratch) that runs as
// 65532 with an exec-form entrypoint.
func TestDockerfileBuildsAStaticNonRootImage(t *testing.T) {
	stages := dockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%d stages; want a build stage and a minimal final stage", len(stages))
	}
	var build string
	for _, s := range stages[:len(stages)-1] {
		for _, l := range s.lines {
			if strings.HasPrefix(l, "RUN") && strings.Contains(l, "go build") {
				build = l
			}
		}
	}
	if build == "" {
		t.Fatal("no RUN ... go build in a build stage")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/meshguard"} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build lacks %s: %s", want, build)
		}
	}
	ld := regexp.MustCompile(`-ldflags[= ]"([^"]*)"`).FindStringSubmatch(build)
	if ld == nil || !strings.Contains(" "+ld[1]+" ", " -s ") || !strings.Contains(" "+ld[1]+" ", " -w ") {
		t.Errorf(`the go build lacks -ldflags "-s -w": %s`, build)
	}

	final := stages[len(stages)-1]
	minimal := final.from == "scratch" || regexp.MustCompile(`^gcr\.io/distroless/static(-debian\d+)?:nonroot$`).MatchString(final.from)
	if !minimal {
		t.Errorf("final stage FROM %s; want gcr.io/distroless/static-debian12:nonroot or scratch", final.from)
	}
	var user, entrypoint string
	copied := false
	for _, l := range final.lines {
		f := strings.Fields(l)
		switch strings.ToUpper(f[0]) {
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entrypoint = strings.TrimSpace(strings.TrimPrefix(l, f[0]))
		case "COPY":
			copied = copied || strings.Contains(l, "--from=")
		case "RUN":
			t.Errorf("RUN in the final stage (%s): a minimal base has no shell", l)
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid != "65532" {
		t.Errorf("final stage USER %q; want 65532 (numeric, so runAsNonRoot can verify it)", user)
	}
	if !strings.HasPrefix(entrypoint, "[") {
		t.Errorf("ENTRYPOINT %q; want the exec form (there is no shell)", entrypoint)
	}
	if !copied {
		t.Error("final stage copies nothing from the build stage")
	}
}

// TestDockerBuildCommandBuilds runs the Dockerfile's go build command
// here, as the build stage would (docker is not needed).
func TestDockerBuildCommandBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds meshguard")
	}
	var build string
	for _, s := range dockerfile(t) {
		for _, l := range s.lines {
			if strings.HasPrefix(l, "RUN") && strings.Contains(l, "go build") {
				build = l
			}
		}
	}
	// Keep the command from CGO_ENABLED=0 on, with the output redirected.
	i := strings.Index(build, "CGO_ENABLED=0")
	if i < 0 {
		t.Fatalf("no CGO_ENABLED=0 in %q", build)
	}
	out := filepath.Join(t.TempDir(), "meshguard")
	script := strings.Replace(build[i:], "-o /out/meshguard", "-o "+out, 1)
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), "VERSION=test", "TARGETOS=linux", "TARGETARCH=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, b)
	}
	b, err := exec.Command(out, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "meshguard test") {
		t.Fatalf("built binary: %v %s", err, b)
	}
}

// TestDockerignoreKeepsTheBuildInputs: every package the binary is built
// from (and go.mod, go.sum) stays in the build context.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	root := testenv.RepoRoot(t)
	patterns := dockerignore(t, filepath.Join(root, ".dockerignore"))
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "github.com/meshguard/meshguard/cmd/meshguard").Output()
	if err != nil {
		t.Skipf("go list -deps ./cmd/meshguard: %v (the tree does not build right now)", err)
	}
	paths := []string{"go.mod", "go.sum"}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module dependency, not the context
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !e.IsDir() {
				paths = append(paths, filepath.ToSlash(filepath.Join(rel, e.Name())))
			}
		}
	}
	for _, p := range paths {
		if ignored(patterns, p) && !strings.HasSuffix(p, "_test.go") {
			t.Errorf(".dockerignore leaves out %s, which the build needs", p)
		}
	}
	for _, p := range []string{".git/HEAD", "deploy/README.md", "meshguard"} {
		if !ignored(patterns, p) {
			t.Errorf(".dockerignore keeps %s in the context", p)
		}
	}
}

type ignorePattern struct {
	glob   string
	negate bool
}

func dockerignore(t *testing.T, path string) []ignorePattern {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []ignorePattern
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p := ignorePattern{}
		if strings.HasPrefix(l, "!") {
			p.negate, l = true, l[1:]
		}
		p.glob = strings.TrimSuffix(strings.TrimPrefix(l, "/"), "/")
		out = append(out, p)
	}
	return out
}

// ignored applies .dockerignore's rules: the last matching pattern wins;
// a pattern matching a directory covers everything under it; "**/"
// matches any number of directories.
func ignored(patterns []ignorePattern, path string) bool {
	ign := false
	for _, p := range patterns {
		if matchesPath(p.glob, path) {
			ign = !p.negate
		}
	}
	return ign
}

func matchesPath(glob, path string) bool {
	parts := strings.Split(path, "/")
	for n := 1; n <= len(parts); n++ {
		prefix := strings.Join(parts[:n], "/")
		if ok, _ := filepath.Match(glob, prefix); ok {
			return true
		}
		if rest, found := strings.CutPrefix(glob, "**/"); found {
			for i := 0; i < n; i++ {
				if ok, _ := filepath.Match(rest, strings.Join(parts[i:n], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

// TestDeploymentsAreHardened checks every Deployment written under
// deploy/ as a plain manifest (the base and the production ingest tier);
// test/e2e checks the rendered overlays the same way.
func TestDeploymentsAreHardened(t *testing.T) {
	root := filepath.Join(testenv.RepoRoot(t), "deploy")
	n := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), "kind: Deployment") {
			return nil
		}
		deps, err := Deployments(data)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		for _, dep := range deps {
			if dep.Labels["app.kubernetes.io/name"] != "meshguard" {
				continue // the collector and other third-party pieces
			}
			n++
			for _, p := range Hardening(dep) {
				t.Errorf("%s: %s", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("%d meshguard Deployments under deploy/; want the base and production's ingest tier", n)
	}
}

// TestHardeningCatchesEachMissingField: the check itself fails a pod
// that lacks any one hardening field.
func TestHardeningCatchesEachMissingField(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, breakIt := range map[string]func(string) string{
		"runAsNonRoot": func(s string) string { return strings.ReplaceAll(s, "runAsNonRoot: true", "runAsNonRoot: false") },
		"runAsUser":    func(s string) string { return strings.ReplaceAll(s, "runAsUser: 65532", "runAsUser: 0") },
		"readOnlyRootFilesystem": func(s string) string {
			return strings.Replace(s, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", 1)
		},
		"allowPrivilegeEscalation": func(s string) string {
			return strings.Replace(s, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", 1)
		},
		"capabilities":   func(s string) string { return strings.Replace(s, `drop: ["ALL"]`, `drop: ["NET_RAW"]`, 1) },
		"seccompProfile": func(s string) string { return strings.ReplaceAll(s, "type: RuntimeDefault", "type: Unconfined") },
		"enableServiceLinks": func(s string) string {
			return strings.Replace(s, "enableServiceLinks: false", "enableServiceLinks: true", 1)
		},
		"memory limit": func(s string) string { return strings.Replace(s, "memory: 2Gi", "", 1) },
		"/tmp":         func(s string) string { return strings.Replace(s, "mountPath: /tmp", "mountPath: /scratch", 1) },
		"POD_NAME":     func(s string) string { return strings.Replace(s, "name: POD_NAME", "name: HOSTNAME_", 1) },
	} {
		broken := breakIt(string(data))
		if broken == string(data) {
			t.Errorf("%s: the replacement did not apply; update the test", name)
			continue
		}
		deps, err := Deployments([]byte(broken))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(Hardening(deps[0])) == 0 {
			t.Errorf("without %s the Deployment still passes the hardening check", name)
		}
	}
}

// TestSecretKeysAreDocumented: every file of the Secret a config names
// is in deploy/README.md's table, with the key that names it.
func TestSecretKeysAreDocumented(t *testing.T) {
	root := testenv.RepoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{} // secret key -> config key
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9.-]+)` \\| `([a-z_.]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = m[2]
	}
	ref := regexp.MustCompile(`(?m)^\s*([a-z_]+):\s*/etc/meshguard/secrets/([A-Za-z0-9._-]+)`)
	n := 0
	for _, cfg := range []string{"deploy/kubernetes/config.yaml", "deploy/overlays/dev/config.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, cfg))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(data), -1) {
			n++
			key, ok := documented[m[2]]
			if !ok {
				t.Errorf("%s names secret file %s, which deploy/README.md's Secrets table does not list", cfg, m[2])
				continue
			}
			if !strings.HasSuffix(key, "."+m[1]) {
				t.Errorf("%s: %s is read through %s, the README says %s", cfg, m[2], m[1], key)
			}
		}
	}
	if n == 0 {
		t.Fatal("no config names a secret file")
	}
}
