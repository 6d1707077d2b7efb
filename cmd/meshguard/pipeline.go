package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/meshguard/meshguard/alert"
	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/models"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
)

// pipelineSpec says which stages a command runs and what they write to.
// serve, demo and replay each fill one and call buildPipeline, so the
// stages are wired one way: flows to the store, then (once stored) to the
// detector;
// detections to the detections table, then respond and alert; decisions
// to the alerter.
type pipelineSpec struct {
	// Detect, Respond and Alert configure the stages; nil leaves a stage
	// out.
	Detect  *detect.Config
	Respond *respond.Config
	Alert   *alert.Config

	// Store receives every flow before anything else sees it (nil: flows
	// are not stored). Detections and Actions are the detections table
	// and the audit log; Blast answers the responder's blast-radius
	// previews. Each may be nil.
	Store consumer.Flows
	// Identity, when set, resolves what flows lack of their identities
	// from the cluster before the store, the taps and the detector see
	// them (serve with a cluster; nil elsewhere).
	Identity   *identity.Resolver
	Detections storage.DetectionWriter
	Actions    storage.ActionWriter
	Blast      storage.BlastQuerier
	// Baselines, when set, hands the detector's partitions over between
	// replicas on rebalances, waiting up to HandoffWait for a previous
	// owner's release (serve: kafka.session_timeout).
	Baselines   storage.BaselineStore
	HandoffWait time.Duration

	// RespondDeps are the responder's cluster-facing parts (Kube, or a
	// Backend and Resolver); Actions, Blast, Sink and Logger are set here.
	RespondDeps respond.Deps

	// InProcess hands detections from the detector straight to respond
	// and alert (the demo, one process). Without it they reach respond and
	// alert through the detections table (serve's storage.Feed), so that
	// every replica's detections are acted on by the leader.
	InProcess bool
	// Handoff (serve, a replica that detects and responds or alerts) also
	// hands this replica's detections to respond and alert as they are
	// raised, through a bounded queue; the feed then skips them.
	Handoff bool

	// Taps see what passes, after the stages' own consumers: the demo's
	// scoreboard, replay's report, serve's metrics.
	FlowTaps      []consumer.Flows
	DetectionTaps []consumer.Detections
	ActionTaps    []consumer.Actions

	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// pipeline is what buildPipeline wired. Flows is ingest's next consumer:
// identity resolution, the store and the taps, what must succeed before
// offsets are committed (nil when nothing takes flows). Detect is the
// detector, ingest's AfterStore stage: it sees each batch once Flows
// accepted it, on its own goroutine (nil without detect). Handlers takes
// detections for respond and alert (nil when neither runs).
type pipeline struct {
	Detector  *detect.Detector
	Responder *respond.Responder
	Alerter   *alert.Alerter
	Flows     consumer.Flows
	Detect    consumer.Flows
	Handlers  consumer.Detections
	// Handoff is set with pipelineSpec.Handoff: run it, and feed the
	// detections table through Handlers, which skip what it delivered.
	Handoff *handoff
}

// ingestOptions wires the detector after the store, and gives ingest a
// next stage that takes nothing when a replica only detects.
func (p *pipeline) ingestOptions() (consumer.Flows, []ingest.Option) {
	next := p.Flows
	if next == nil {
		next = consumer.FanoutFlows()
	}
	if p.Detect == nil {
		return next, nil
	}
	return next, []ingest.Option{ingest.AfterStore(p.Detect)}
}

// buildPipeline builds the stages spec names, validating each stage's
// config, and wires them.
func buildPipeline(spec pipelineSpec) (*pipeline, error) {
	p := &pipeline{}
	// The responder is built before the alerter (which needs it to act on
	// clicks) but tells it of every decision: the decisions only flow once
	// both run.
	if spec.Respond != nil {
		deps := spec.RespondDeps
		deps.Actions, deps.Blast, deps.Logger = spec.Actions, spec.Blast, spec.Log
		taps := append([]consumer.Actions(nil), spec.ActionTaps...)
		taps = append(taps, consumer.ActionsFunc(func(ctx context.Context, a models.Action, d models.Detection) error {
			if p.Alerter == nil {
				return nil
			}
			return p.Alerter.HandleAction(ctx, a, d)
		}))
		deps.Sink = consumer.FanoutActions(taps...)
		r, err := respond.New(*spec.Respond, deps)
		if err != nil {
			return nil, err
		}
		p.Responder = r
	}
	if spec.Alert != nil {
		deps := alert.Deps{Log: spec.Log, Actions: spec.Actions, Registerer: spec.Registerer}
		// Buttons only where clicks can come back: a signing secret
		// verifies them. Without one a message offers nothing to click.
		sc := spec.Alert.Slack
		// Approve is capped by respond.mode (modeCeiling).
		if p.Responder != nil && (sc.SigningSecret != "" || sc.SigningSecretFile != "") {
			deps.Controller = modeCeiling{op: p.Responder, mode: spec.Respond.Mode}
		}
		a, err := alert.New(*spec.Alert, deps)
		if err != nil {
			return nil, err
		}
		p.Alerter = a
	}
	var handlers []consumer.Detections
	if p.Responder != nil {
		handlers = append(handlers, p.Responder)
	}
	if p.Alerter != nil {
		handlers = append(handlers, p.Alerter)
	}
	if len(handlers) > 0 {
		p.Handlers = consumer.FanoutDetections(handlers...)
	}

	var flows []consumer.Flows
	if spec.Store != nil {
		flows = append(flows, spec.Store)
	}
	flows = append(flows, spec.FlowTaps...)
	if spec.Detect != nil {
		var sinks []consumer.Detections
		if spec.Detections != nil {
			sinks = append(sinks, storage.DetectionSink(spec.Detections))
		}
		sinks = append(sinks, spec.DetectionTaps...)
		if spec.InProcess && p.Handlers != nil {
			sinks = append(sinks, p.Handlers)
		}
		if spec.Handoff && !spec.InProcess && p.Handlers != nil {
			p.Handoff = newHandoff(p.Handlers, spec.Registerer)
			sinks = append(sinks, p.Handoff)
			p.Handlers = p.Handoff.fromFeed()
		}
		var opts []detect.Option
		if spec.Baselines != nil {
			opts = append(opts, detect.WithHandoff(spec.Baselines, spec.HandoffWait))
		}
		det, err := detect.New(*spec.Detect, consumer.FanoutDetections(sinks...), spec.Log, opts...)
		if err != nil {
			return nil, err
		}
		// The detector sees a batch only once it was stored, and never
		// fails one, so a store retry cannot make it count a batch twice.
		p.Detector, p.Detect = det, det
	}
	switch len(flows) {
	case 0:
	case 1:
		p.Flows = flows[0]
	default:
		p.Flows = consumer.FanoutFlows(flows...)
	}
	if spec.Identity != nil && (p.Flows != nil || p.Detect != nil) {
		// Resolved in place before the store: the detector sees the
		// same, resolved, batch after it.
		next := p.Flows
		if next == nil {
			next = consumer.FanoutFlows()
		}
		p.Flows = identity.NewStage(spec.Identity, next, spec.Log)
	}
	return p, nil
}

// kubeFor is the Kubernetes config the responder needs: none for the
// gitops backend without a cluster, else the configured one.
func kubeFor(cfg Config) (*rest.Config, error) {
	kube, err := cfg.Kubernetes.RESTConfig()
	if err != nil && cfg.Respond.Backend == respond.BackendGitOps {
		return nil, nil
	}
	return kube, err
}
