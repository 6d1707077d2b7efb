// Package nab runs univariate detectors over the Numenta Anomaly Benchmark
// (../shared/nab beside the repository) and scores them the way NAB v1.1
// does: anomaly windows, a sigmoid reward for early detection, cost
// profiles, one threshold for the whole corpus chosen by a sweep, and a
// score normalised so that the null detector scores 0 and a perfect one
// 100.
package nab

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// File is one data file of the corpus with its anomaly windows.
type File struct {
	// Rel is the path under data/, e.g. "realKnownCause/nyc_taxi.csv",
	// which is also the key in the label files.
	Rel    string
	Times  []time.Time
	Values []float64
	// Windows are the anomaly windows as inclusive row indexes, in order.
	Windows [][2]int
}

// Probation is the number of leading rows that are not scored: 15% of the
// file, at most 750 (NAB's probationary period).
func (f *File) Probation() int {
	n := len(f.Times)
	p := n * 15 / 100
	if p > 750 {
		p = 750
	}
	return p
}

// Corpus is the whole benchmark: files in label-file order and the cost
// profiles.
type Corpus struct {
	Root     string
	Files    []*File
	Profiles []Profile
}

// Windows returns the number of anomaly windows in the corpus (116 for
// NAB v1.1), the unit of the normalisation.
func (c *Corpus) Windows() int {
	n := 0
	for _, f := range c.Files {
		n += len(f.Windows)
	}
	return n
}

// Profile is a NAB cost profile.
type Profile struct {
	Name       string
	TP, FP, FN float64
}

// ErrNoCorpus is returned by Load when the NAB directory is missing.
var ErrNoCorpus = errors.New("nab: corpus not found")

// Locate returns the NAB directory for a repository root: ../shared/nab
// beside the checkout, or ErrNoCorpus saying where it was looked for.
func Locate(repoRoot string) (string, error) {
	dir := filepath.Clean(filepath.Join(repoRoot, "..", "shared", "nab"))
	if _, err := os.Stat(filepath.Join(dir, "labels", "combined_windows.json")); err != nil {
		return "", fmt.Errorf("%w: expected labels/combined_windows.json under %s (the NAB corpus sits in ../shared/nab beside the repository): %v", ErrNoCorpus, dir, err)
	}
	return dir, nil
}

// Load reads data/, labels/combined_windows.json and config/profiles.json
// under root.
func Load(root string) (*Corpus, error) {
	raw, err := os.ReadFile(filepath.Join(root, "labels", "combined_windows.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCorpus, err)
	}
	var labels map[string][][2]string
	if err := json.Unmarshal(raw, &labels); err != nil {
		return nil, fmt.Errorf("nab: labels/combined_windows.json: %w", err)
	}
	profiles, err := loadProfiles(filepath.Join(root, "config", "profiles.json"))
	if err != nil {
		return nil, err
	}
	rels := make([]string, 0, len(labels))
	for rel := range labels {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	c := &Corpus{Root: root, Profiles: profiles}
	for _, rel := range rels {
		times, values, err := readSeries(filepath.Join(root, "data", rel), "value")
		if err != nil {
			return nil, err
		}
		f := &File{Rel: rel, Times: times, Values: values}
		if f.Windows, err = windowIndexes(times, labels[rel]); err != nil {
			return nil, fmt.Errorf("nab: %s: %w", rel, err)
		}
		c.Files = append(c.Files, f)
	}
	return c, nil
}

func loadProfiles(path string) ([]Profile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nab: %w", err)
	}
	var doc map[string]struct {
		CostMatrix struct {
			TP float64 `json:"tpWeight"`
			FP float64 `json:"fpWeight"`
			FN float64 `json:"fnWeight"`
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("nab: %s: %w", path, err)
	}
	var out []Profile
	for _, name := range []string{"standard", "reward_low_FP_rate", "reward_low_FN_rate"} {
		p, ok := doc[name]
		if !ok {
			return nil, fmt.Errorf("nab: %s: profile %q missing", path, name)
		}
		out = append(out, Profile{Name: name, TP: p.CostMatrix.TP, FP: p.CostMatrix.FP, FN: p.CostMatrix.FN})
	}
	return out, nil
}

func windowIndexes(times []time.Time, wins [][2]string) ([][2]int, error) {
	idx := make(map[time.Time]int, len(times))
	for i, t := range times {
		idx[t] = i
	}
	var out [][2]int
	for _, w := range wins {
		var iw [2]int
		for k := range w {
			t, err := ParseTime(w[k])
			if err != nil {
				return nil, err
			}
			i, ok := idx[t]
			if !ok {
				return nil, fmt.Errorf("window bound %s is not a timestamp of the file", w[k])
			}
			iw[k] = i
		}
		out = append(out, iw)
	}
	sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
	return out, nil
}

// ParseTime parses NAB's timestamps ("2014-04-10 07:15:00", optionally
// with fractional seconds).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("nab: bad timestamp %q", s)
}

// readSeries reads the timestamp column and the named value column of a
// CSV file with a header.
func readSeries(path, column string) ([]time.Time, []float64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("nab: %w", err)
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("nab: %s: header: %w", path, err)
	}
	ti, vi := -1, -1
	for i, h := range header {
		switch strings.TrimSpace(h) {
		case "timestamp":
			ti = i
		case column:
			vi = i
		}
	}
	if ti < 0 || vi < 0 {
		return nil, nil, fmt.Errorf("nab: %s: want columns timestamp and %s, have %v", path, column, header)
	}
	var times []time.Time
	var values []float64
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("nab: %s: %w", path, err)
		}
		if len(rec) <= ti || len(rec) <= vi {
			return nil, nil, fmt.Errorf("nab: %s:%d: short record", path, line)
		}
		t, err := ParseTime(rec[ti])
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[vi]), 64)
		if err != nil {
			return nil, nil, fmt.Errorf("nab: %s:%d: %s: %w", path, line, column, err)
		}
		times = append(times, t)
		values = append(values, v)
	}
	return times, values, nil
}

