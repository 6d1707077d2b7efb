package respond

import (
	"testing"

	"github.com/meshguard/meshguard/models"
)

// A destination outage names no attacker: the default table, and even a
// catch-all blocking rule, only alert.
func TestDestinationOutageOnlyAlerts(t *testing.T) {
	d := models.Detection{Kind: models.DestinationOutage, Severity: models.SeverityLow, Score: 50,
		Destination: models.Party{Namespace: "shop", Workload: "catalog-v1"}}
	cfg := DefaultConfig()
	cfg.Mode = models.ModeEnforce
	if got := cfg.decide(d); got.Kind != models.ActionAlert || got.Mode != models.ModeAlert {
		t.Errorf("default actions: %+v, want alert", got)
	}
	cfg.Actions = []ActionRule{{Kind: "*", MinSeverity: models.SeverityLow, Action: models.ActionBlockEdge}}
	if got := cfg.decide(d); got.Kind != models.ActionAlert || got.Mode != models.ModeAlert || got.Reason == "" {
		t.Errorf("catch-all block rule: %+v, want alert", got)
	}
	cfg.Actions = []ActionRule{{Kind: string(models.DestinationOutage), Action: models.ActionQuarantine}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a rule may name destination_outage: %v", err)
	}
}
