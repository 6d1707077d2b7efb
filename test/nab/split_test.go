package nab

import (
	"path/filepath"
	"sort"
	"testing"
)

// TestSplitIsFixedAndBalanced checks the held-out protocol's split: the
// halves partition the corpus, alternate in sorted file order, and both
// hold every category and about half the windows.
func TestSplitIsFixedAndBalanced(t *testing.T) {
	c := LoadForTest(t)
	if !sort.SliceIsSorted(c.Files, func(a, b int) bool { return c.Files[a].Rel < c.Files[b].Rel }) {
		t.Fatal("Load's files are not in sorted order: the split would depend on map order")
	}
	tune, held := c.Half(Tuning), c.Half(HeldOut)
	if len(tune.Files) != 29 || len(held.Files) != 29 {
		t.Fatalf("halves of %d and %d files, want 29 and 29", len(tune.Files), len(held.Files))
	}
	side := map[string]Half{}
	for _, f := range tune.Files {
		side[f.Rel] = Tuning
	}
	for _, f := range held.Files {
		if _, dup := side[f.Rel]; dup {
			t.Fatalf("%s is in both halves", f.Rel)
		}
		side[f.Rel] = HeldOut
	}
	cats := map[string][2]int{}
	for i, f := range c.Files {
		if side[f.Rel] != Half(i%2) {
			t.Errorf("%s (position %d) is in the %s half", f.Rel, i, side[f.Rel])
		}
		n := cats[filepath.Dir(f.Rel)]
		n[side[f.Rel]]++
		cats[filepath.Dir(f.Rel)] = n
	}
	for cat, n := range cats {
		if n[0] == 0 || n[1] == 0 {
			t.Errorf("category %s has %d tuning and %d held-out files", cat, n[0], n[1])
		}
	}
	if w := tune.Windows() + held.Windows(); w != c.Windows() {
		t.Errorf("halves hold %d windows, the corpus %d", w, c.Windows())
	}
	t.Logf("tuning: %d files, %d windows; held-out: %d files, %d windows", len(tune.Files), tune.Windows(), len(held.Files), held.Windows())
}

// TestQuartersAlternate checks the tuning half's quarters: they partition
// it, alternating in its order, 15 and 14 files.
func TestQuartersAlternate(t *testing.T) {
	tune := LoadForTest(t).Half(Tuning)
	q := tune.Quarters()
	if len(q[0].Files) != 15 || len(q[1].Files) != 14 {
		t.Fatalf("quarters of %d and %d files, want 15 and 14", len(q[0].Files), len(q[1].Files))
	}
	for i, f := range tune.Files {
		if got := q[i%2].Files[i/2]; got != f {
			t.Errorf("position %d of the tuning half: quarter %d holds %s there, want %s", i, i%2+1, got.Rel, f.Rel)
		}
	}
	if q[0].Root != tune.Root || len(q[1].Profiles) != len(tune.Profiles) {
		t.Error("a quarter does not share the half's root and profiles")
	}
}
