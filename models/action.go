package models

import (
	"fmt"
	"time"
)

// ActionKind is what respond does about a detection.
type ActionKind string

const (
	// ActionAlert tells humans and writes no policy.
	ActionAlert ActionKind = "alert"
	// ActionBlockEdge denies the source principal's calls to the
	// destination workload.
	ActionBlockEdge ActionKind = "block_edge"
	// ActionQuarantine denies everything the source sends and everything
	// sent to it.
	ActionQuarantine ActionKind = "quarantine"
	// ActionAllow stages or enforces a least-privilege ALLOW policy
	// learned from history (package policy); never a detection's answer,
	// so respond.actions cannot name it.
	ActionAllow ActionKind = "allow_policy"
)

// ParseActionKind accepts exactly "alert", "block_edge" and "quarantine".
func ParseActionKind(s string) (ActionKind, error) {
	switch ActionKind(s) {
	case ActionAlert, ActionBlockEdge, ActionQuarantine:
		return ActionKind(s), nil
	}
	return "", fmt.Errorf("unknown action %q (alert, block_edge or quarantine)", s)
}

// Mode is how far an action goes.
type Mode string

const (
	ModeAlert   Mode = "alert"
	ModeDryRun  Mode = "dry-run"
	ModeEnforce Mode = "enforce"
)

// ParseMode accepts exactly "alert", "dry-run" and "enforce".
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeAlert, ModeDryRun, ModeEnforce:
		return Mode(s), nil
	}
	return "", fmt.Errorf("unknown mode %q (alert, dry-run or enforce)", s)
}

// ActionState is one step of an action's life; each is audited.
type ActionState string

const (
	StateApplied  ActionState = "applied"
	StateSkipped  ActionState = "skipped"
	StatePromoted ActionState = "promoted"
	StateExtended ActionState = "extended"
	StateExpired  ActionState = "expired"
	StateRevoked  ActionState = "revoked"
	StateFailed   ActionState = "failed"
	StateAlerted  ActionState = "alerted"
)

// Action is one decision about one detection and where it stands. It is
// what the actions audit table, the API and Slack show.
type Action struct {
	ID          string        `json:"action_id"`
	At          time.Time     `json:"at"`
	DetectionID string        `json:"detection_id"`
	Detection   DetectionKind `json:"detection_kind,omitempty"`
	Kind        ActionKind    `json:"kind"`
	Mode        Mode          `json:"mode"`
	State       ActionState   `json:"state"`
	// Actor is "meshguard" for automatic decisions, else the user.
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
	// Target is what the action is about, e.g. "cluster.local/ns/a/sa/b
	// -> shop/payments".
	Target          string    `json:"target"`
	PolicyName      string    `json:"policy_name,omitempty"`
	PolicyNamespace string    `json:"policy_namespace,omitempty"`
	ExpiresAt       time.Time `json:"expires_at,omitempty"`
	// BlastRequests and BlastCallers are the blast-radius preview: what
	// the policy would have denied over the last 24 hours.
	BlastRequests uint64 `json:"blast_requests,omitempty"`
	BlastCallers  uint64 `json:"blast_callers,omitempty"`
}
