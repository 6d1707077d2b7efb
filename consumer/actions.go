package consumer

import (
	"context"
	"errors"

	"github.com/meshguard/meshguard/models"
)

// Actions is told about every decision respond makes (applied, skipped,
// alerted, promoted, extended, expired, revoked, failed); the Slack
// alerter is one. HandleAction must return quickly (queue, do not send
// inline): respond calls it while it decides. Its error is logged.
type Actions interface {
	HandleAction(ctx context.Context, a models.Action, d models.Detection) error
}

// ActionsFunc adapts a function to Actions.
type ActionsFunc func(ctx context.Context, a models.Action, d models.Detection) error

// HandleAction calls f.
func (f ActionsFunc) HandleAction(ctx context.Context, a models.Action, d models.Detection) error {
	return f(ctx, a, d)
}

// FanoutActions hands each decision to every consumer, even when one
// fails, and joins the errors, as FanoutDetections does. Nil consumers are
// skipped.
func FanoutActions(consumers ...Actions) Actions {
	return ActionsFunc(func(ctx context.Context, a models.Action, d models.Detection) error {
		var errs []error
		for _, c := range consumers {
			if c == nil {
				continue
			}
			if err := c.HandleAction(ctx, a, d); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}
