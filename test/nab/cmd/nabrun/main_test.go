package main

import (
	"testing"

	"github.com/meshguard/meshguard/test/nab"
)

// TestTuningSetsHoldNoHeldOutFile: -only tuning -phases scores the tuning
// half and its two quarters, and none of them holds a held-out file.
func TestTuningSetsHoldNoHeldOutFile(t *testing.T) {
	c := nab.LoadForTest(t)
	held := map[string]bool{}
	for _, f := range c.Half(nab.HeldOut).Files {
		held[f.Rel] = true
	}
	sets := tuningSets(c)
	if len(sets) != 3 || len(sets[0].c.Files) != 29 || len(sets[1].c.Files)+len(sets[2].c.Files) != 29 {
		t.Fatalf("want the tuning half (29 files) and two quarters of it, got %d sets", len(sets))
	}
	for _, set := range sets {
		for _, f := range set.c.Files {
			if held[f.Rel] {
				t.Errorf("%s holds the held-out file %s", set.name, f.Rel)
			}
		}
	}
}
