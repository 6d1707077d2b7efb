package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meshguard/meshguard/models"
)

type recordingController struct{ calls []string }

func (r *recordingController) Approve(_ context.Context, id, _ string) (models.Action, error) {
	r.calls = append(r.calls, "approve "+id)
	return models.Action{ID: id}, nil
}

func (r *recordingController) Revoke(_ context.Context, id, _ string) (models.Action, error) {
	r.calls = append(r.calls, "revoke "+id)
	return models.Action{ID: id}, nil
}

func (r *recordingController) Extend(_ context.Context, id, _ string, _ time.Duration) (models.Action, error) {
	r.calls = append(r.calls, "extend "+id)
	return models.Action{ID: id}, nil
}

// Slack clicks cannot raise respond.mode: Approve is refused below
// enforce (and the alerter is told to show no Approve button); Revoke and
// Extend always pass.
func TestModeCeilingForSlackClicks(t *testing.T) {
	ctx := context.Background()
	rc := &recordingController{}
	dry := modeCeiling{op: rc, mode: models.ModeDryRun}
	if _, err := dry.Approve(ctx, "a1", "slack:alice/U0ALICE"); !errors.Is(err, ErrAboveMode) {
		t.Errorf("approve in dry-run: %v, want ErrAboveMode", err)
	}
	if dry.ApproveAllowed() {
		t.Error("dry-run allows approvals")
	}
	_, _ = dry.Revoke(ctx, "a1", "x")
	_, _ = dry.Extend(ctx, "a1", "x", time.Hour)
	enf := modeCeiling{op: rc, mode: models.ModeEnforce}
	_, _ = enf.Approve(ctx, "a2", "x")
	if got := rc.calls; len(got) != 3 || got[0] != "revoke a1" || got[1] != "extend a1" || got[2] != "approve a2" {
		t.Errorf("calls %q", got)
	}
	if !enf.ApproveAllowed() {
		t.Error("enforce refuses approvals")
	}
}
