package main

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/scenario"
)

// prefixed is RealisticMesh with every namespace renamed to prefix+name,
// so that a round's workloads, service accounts and policies live in
// namespaces of its own on the shared kube-apiserver.
func prefixed(prefix string) scenario.Mesh {
	m := scenario.RealisticMesh()
	m.Services = append([]scenario.Service(nil), m.Services...)
	for i := range m.Services {
		m.Services[i].Namespace = prefix + m.Services[i].Namespace
	}
	return m
}

// schedule places one DefaultAttack of every kind, from first on, one
// every stagger, each lasting dur, with namespaces prefixed as in
// prefixed. Every kind comes from another source workload, so their
// detections and incidents stay apart while they overlap.
func schedule(prefix string, first time.Time, stagger, dur time.Duration) ([]scenario.Attack, error) {
	attacks, err := scenario.Schedule(models.DetectionKinds, first, stagger, dur, 1)
	if err != nil {
		return nil, err
	}
	for i := range attacks {
		attacks[i].Source = prefix + attacks[i].Source
		if attacks[i].Destination != "" {
			attacks[i].Destination = prefix + attacks[i].Destination
		}
	}
	return attacks, nil
}

// workloadOf is the workload of a "namespace/workload" reference.
func workloadOf(ref string) string {
	_, wl, _ := strings.Cut(ref, "/")
	return wl
}

// oddPrefixes start every path the generator's unusual_path attack probes
// (scenario/attack.go), none of the mesh's own.
var oddPrefixes = []string{"/admin", "/.", "/debug/", "/actuator/", "/server-status", "/wp-admin/", "/phpmyadmin/", "/console"}

// isAttackRecord says whether lr is one of a's requests, by what the
// generator gives an attack's requests and the mesh's never: the edge for
// lateral movement (never called before), the scanner's user agent, an
// oversized response, plaintext, a probe's path, a 500 (the mesh's
// failures are 503). Floods and credential stuffing share their edge with
// benign calls, so for them it is the edge after the start (at 20 or more
// requests a second, the first record within about 50 ms of the start).
func isAttackRecord(a scenario.Attack, lr plog.LogRecord) bool {
	attrs := lr.Attributes()
	get := func(k string) string {
		v, _ := attrs.Get(k)
		return v.Str()
	}
	if get("source_workload") != workloadOf(a.Source) {
		return false
	}
	if a.Kind == models.Scan {
		return strings.Contains(get("user_agent"), "zgrab")
	}
	if get("destination_workload") != workloadOf(a.Destination) {
		return false
	}
	switch a.Kind {
	case models.Exfiltration:
		n, _ := strconv.Atoi(get("bytes_sent"))
		return n >= 100_000
	case models.MTLSDowngrade:
		return get("source_principal") == "-"
	case models.ErrorSurge:
		return get("response_code") == "500"
	case models.UnusualPath:
		for _, p := range oddPrefixes {
			if strings.HasPrefix(get("path"), p) {
				return true
			}
		}
		return false
	case models.CredentialStuffing:
		return get("path") == "/oauth/token"
	}
	return true // lateral_movement, request_flood: the edge
}

// firstRecords notes, for every attack not yet seen, the event time of
// its earliest record among records.
func firstRecords(attacks []scenario.Attack, first map[int]time.Time, records plog.LogRecordSlice) {
	for i, a := range attacks {
		if _, seen := first[i]; seen {
			continue // records come in event-time order of their steps
		}
		for j := range records.Len() {
			lr := records.At(j)
			ts := lr.Timestamp().AsTime()
			if ts.Before(a.Start) || !ts.Before(a.End) || !isAttackRecord(a, lr) {
				continue
			}
			if t, ok := first[i]; !ok || ts.Before(t) {
				first[i] = ts
			}
		}
	}
}
