package main

import (
	"context"
	"sync"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/scenario"
)

// actionSeen is one decision respond made, with the detection it was
// about.
type actionSeen struct {
	Action    models.Action
	Detection models.Detection
}

// actionLog is the responder's sink.
type actionLog struct {
	mu  sync.Mutex
	all []actionSeen
}

func (l *actionLog) HandleAction(_ context.Context, a models.Action, d models.Detection) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, actionSeen{a, d})
	return nil
}

// newResponder is respond as serve builds it with respond.mode enforce
// and otherwise default rules, guards and budget, confirming identities
// against the scenario's cluster (an in-process API server) and writing
// through the gitops backend into dir. The blast-radius check is off (it
// needs the flow store): what it would hold back in dry-run counts as
// enforced here, so the count is an upper bound. Leader election is off
// (one replica).
func newResponder(c *cluster, now func() time.Time, dir string, log *actionLog) (*respond.Responder, *apiServer, error) {
	cfg := respond.DefaultConfig()
	cfg.Mode = models.ModeEnforce
	cfg.Backend = respond.BackendGitOps
	cfg.GitOpsDir = dir
	cfg.BlastRadiusMaxRequests = 0
	cfg.LeaderElection.Enabled = false
	api := newAPIServer(c, now)
	r, err := respond.New(cfg, respond.Deps{Kube: api.config(), Backend: respond.NewGitOpsBackend(dir), Clock: now, Sink: log})
	if err != nil {
		api.Close()
		return nil, nil, err
	}
	return r, api, nil
}

// benignEnforced returns the enforced actions no attack explains, each
// once: a quarantine of a source that attacked nothing, or a block of an
// edge its source did not attack (a scanner attacks every edge), judged
// on the detection the action was decided on, during the attack or the
// hold after it.
func benignEnforced(m matcher, attacks []scenario.Attack, all []actionSeen) []actionSeen {
	seen := map[string]bool{}
	var out []actionSeen
	for _, a := range all {
		if a.Action.State != models.StateApplied || a.Action.Mode != models.ModeEnforce || seen[a.Action.ID] {
			continue
		}
		seen[a.Action.ID] = true
		if !attackAction(m, attacks, a) {
			out = append(out, a)
		}
	}
	return out
}

func attackAction(m matcher, attacks []scenario.Attack, a actionSeen) bool {
	d := a.Detection
	for _, at := range attacks {
		if !m.is(d.Source, at.Source) || !d.WindowEnd.After(at.Start) || !d.WindowStart.Before(at.End.Add(m.hold)) {
			continue
		}
		if a.Action.Kind == models.ActionQuarantine || at.Destination == "" || m.is(d.Destination, at.Destination) {
			return true
		}
	}
	return false
}
