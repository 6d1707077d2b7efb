package ingest

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/models"
)

// The destination proxy's dry_run_allow_result label (Envoy's rbac
// metadata istio_dry_run_allow_shadow_engine_result, as
// deploy/istio/mesh-config.yaml logs it) becomes Flow.DryRunAllow, in
// every encoding and on both decoding paths; anything but "allowed" or
// "denied" is unknown.
func TestDecodeLogsDryRunAllow(t *testing.T) {
	for value, want := range map[string]models.DryRun{"allowed": models.DryRunAllowed, "denied": models.DryRunDenied,
		"-": models.DryRunUnknown, "": models.DryRunUnknown, "Denied": models.DryRunUnknown} {
		ld := oneLog(map[string]string{"k8s.namespace.name": "billing"}, func(lr plog.LogRecord) {
			a := lr.Attributes()
			a.PutStr("start_time", "2024-05-01T12:00:00.000Z")
			a.PutStr("reporter", "destination")
			a.PutStr("destination_workload", "payments-v1")
			a.PutStr("source_principal", "spiffe://cluster.local/ns/shop/sa/checkout")
			if value != "" {
				a.PutStr("dry_run_allow_result", value)
			}
		})
		for _, e := range encodings {
			flows, err, _ := decodeAll(t, SignalLogs, e.enc, e.logs(ld))
			if err != nil || len(flows) != 1 {
				t.Fatalf("%s %q: %d flows, %v", e.name, value, len(flows), err)
			}
			if flows[0].DryRunAllow != want {
				t.Errorf("%s: dry_run_allow_result %q decoded as %d, want %d", e.name, value, flows[0].DryRunAllow, want)
			}
		}
	}
}
