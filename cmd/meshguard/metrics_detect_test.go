package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/detect"
)

// The early-raise counters are served beside the detector's others.
func TestRegisterDetectorExportsEarlyCounters(t *testing.T) {
	det, err := detect.New(detect.DefaultConfig(), consumer.FanoutDetections(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	registerDetector(reg, det)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"meshguard_detect_early_total", "meshguard_detect_early_unconfirmed_total", "meshguard_detect_flows_total"} {
		if !got[name] {
			t.Errorf("metric %s not registered; have %v", name, got)
		}
	}
}
