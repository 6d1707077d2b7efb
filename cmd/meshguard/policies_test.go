package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
)

func TestPoliciesListApproveRevokeAudited(t *testing.T) {
	kube := testenv.KubeConfig(t)
	cs := kubernetes.NewForConfigOrDie(kube)
	ctx := context.Background()
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	app, root, instance := "mg-cli-"+suffix, "mg-cliroot-"+suffix, "cli-"+suffix
	for _, ns := range []string{app, root} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	labels := map[string]string{"app": "payments"}
	if _, err := cs.AppsV1().Deployments(app).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "payments"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, ns := range []string{app, root} {
			_ = cs.AppsV1().Deployments(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{})
			_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	})

	conn, db := testenv.ClickHouse(t)
	chCfg := storage.DefaultClickHouseConfig()
	chCfg.Addr, chCfg.Database = []string{testenv.ClickHouseAddr(t)}, db
	store, err := storage.NewClickHouse(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "meshguard.yml")
	config := "clickhouse:\n  addr: [" + testenv.ClickHouseAddr(t) + "]\n  database: " + db + "\n" +
		"kubernetes:\n  kubeconfig: " + testenv.KubeconfigPath(t) + "\n" +
		"respond:\n  mode: dry-run\n  instance: " + instance + "\n  root_namespace: " + root + "\n  leader_election:\n    enabled: false\n"
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, closeFn, err := newCLIResponder(cfg, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	d := models.Detection{ID: "det-cli", Kind: models.LateralMovement, Severity: models.SeverityHigh, Score: 9,
		Source:      models.Party{Principal: "cluster.local/ns/" + app + "/sa/cart"},
		Destination: models.Party{Namespace: app, Workload: "payments"}}
	if err := r.HandleDetection(ctx, d); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) string {
		t.Helper()
		cmd := newPoliciesCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(args, "--config", path, "--actor", "eve"))
		if err := cmd.ExecuteContext(ctx); err != nil {
			t.Fatalf("policies %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	out := run("list")
	acts, _ := r.List(ctx)
	if len(acts) != 1 || !strings.Contains(out, acts[0].ID) || !strings.Contains(out, "dry-run") {
		t.Fatalf("list:\n%s", out)
	}
	id := acts[0].ID
	if out := run("approve", id); !strings.Contains(out, "enforce") {
		t.Errorf("approve: %s", out)
	}
	if out := run("extend", id, "--by", "30m"); !strings.Contains(out, "expires") {
		t.Errorf("extend: %s", out)
	}
	if out := run("revoke", "--all"); !strings.Contains(out, "revoked "+id) {
		t.Errorf("revoke --all: %s", out)
	}
	if out := run("list"); !strings.Contains(out, "no actions") {
		t.Errorf("list after revoke: %s", out)
	}

	// Every decision and every person's act is in ClickHouse.
	rows, err := conn.Query(ctx, "SELECT state, actor, kind, mode, policy_name, policy_namespace FROM "+db+".actions WHERE action_id = ? ORDER BY at, state", id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var state, actor, kind, mode, name, ns string
		if err := rows.Scan(&state, &actor, &kind, &mode, &name, &ns); err != nil {
			t.Fatal(err)
		}
		if kind != "block_edge" || name != id || ns != app {
			t.Errorf("row %s %s %s %s/%s", state, kind, mode, ns, name)
		}
		got = append(got, state+"/"+actor+"/"+mode)
	}
	want := "applied/meshguard/dry-run promoted/eve/enforce extended/eve/enforce revoked/eve/enforce"
	if strings.Join(got, " ") != want {
		// Rows in the same second sort by state: compare as sets.
		if len(got) != 4 {
			t.Errorf("audit rows %v, want %s", got, want)
		}
		for _, w := range strings.Fields(want) {
			if !strings.Contains(strings.Join(got, " "), w) {
				t.Errorf("audit rows %v lack %s", got, w)
			}
		}
	}
}
