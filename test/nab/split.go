package nab

// The held-out protocol (issue 18). The corpus is split once, by file,
// before any result is looked at: the files in sorted order of their path
// under data/ (Load's order) alternate between the halves, the first, third,
// fifth ... file tuning and the second, fourth, sixth ... held out. That
// gives 29 files on each side with every category on both. Every setting of
// a detector is chosen by its score on the tuning half alone; the held-out
// half is scored only to report, never to choose. One configuration serves
// every file (nothing per file or per category), the detector is causal and
// streaming (one pass, a score from the point and those before it), and the
// threshold is chosen by NAB's sweep on whichever set of files is being
// scored, as NAB does for the whole corpus.

// Half names one side of the split.
type Half int

const (
	// Tuning is the half every setting is chosen on.
	Tuning Half = iota
	// HeldOut is the half that is only reported.
	HeldOut
)

func (h Half) String() string {
	if h == Tuning {
		return "tuning"
	}
	return "held-out"
}

// HalfOf is the half the file at position i of Load's sorted order belongs
// to.
func HalfOf(i int) Half {
	return Half(i % 2)
}

// Half returns the files of one half as a corpus of its own, sharing the
// files and profiles; its Score normalises by that half's windows.
func (c *Corpus) Half(h Half) *Corpus {
	out := &Corpus{Root: c.Root, Profiles: c.Profiles}
	for i, f := range c.Files {
		if HalfOf(i) == h {
			out.Files = append(out.Files, f)
		}
	}
	return out
}

// Quarters splits c's files into two corpora, alternately (of the tuning
// half: its two quarters, q1 and q2). A choice that gains on one quarter
// and loses on the other rests on which files it suits, not on a better
// model of them (BENCHMARKS.md, "Does the search carry to files it did
// not see?").
//
// The quarters alternate as the halves do, so they are the halves' split
// applied to c.
func (c *Corpus) Quarters() [2]*Corpus {
	return [2]*Corpus{c.Half(Tuning), c.Half(HeldOut)}
}
