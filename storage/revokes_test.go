package storage

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

// Both stores read back the same brake: revokes and people's approvals of
// one action, oldest first, a revoke after an approval of the same second.
func TestHumanDecisions(t *testing.T) {
	ch, _ := migratedStore(t)
	for name, s := range map[string]interface {
		ActionWriter
		BrakeReader
	}{"clickhouse": ch, "memory": NewMemory(1)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			t0 := testenv.Recent()
			for _, a := range []ActionRow{
				{ActionID: "mg-a", At: t0, State: "applied", Actor: "meshguard"},
				{ActionID: "mg-a", At: t0.Add(time.Minute), State: "revoked", Actor: "alice"},
				{ActionID: "mg-a", At: t0.Add(2 * time.Minute), State: "promoted", Actor: "meshguard"},
				{ActionID: "mg-a", At: t0.Add(3 * time.Minute), State: "revoked", Actor: "carol"},
				{ActionID: "mg-a", At: t0.Add(3 * time.Minute), State: "promoted", Actor: "bob"},
				{ActionID: "mg-b", At: t0.Add(time.Minute), State: "revoked", Actor: "alice"},
			} {
				if err := s.WriteAction(ctx, a); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.HumanDecisions(ctx, "mg-a", t0)
			if err != nil {
				t.Fatal(err)
			}
			var seq []string
			for _, a := range got {
				seq = append(seq, a.State+"/"+a.Actor)
			}
			if s := strings.Join(seq, " "); s != "revoked/alice promoted/bob revoked/carol" {
				t.Errorf("decisions %q, want alice's revoke, bob's approval, then carol's revoke of the same second", s)
			}
			got, err = s.HumanDecisions(ctx, "mg-a", t0.Add(2*time.Minute))
			if err != nil || len(got) != 2 {
				t.Errorf("since +2m: %+v, %v; want the two rows of +3m", got, err)
			}
			// An id is a value, never SQL.
			if got, err := s.HumanDecisions(ctx, "mg-a' OR '1'='1", t0); err != nil || len(got) != 0 {
				t.Errorf("quoted id: %+v, %v", got, err)
			}
		})
	}
}
