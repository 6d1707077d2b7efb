package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
)

// dashboardQueries returns every SQL query of deploy/grafana/meshguard.json
// (panels, annotations, variables), keyed by where it is, and checks each
// target uses the ClickHouse data source, or Prometheus for meshguard's
// own metrics (dashboardMetricQueries).
func dashboardQueries(t *testing.T) map[string]string {
	sql, _ := dashboardTargets(t)
	return sql
}

// dashboardMetricQueries returns the PromQL of the Prometheus targets,
// keyed by panel. The choice (issue 14): what only meshguard's /metrics
// knows, Kafka lag above all, is read there through Prometheus, since
// ClickHouse has no copy; every such query names meshguard's metrics only.
func dashboardMetricQueries(t *testing.T) map[string]string {
	_, prom := dashboardTargets(t)
	return prom
}

func dashboardTargets(t *testing.T) (sql, prom map[string]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "grafana", "meshguard.json"))
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Datasource struct {
			Type string `json:"type"`
		} `json:"datasource"`
		EditorType string `json:"editorType"`
		RawSQL     string `json:"rawSql"`
		Expr       string `json:"expr"`
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string   `json:"title"`
			Type    string   `json:"type"`
			Targets []target `json:"targets"`
		} `json:"panels"`
		Annotations struct {
			List []struct {
				Name   string  `json:"name"`
				Target *target `json:"target"`
			} `json:"list"`
		} `json:"annotations"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID != "meshguard" {
		t.Errorf("uid %q; alert.slack.link_template links to /d/meshguard", d.UID)
	}
	out, prom := map[string]string{}, map[string]string{}
	check := func(where string, tg target) {
		if tg.Datasource.Type != "grafana-clickhouse-datasource" || tg.EditorType != "sql" || tg.RawSQL == "" {
			t.Errorf("%s: want an SQL query on grafana-clickhouse-datasource, got %+v", where, tg)
		}
		out[where] = tg.RawSQL
	}
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for i, tg := range p.Targets {
			if tg.Datasource.Type == "prometheus" {
				if tg.Expr == "" || tg.RawSQL != "" {
					t.Errorf("panel %q: a Prometheus target wants a PromQL expr and no SQL, got %+v", p.Title, tg)
				}
				prom[fmt.Sprintf("panel %s #%d", p.Title, i)] = tg.Expr
				continue
			}
			check("panel "+p.Title, tg)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Target != nil {
			check("annotation "+a.Name, *a.Target)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok && v.Type == "query" {
			out["variable "+v.Name] = q
		}
	}
	return out, prom
}

// TestDashboardCoversTheTables: panels over flows, edge_minute,
// detections (always FINAL) and actions.
func TestDashboardCoversTheTables(t *testing.T) {
	queries := dashboardQueries(t)
	used := map[string]bool{}
	table := regexp.MustCompile(`\$\{database\}\.(\w+)(\s+FINAL)?`)
	for where, q := range queries {
		for _, m := range table.FindAllStringSubmatch(q, -1) {
			used[m[1]] = true
			if (m[1] == "detections" || m[1] == "baselines") && m[2] == "" {
				t.Errorf("%s reads %s without FINAL: it would count old versions", where, m[1])
			}
		}
		if strings.Contains(q, "edge_minute") && !strings.Contains(q, "Merge(") && !strings.Contains(q, "DISTINCT") && !strings.Contains(q, "uniqExact") {
			t.Errorf("%s reads edge_minute without -Merge combinators", where)
		}
	}
	for _, want := range []string{"flows", "edge_minute", "detections", "actions"} {
		if !used[want] {
			t.Errorf("no panel reads %s", want)
		}
	}
}

// TestDashboardQueriesRunOnClickHouse runs every query, with the
// plugin's macros and the variables expanded as Grafana would, on
// meshguard's schema in modern ClickHouse (chDB), with a row in each
// table.
func TestDashboardQueriesRunOnClickHouse(t *testing.T) {
	queries := dashboardQueries(t)
	run := testenv.CHDB(t)
	v, err := storage.ParseServerVersion("26.7.2")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := storage.RenderMigrations(v, "meshguard")
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{"CREATE DATABASE IF NOT EXISTS meshguard"}
	for _, m := range ms {
		stmts = append(stmts, m.Statements...)
	}
	stmts = append(stmts,
		`INSERT INTO meshguard.flows (ts, ts_ms, reporter, source_workload, source_namespace, destination_workload, destination_namespace, method, path, response_code, duration_ms, count)
		 VALUES (now() - 60, toUnixTimestamp(now() - 60) * 1000, 'destination', 'frontend', 'shop', 'payments', 'shop', 'GET', '/pay', 200, 12, 1)`,
		`INSERT INTO meshguard.detections (detection_id, version, detected_at, window_start, window_end, kind, severity, score, source_workload, source_namespace, destination_workload, destination_namespace, evidence)
		 VALUES ('d1', 1, now() - 30, now() - 40, now() - 30, 'scan', 'high', 12.5, 'frontend', 'shop', 'payments', 'shop', '{}')`,
		`INSERT INTO meshguard.actions (action_id, at, detection_id, kind, mode, state, actor, target, policy_name, policy_namespace, expires_at)
		 VALUES ('a1', now() - 20, 'd1', 'quarantine', 'dry-run', 'applied', 'meshguard', 'shop/frontend', 'meshguard-a1', 'shop', now() + 3600)`,
	)
	if out, err := run(stmts...); err != nil {
		t.Fatalf("schema: %v\n%s", err, out)
	}
	for where, q := range queries {
		sql := expandGrafana(q)
		if strings.Contains(sql, "$") {
			t.Errorf("%s: unexpanded macro or variable:\n%s", where, sql)
			continue
		}
		if out, err := run(sql); err != nil {
			t.Errorf("%s: %v\n%s\n%s", where, err, sql, out)
		}
	}
}

// expandGrafana does what Grafana and the ClickHouse plugin do to a query
// before sending it, for a one-hour range ending now, a 60s interval, the
// namespace "shop" selected and the detection "d1".
func expandGrafana(q string) string {
	q = regexp.MustCompile(`\$__conditionalAll\((.*?), \$namespace\)`).ReplaceAllString(q, "($1)")
	q = regexp.MustCompile(`\$__timeFilter\((\w+)\)`).ReplaceAllString(q, "$1 >= toDateTime(toUnixTimestamp(now()) - 3600) AND $1 <= toDateTime(toUnixTimestamp(now()))")
	q = regexp.MustCompile(`\$__timeInterval\((\w+)\)`).ReplaceAllString(q, "toStartOfInterval(toDateTime($1), INTERVAL 60 second)")
	return strings.NewReplacer(
		"$__fromTime", "toDateTime(toUnixTimestamp(now()) - 3600)",
		"$__toTime", "toDateTime(toUnixTimestamp(now()))",
		"$__interval_s", "60",
		"${database}", "meshguard",
		"${namespace:singlequote}", "'shop'",
		"${detection}", "d1",
	).Replace(q)
}

// TestDashboardMetricPanelsQueryMeshguardMetrics: the Prometheus panels
// show ingest lag, and every series they select is one meshguard
// registers (a name in cmd/meshguard's collectors; a histogram's _bucket,
// _sum and _count belong to it), so a renamed metric breaks this test, not
// the board.
func TestDashboardMetricPanelsQueryMeshguardMetrics(t *testing.T) {
	queries := dashboardMetricQueries(t)
	registered := registeredMetrics(t)
	// Identifiers with an underscore not called as functions: metric
	// names (label names of these queries have none).
	series := regexp.MustCompile(`\b[a-z][a-z0-9]*_[a-z0-9_]+\b(\s*\()?`)
	lag := false
	for where, q := range queries {
		if strings.Count(q, "(") != strings.Count(q, ")") || strings.Count(q, "{") != strings.Count(q, "}") {
			t.Errorf("%s: unbalanced brackets in %q", where, q)
		}
		names := 0
		for _, m := range series.FindAllStringSubmatch(q, -1) {
			if m[1] != "" {
				continue // histogram_quantile(
			}
			name := m[0]
			names++
			if !strings.HasPrefix(name, "meshguard_") {
				t.Errorf("%s: %s is not one of meshguard's metrics", where, name)
				continue
			}
			if !registered[name] && !registered[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")] {
				t.Errorf("%s: meshguard registers no metric %s", where, name)
			}
			lag = lag || name == "meshguard_ingest_lag"
		}
		if names == 0 {
			t.Errorf("%s: selects no metric: %q", where, q)
		}
	}
	if !lag {
		t.Errorf("no Prometheus panel shows meshguard_ingest_lag")
	}
}

// registeredMetrics returns the metric names cmd/meshguard gives its
// Prometheus collectors (string literals of the form "meshguard_...").
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "cmd", "meshguard")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	literal := regexp.MustCompile(`"(meshguard_[a-z0-9_]+)"`)
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			out[m[1]] = true
		}
	}
	if !out["meshguard_ingest_flows_total"] {
		t.Fatalf("found no metric names in %s (%d names): has the registry moved?", dir, len(out))
	}
	return out
}
