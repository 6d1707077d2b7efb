package respond

import (
	"fmt"
	"slices"

	"github.com/meshguard/meshguard/models"
)

// decision is what the rules say about one detection, before guardrails.
type decision struct {
	Kind   models.ActionKind
	Mode   models.Mode
	Reason string
}

var modeRank = map[models.Mode]int{models.ModeAlert: 0, models.ModeDryRun: 1, models.ModeEnforce: 2}

// lowerMode returns the less forceful of a and b; "" means no limit.
func lowerMode(a, b models.Mode) models.Mode {
	if b == "" || modeRank[a] <= modeRank[b] {
		return a
	}
	return b
}

// decide maps d to an action with the first matching rule of c.Actions.
// A rule of d's kind that d does not reach (severity, score) is named in
// the reason of the alert that results, so that "why was this not
// blocked" has an answer.
func (c *Config) decide(d models.Detection) decision {
	// A reliability event (a destination failing for its callers) names
	// no attacker: whatever the rules say, blocking would only add to the
	// outage.
	if slices.Contains(models.ReliabilityKinds, d.Kind) {
		return decision{Kind: models.ActionAlert, Mode: models.ModeAlert,
			Reason: fmt.Sprintf("%s is a reliability event, not an attack: alert only", d.Kind)}
	}
	var missed string
	for i, r := range c.Actions {
		if r.Kind != "*" && r.Kind != string(d.Kind) {
			continue
		}
		if d.Severity < r.MinSeverity {
			if missed == "" {
				missed = fmt.Sprintf("severity %s is below min_severity %s of rule actions[%d] (%s)", d.Severity, r.MinSeverity, i, r.Action)
			}
			continue
		}
		if d.Score < r.MinScore {
			if missed == "" {
				missed = fmt.Sprintf("score %.2f is below min_score %.2f of rule actions[%d] (%s)", d.Score, r.MinScore, i, r.Action)
			}
			continue
		}
		mode := lowerMode(c.Mode, r.Mode)
		reason := fmt.Sprintf("%s %s (score %.2f) matched rule actions[%d]: %s in mode %s", d.Severity, d.Kind, d.Score, i, r.Action, mode)
		if r.Action == models.ActionAlert || mode == models.ModeAlert {
			return decision{Kind: r.Action, Mode: models.ModeAlert, Reason: reason}
		}
		return decision{Kind: r.Action, Mode: mode, Reason: reason}
	}
	if missed == "" {
		missed = fmt.Sprintf("no rule in respond.actions for %s %s", d.Severity, d.Kind)
	}
	return decision{Kind: models.ActionAlert, Mode: models.ModeAlert, Reason: missed}
}
