package policy

import (
	"context"
	"fmt"

	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
)

// Scope narrows a suggestion to one namespace's (and one workload's)
// destinations; empty means every destination.
type Scope struct {
	Namespace string
	Workload  string
}

// Learn reads the evidence for scope over o's period from src and
// suggests a policy per destination workload. Each gets its selector from
// resolve, the responder's (respond.KubeResolver against a cluster,
// respond.ConventionResolver without); one that respond's guardrails
// protect, or whose selector cannot be found, is returned Skipped, saying
// why.
func Learn(ctx context.Context, src storage.CallerTrafficSource, scope Scope, o Options,
	resolve respond.Resolver, guard respond.Config) ([]Suggestion, error) {
	ds, err := src.DetectionsBetween(ctx, o.From.Add(-o.Margin), o.To.Add(o.Margin))
	if err != nil {
		return nil, err
	}
	q := storage.SuggestQuery{From: o.From, To: o.To, Namespace: scope.Namespace, Workload: scope.Workload,
		Detected: DetectedSpans(ds, o.Margin)}
	traffic, err := src.CallerTraffic(ctx, q)
	if err != nil {
		return nil, err
	}
	first, err := src.EdgesFirstSeen(ctx, q)
	if err != nil {
		return nil, err
	}
	ss := Suggest(Evidence{Traffic: traffic, FirstSeen: first, Detections: ds}, o)
	for i := range ss {
		s := &ss[i]
		if s.Skipped != "" {
			continue
		}
		if why := guard.Protects(s.Namespace, s.Workload); why != "" {
			s.Skipped = why
			continue
		}
		sel, err := resolve(ctx, s.Namespace, s.Workload)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.Skipped = fmt.Sprintf("no selector for the workload: %v", err)
			continue
		}
		s.Selector = sel
	}
	return ss, nil
}
