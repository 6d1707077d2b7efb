package policy_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/policy"
	"github.com/meshguard/meshguard/policy/policytest"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
	"github.com/meshguard/meshguard/test/testenv"
)

// playedStore returns a migrated ClickHouse 26.7 store holding an hour of
// the realistic mesh with every attack, and the mesh's truth.
func playedStore(t *testing.T) (*storage.ClickHouse, *policytest.Truth, policy.Options) {
	t.Helper()
	store, _ := policytest.NewStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	play := policytest.Config{Start: testenv.Last(time.Tuesday, 10), Duration: time.Hour, Learning: 15 * time.Minute,
		Scale: 0.1, Seed: 3, Kinds: models.DetectionKinds}
	truth, err := policytest.Play(ctx, store, play)
	if err != nil {
		t.Fatal(err)
	}
	if truth.Detections == 0 {
		t.Fatal("the detector raised nothing on a mesh with every attack")
	}
	o := policy.DefaultOptions(play.Start, play.Start.Add(play.Duration))
	o.LearningPeriod = play.Learning
	return store, truth, o
}

// On stored traffic of a realistic mesh with attacks, every destination's
// suggestion admits each of its real callers (attested, established
// before the last learning period) and no caller that only attacked it;
// each admitted path was used by clean traffic; the blast radius counts
// what the rules leave out.
func TestSuggestAdmitsRealCallersAndNoAttacker(t *testing.T) {
	store, truth, o := playedStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	guard := respond.DefaultConfig()
	ss, err := policy.Learn(ctx, store, policy.Scope{}, o, respond.ConventionResolver, guard)
	if err != nil {
		t.Fatal(err)
	}
	byDst := map[string]policy.Suggestion{}
	for _, s := range ss {
		byDst[s.Namespace+"/"+s.Workload] = s
	}
	settled := o.To.Add(-o.LearningPeriod)
	var real, attackers, learning int
	for dst, callers := range truth.Calls {
		s, ok := byDst[dst]
		if !ok {
			t.Errorf("%s: called, but no suggestion", dst)
			continue
		}
		for principal, c := range callers {
			rule := ruleOf(s, principal)
			switch {
			case c.Clean == 0:
				attackers++
				if rule != nil {
					t.Errorf("%s: attacker %s admitted (%d attack requests, no clean one): %+v", dst, principal, c.Attack, *rule)
				}
			case c.FirstSeen.After(settled):
				learning++
				if rule != nil {
					t.Errorf("%s: %s first seen %s, within the last learning period, admitted", dst, principal, c.FirstSeen)
				}
			default:
				real++
				if rule == nil {
					t.Errorf("%s: real caller %s (%d clean requests since %s) not admitted; not admitted: %+v",
						dst, principal, c.Clean, c.FirstSeen, s.NotAdmitted)
					continue
				}
				for _, op := range rule.Operations {
					for _, p := range op.Paths {
						if !slices.ContainsFunc(mapKeys(c.CleanPaths), func(tpl string) bool { return matches(p, tpl) }) {
							t.Errorf("%s: %s admitted to %s, which no clean request of it used", dst, principal, p)
						}
					}
				}
			}
		}
	}
	if real == 0 || attackers == 0 {
		t.Fatalf("the play has %d real callers and %d attack-only callers; the test needs both", real, attackers)
	}
	t.Logf("%d destinations, %d real callers admitted, %d attack-only callers and %d new ones not; %d flows, %d detections",
		len(truth.Calls), real, attackers, learning, truth.Flows, truth.Detections)
	for _, s := range ss {
		if s.Skipped == "" && s.BlastRequests > s.Requests {
			t.Errorf("%s/%s: blast radius %d above its %d requests", s.Namespace, s.Workload, s.BlastRequests, s.Requests)
		}
		var notAdmitted uint64
		for _, c := range s.NotAdmitted {
			notAdmitted += c.Requests
		}
		if s.BlastRequests < notAdmitted {
			t.Errorf("%s/%s: blast radius %d below the %d requests of callers not admitted", s.Namespace, s.Workload, s.BlastRequests, notAdmitted)
		}
	}
}

func ruleOf(s policy.Suggestion, principal string) *policy.Rule {
	for i := range s.Rules {
		if s.Rules[i].Principal == principal {
			return &s.Rules[i]
		}
	}
	return nil
}

func matches(p, tpl string) bool {
	if prefix, ok := strings.CutSuffix(p, "*"); ok {
		return strings.HasPrefix(tpl, prefix)
	}
	return p == tpl
}

func mapKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
