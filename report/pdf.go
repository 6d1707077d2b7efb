package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/meshguard/meshguard/posture"
)

// pdfDoc writes the report on A4 landscape pages: a title, then each
// section as a heading and a table whose rows wrap and whose header
// repeats on every page.
type pdfDoc struct {
	f  *fpdf.Fpdf
	tr func(string) string
}

const (
	pdfMargin = 12.0
	pdfLine   = 4.2 // mm per line of table text
)

func renderPDF(w io.Writer, r *Report) error {
	f := fpdf.New("L", "mm", "A4", "")
	f.SetMargins(pdfMargin, pdfMargin, pdfMargin)
	f.SetAutoPageBreak(true, pdfMargin+4)
	f.SetTitle(r.Title, true)
	f.SetCreator("meshguard", true)
	f.AliasNbPages("{nb}")
	d := &pdfDoc{f: f, tr: f.UnicodeTranslatorFromDescriptor("")}
	f.SetFooterFunc(func() {
		f.SetY(-pdfMargin)
		f.SetFont("Helvetica", "", 8)
		f.SetTextColor(90, 90, 90)
		f.CellFormat(0, 5, d.tr(fmt.Sprintf("%s, %s to %s UTC - page %d of {nb}", r.Title,
			r.From.Format("2006-01-02 15:04"), r.To.Format("2006-01-02 15:04"), f.PageNo())), "", 0, "C", false, 0, "")
	})
	f.AddPage()
	d.title(r)
	d.controls(r)
	d.coverage(r)
	d.policies(r)
	d.incidents(r)
	if err := f.Error(); err != nil {
		return fmt.Errorf("report pdf: %w", err)
	}
	if err := f.Output(w); err != nil {
		return fmt.Errorf("report pdf: %w", err)
	}
	return nil
}

// clean makes telemetry printable: one line, no control characters, in
// the core fonts' code page (what it lacks prints as '?').
func (d *pdfDoc) clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return d.tr(s)
}

func (d *pdfDoc) title(r *Report) {
	f := d.f
	f.SetFont("Helvetica", "B", 18)
	f.CellFormat(0, 10, d.tr(r.Title), "", 1, "L", false, 0, "")
	f.SetFont("Helvetica", "", 10)
	lines := []string{
		fmt.Sprintf("Period: %s to %s (UTC). Generated %s.", r.From.Format(time.DateTime), r.To.Format(time.DateTime), r.GeneratedAt.Format(time.DateTime)),
		fmt.Sprintf("Controls: %d pass, %d gap. Requests observed: %d (%s mTLS, %s plaintext, %s unknown).",
			r.Passed, r.Gapped, r.Coverage.Requests, pct(r.Coverage.MTLSShare), pct(r.Coverage.PlaintextShare), pct(r.Coverage.UnknownShare)),
		fmt.Sprintf("Plaintext edges: %d. Workloads: %d, no ALLOW policy: %d, not STRICT: %d. Incidents: %d, detections: %d, audit rows: %d.",
			len(r.PlaintextEdges), len(r.Identities), len(r.Uncovered), len(r.NotStrict), len(r.Incidents), len(r.Detections), len(r.Actions)),
	}
	if !r.ClusterRead {
		lines = append(lines, "The cluster's policies were not read: mTLS modes and ALLOW coverage are unknown, and the controls that need them are gaps.")
	}
	for _, l := range lines {
		f.MultiCell(0, 5, d.tr(l), "", "L", false)
	}
	f.Ln(3)
}

func (d *pdfDoc) heading(s string) {
	f := d.f
	_, pageH := f.GetPageSize()
	if f.GetY() > pageH-45 {
		f.AddPage()
	}
	f.Ln(2)
	f.SetFont("Helvetica", "B", 13)
	f.SetTextColor(0, 0, 0)
	f.CellFormat(0, 8, d.tr(s), "", 1, "L", false, 0, "")
}

func (d *pdfDoc) note(s string) {
	d.f.SetFont("Helvetica", "", 9)
	d.f.MultiCell(0, 4.5, d.clean(s), "", "L", false)
	d.f.Ln(1)
}

// table writes rows under header, widths in mm; a cell whose text is
// "PASS" or "GAP" is coloured.
func (d *pdfDoc) table(header []string, widths []float64, rows [][]string) {
	f := d.f
	if len(rows) == 0 {
		d.note("(none)")
		return
	}
	drawHeader := func() {
		f.SetFont("Helvetica", "B", 8.5)
		f.SetFillColor(230, 230, 230)
		f.SetTextColor(0, 0, 0)
		for i, h := range header {
			f.CellFormat(widths[i], 6, d.tr(h), "1", 0, "L", true, 0, "")
		}
		f.Ln(-1)
	}
	_, pageH := f.GetPageSize()
	bottom := pageH - pdfMargin - 4
	drawHeader()
	f.SetFont("Helvetica", "", 8)
	for _, row := range rows {
		lines := make([][]string, len(row))
		n := 1
		for i, cell := range row {
			lines[i] = f.SplitText(d.clean(cell), widths[i]-2)
			n = max(n, len(lines[i]))
		}
		h := float64(n)*pdfLine + 1.5
		if f.GetY()+h > bottom {
			f.AddPage()
			drawHeader()
			f.SetFont("Helvetica", "", 8)
		}
		x, y := f.GetX(), f.GetY()
		for i := range row {
			f.Rect(x, y, widths[i], h, "D")
			switch row[i] {
			case "PASS":
				f.SetTextColor(0, 110, 0)
				f.SetFont("Helvetica", "B", 8)
			case "GAP":
				f.SetTextColor(170, 0, 0)
				f.SetFont("Helvetica", "B", 8)
			}
			for j, l := range lines[i] {
				f.SetXY(x+1, y+0.75+float64(j)*pdfLine)
				f.CellFormat(widths[i]-2, pdfLine, l, "", 0, "L", false, 0, "")
			}
			f.SetTextColor(0, 0, 0)
			f.SetFont("Helvetica", "", 8)
			x += widths[i]
		}
		f.SetXY(pdfMargin, y+h)
	}
	f.Ln(2)
}

