package report

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/posture"
	"github.com/meshguard/meshguard/test/testenv"
	"github.com/meshguard/meshguard/test/zerotrust"
)

// seeded returns the report of the zerotrust world, read back from
// ClickHouse and the cluster.
func seeded(t *testing.T) (*Report, zerotrust.World) {
	t.Helper()
	store, _ := zerotrust.Store(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kube := testenv.KubeConfig(t)
	w := zerotrust.Seed(t, store, kube)
	r := &Reader{Store: store, Posture: &posture.Reader{Edges: store, Kube: kube, RootNamespace: w.Root}}
	rep, err := r.Report(ctx, w.From, w.To)
	if err != nil {
		t.Fatal(err)
	}
	return rep, w
}

func TestReportFromClickHouseAndTheCluster(t *testing.T) {
	rep, w := seeded(t)
	if rep.Coverage.MTLS != w.MTLS || rep.Coverage.Plaintext != w.Plaintext || rep.Coverage.Unknown != w.Unknown {
		t.Errorf("coverage %+v, want %d mTLS, %d plaintext, %d unknown", rep.Coverage, w.MTLS, w.Plaintext, w.Unknown)
	}
	if len(rep.Trend) != 2 || rep.Trend[0].MTLS != 10 || rep.Trend[0].Plaintext != 0 {
		t.Errorf("trend %+v, want two days, the first with 10 mTLS requests only", rep.Trend)
	}
	var trendTotal uint64
	for _, d := range rep.Trend {
		trendTotal += d.Requests
	}
	if trendTotal != rep.Coverage.Requests {
		t.Errorf("the days add up to %d requests, the period to %d", trendTotal, rep.Coverage.Requests)
	}
	inc := map[string]Incident{}
	for _, x := range rep.Incidents {
		inc[x.ID] = x
	}
	a := inc[w.Answered]
	if a.TimeToRespondSeconds == nil || *a.TimeToRespondSeconds != w.AnsweredTTR.Seconds() || a.TimeToDetectSeconds != w.AnsweredTTD.Seconds() {
		t.Errorf("answered incident %+v, want detected after %v and answered %v later", a, w.AnsweredTTD, w.AnsweredTTR)
	}
	if u, ok := inc[w.Unanswered]; !ok || u.TimeToRespondSeconds != nil {
		t.Errorf("unanswered incident %+v (found %v), want no response", u, ok)
	}
	if len(rep.Actions) != 2 || rep.Actions[1].Actor != "cli:eve" || len(rep.PolicyChanges) != 2 {
		t.Errorf("actions %+v, want the apply and cli:eve's revoke, both policy changes", rep.Actions)
	}
	if len(rep.Policies) == 0 || !rep.ClusterRead {
		t.Errorf("no policies in force read from the cluster")
	}
	verdicts := map[string]string{}
	for _, c := range rep.Controls {
		verdicts[c.Framework+" "+c.ID] = c.Verdict
		if len(c.Evidence) == 0 || c.Source == "" || c.Requirement == "" {
			t.Errorf("control %s %s lacks evidence, source or requirement: %+v", c.Framework, c.ID, c)
		}
	}
	want := map[string]string{
		"NIST SP 800-207 Tenet 2":     Gap,  // plaintext seen
		"NIST SP 800-207 Tenet 5":     Pass, // traffic monitored
		"PCI DSS v4.0 Req. 7":         Gap,  // workloads without ALLOW
		"PCI DSS v4.0 Req. 10 (10.2)": Pass,
		"SOC 2 CC6.7":                 Gap,
		"SOC 2 CC7.2":                 Pass,
		"SOC 2 CC7.4":                 Gap, // the hostile incident got no response
	}
	for id, v := range want {
		if verdicts[id] != v {
			t.Errorf("%s: %q, want %q", id, verdicts[id], v)
		}
	}
	if rep.Passed+rep.Gapped != len(rep.Controls) || rep.Passed == 0 || rep.Gapped == 0 {
		t.Errorf("%d pass + %d gap of %d controls", rep.Passed, rep.Gapped, len(rep.Controls))
	}
}

func TestReportRendersEveryFormatWithTelemetryEscaped(t *testing.T) {
	rep, _ := seeded(t)
	for _, format := range []string{"json", "md", "html"} {
		var buf bytes.Buffer
		if err := Render(&buf, rep, format); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		out := buf.String()
		if strings.Contains(out, zerotrust.Hostile) || strings.Contains(out, "<img") {
			t.Errorf("%s carries the hostile name unescaped", format)
		}
		if !strings.Contains(out, "CC7.4") || !strings.Contains(out, "Tenet 2") {
			t.Errorf("%s lacks the control mapping", format)
		}
		if format == "json" {
			var back Report
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Controls) != len(rep.Controls) {
				t.Errorf("json does not read back: %v", err)
			}
		}
	}
	var md bytes.Buffer
	Render(&md, rep, "md")
	if !strings.Contains(md.String(), `&lt;img src=x onerror=alert(1)&gt;`) {
		t.Errorf("md does not show the hostile name as text")
	}
	var html bytes.Buffer
	Render(&html, rep, "html")
	if !strings.Contains(html.String(), `&lt;img src=x onerror=alert(1)&gt;`) {
		t.Errorf("html does not show the hostile name as text")
	}
}

