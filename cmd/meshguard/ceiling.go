package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meshguard/meshguard/alert"
	"github.com/meshguard/meshguard/models"
)

// ErrAboveMode: an approval would enforce a policy while respond.mode is
// below enforce. respond.mode is the ceiling an operator set for the whole
// installation; a click must not raise it for one action.
var ErrAboveMode = errors.New("approving would exceed respond.mode")

// modeCeiling passes Revoke and Extend through and refuses Approve while
// respond.mode is not enforce. Slack has no override: the API's audited
// operator override is the one way past the ceiling.
type modeCeiling struct {
	op   alert.Controller
	mode models.Mode
}

func (c modeCeiling) Approve(ctx context.Context, id, actor string) (models.Action, error) {
	if !c.ApproveAllowed() {
		return models.Action{}, fmt.Errorf("%w (respond.mode is %s): set respond.mode to enforce, or approve through the API with the audited operator override", ErrAboveMode, c.mode)
	}
	return c.op.Approve(ctx, id, actor)
}

func (c modeCeiling) Revoke(ctx context.Context, id, actor string) (models.Action, error) {
	return c.op.Revoke(ctx, id, actor)
}

func (c modeCeiling) Extend(ctx context.Context, id, actor string, by time.Duration) (models.Action, error) {
	return c.op.Extend(ctx, id, actor, by)
}

// ApproveAllowed tells the alerter whether to offer an Approve button.
func (c modeCeiling) ApproveAllowed() bool { return c.mode == models.ModeEnforce }