func (d *pdfDoc) controls(r *Report) {
	d.heading("Controls")
	var rows [][]string
	for _, c := range r.Controls {
		rows = append(rows, []string{c.Framework, c.ID, c.Requirement, strings.ToUpper(c.Verdict), c.Why, strings.Join(c.Evidence, "; ")})
	}
	d.table([]string{"Framework", "Control", "Requirement (paraphrase)", "Verdict", "Why", "Evidence"},
		[]float64{28, 30, 62, 15, 55, 83}, rows)
	d.heading("Sources")
	seen := map[string]bool{}
	for _, c := range r.Controls {
		if !seen[c.Source] {
			seen[c.Source] = true
			d.note(c.Source)
		}
	}
}

func (d *pdfDoc) coverage(r *Report) {
	d.heading("mTLS coverage by day")
	var rows [][]string
	for _, t := range r.Trend {
		rows = append(rows, []string{t.Day, fmt.Sprint(t.Requests), pct(t.MTLSShare), pct(t.PlaintextShare), pct(t.UnknownShare)})
	}
	d.table([]string{"Day (UTC)", "Requests", "mTLS", "Plaintext", "Unknown"}, []float64{40, 40, 40, 40, 40}, rows)
	d.heading("Plaintext flows")
	rows = nil
	for _, e := range r.PlaintextEdges {
		rows = append(rows, []string{e.Source.Name(), e.Destination.Name(), fmt.Sprint(e.Port), fmt.Sprint(e.Plaintext),
			e.PlaintextFirstSeen.Format(time.DateTime), e.PlaintextLastSeen.Format(time.DateTime), strings.Join(e.SampleRequestIDs, ", ")})
	}
	d.table([]string{"Source", "Destination", "Port", "Plaintext", "First seen", "Last seen", "Sample request ids"},
		[]float64{50, 50, 14, 20, 33, 33, 73}, rows)
	d.heading("Identities")
	rows = nil
	for _, i := range r.Identities {
		rows = append(rows, []string{i.Namespace + "/" + i.Workload, i.Identity, strings.Join(i.Principals, ", ")})
	}
	d.table([]string{"Workload", "Identity", "Principals"}, []float64{80, 25, 168}, rows)
}

func (d *pdfDoc) policies(r *Report) {
	d.heading("Policies in force")
	var rows [][]string
	for _, p := range r.Policies {
		rows = append(rows, []string{p.Kind, p.Namespace, p.Name, p.Setting, p.Scope})
	}
	d.table([]string{"Kind", "Namespace", "Name", "Setting", "Scope"}, []float64{45, 55, 70, 40, 63}, rows)
	names := func(n int) string { return fmt.Sprintf("%d workloads", n) }
	d.note("No ALLOW policy (allowed by default): " + names(len(r.Uncovered)) + partyList(r.Uncovered))
	d.note("Not under STRICT mTLS: " + names(len(r.NotStrict)) + partyList(r.NotStrict))
	d.heading("Changes to policies")
	rows = nil
	for _, a := range r.PolicyChanges {
		rows = append(rows, []string{a.At.Format(time.DateTime), a.Kind, a.State, a.Actor, a.Policy, a.Reason})
	}
	d.table([]string{"At (UTC)", "Action", "State", "Actor", "Policy", "Reason"}, []float64{33, 25, 22, 40, 70, 83}, rows)
}

func (d *pdfDoc) incidents(r *Report) {
	d.heading("Incidents")
	var rows [][]string
	for _, x := range r.Incidents {
		ttr := "no response"
		if x.TimeToRespondSeconds != nil {
			ttr = seconds(*x.TimeToRespondSeconds)
		}
		rows = append(rows, []string{x.ID, strings.Join(x.Kinds, ", "), x.Severity, fmt.Sprint(x.Detections),
			x.Started.Format(time.DateTime), seconds(x.TimeToDetectSeconds), ttr})
	}
	d.table([]string{"Incident", "Kinds", "Severity", "Detections", "Started (UTC)", "Time to detect", "Time to respond"},
		[]float64{60, 60, 20, 20, 35, 38, 40}, rows)
	d.heading("Detections")
	rows = nil
	for _, x := range r.Detections {
		rows = append(rows, []string{x.DetectedAt.Format(time.DateTime), x.Kind, x.Severity, x.Source, x.Destination, seconds(x.TimeToDetectSeconds)})
	}
	d.table([]string{"Detected (UTC)", "Kind", "Severity", "Source", "Destination", "Time to detect"}, []float64{35, 40, 20, 70, 70, 38}, rows)
	d.heading("Actions (audit log)")
	rows = nil
	for _, a := range r.Actions {
		rows = append(rows, []string{a.At.Format(time.DateTime), a.Kind, a.Mode, a.State, a.Actor, a.Target, a.Reason})
	}
	d.table([]string{"At (UTC)", "Action", "Mode", "State", "Actor", "Target", "Reason"}, []float64{33, 25, 20, 20, 35, 70, 70}, rows)
}

func partyList(ps []posture.Party) string {
	if len(ps) == 0 {
		return ""
	}
	var s []string
	for _, p := range ps {
		s = append(s, p.Name())
	}
	return ": " + strings.Join(s, ", ")
}