// ResultPath is where NAB keeps a detector's output for a data file:
// DIR/DETECTOR/<category>/DETECTOR_<file>.csv.
func ResultPath(dir, detector, rel string) string {
	cat, name := filepath.Split(rel)
	return filepath.Join(dir, detector, cat, detector+"_"+name)
}

// ReadResults reads a detector's anomaly_score column for every file of
// the corpus, checking that its timestamps are the data file's.
func (c *Corpus) ReadResults(dir, detector string) (map[string][]float64, error) {
	out := make(map[string][]float64, len(c.Files))
	for _, f := range c.Files {
		path := ResultPath(dir, detector, f.Rel)
		times, scores, err := readSeries(path, "anomaly_score")
		if err != nil {
			return nil, err
		}
		if len(times) != len(f.Times) {
			return nil, fmt.Errorf("nab: %s: %d rows, the data file has %d", path, len(times), len(f.Times))
		}
		for i := range times {
			if !times[i].Equal(f.Times[i]) {
				return nil, fmt.Errorf("nab: %s: row %d is %s, the data file's is %s", path, i+2, times[i], f.Times[i])
			}
		}
		out[f.Rel] = scores
	}
	return out, nil
}

// WriteResults writes scores in NAB's layout (timestamp, value,
// anomaly_score, label), so that NAB's own scorer can read them.
func (c *Corpus) WriteResults(dir, detector string, scores map[string][]float64) error {
	for _, f := range c.Files {
		s, ok := scores[f.Rel]
		if !ok || len(s) != len(f.Times) {
			return fmt.Errorf("nab: no scores or wrong length for %s", f.Rel)
		}
		path := ResultPath(dir, detector, f.Rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("nab: %w", err)
		}
		var b strings.Builder
		b.WriteString("timestamp,value,anomaly_score,label\n")
		label := make([]byte, len(f.Times))
		for _, w := range f.Windows {
			for i := w[0]; i <= w[1]; i++ {
				label[i] = 1
			}
		}
		for i, t := range f.Times {
			fmt.Fprintf(&b, "%s,%s,%s,%d\n", t.Format("2006-01-02 15:04:05"),
				strconv.FormatFloat(f.Values[i], 'g', -1, 64),
				strconv.FormatFloat(s[i], 'g', -1, 64), label[i])
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("nab: %w", err)
		}
	}
	return nil
}