// poppler returns pdftoppm and pdfinfo, installing them through
// test/infra/poppler.sh when missing; without them the test fails under
// CI and skips elsewhere, saying how to install them.
func poppler(t *testing.T) (pdftoppm, pdfinfo string) {
	t.Helper()
	script := filepath.Join(testenv.RepoRoot(t), "test", "infra", "poppler.sh")
	out, err := exec.Command("bash", script, "start").CombinedOutput()
	if err == nil {
		return "/usr/bin/pdftoppm", "/usr/bin/pdfinfo"
	}
	msg := "poppler for the PDF test: " + script + " start: " + err.Error() + "\n" + string(out) +
		"\ninstall it with `bash test/infra/poppler.sh start` (apt-get install poppler-utils, as root)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return "", ""
}

// inked is the share of a page's pixels that are not near white.
func inked(img image.Image) float64 {
	b := img.Bounds()
	var n int
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xd000 || g < 0xd000 || bl < 0xd000 {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy())
}

// TestReportPDFRendersReadablePages renders the PDF with poppler: it
// parses, has the pages it says, and none is blank. MESHGUARD_REPORT_PNG
// names a directory to keep the page images in, for a person to look at.
func TestReportPDFRendersReadablePages(t *testing.T) {
	pdftoppm, pdfinfo := poppler(t)
	rep, _ := seeded(t)
	dir := t.TempDir()
	if keep := os.Getenv("MESHGUARD_REPORT_PNG"); keep != "" {
		dir = keep
	}
	pdf := filepath.Join(dir, "report.pdf")
	var buf bytes.Buffer
	if err := Render(&buf, rep, "pdf"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pdf, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command(pdfinfo, pdf).CombinedOutput()
	if err != nil {
		t.Fatalf("pdfinfo: %v\n%s", err, info)
	}
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindSubmatch(info)
	if m == nil {
		t.Fatalf("pdfinfo names no page count:\n%s", info)
	}
	pages, _ := strconv.Atoi(string(m[1]))
	if pages < 2 {
		t.Errorf("%d pages, want the controls and the evidence over at least 2", pages)
	}
	if !strings.Contains(string(info), "meshguard zero-trust compliance report") {
		t.Errorf("pdfinfo shows no title:\n%s", info)
	}
	if out, err := exec.Command(pdftoppm, "-png", "-r", "60", pdf, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "page-*.png"))
	if len(pngs) != pages {
		t.Fatalf("pdftoppm rendered %d pages, pdfinfo counts %d", len(pngs), pages)
	}
	for _, p := range pngs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if ink := inked(img); ink < 0.005 {
			t.Errorf("%s is blank (%.2f%% inked)", filepath.Base(p), 100*ink)
		}
	}
}
