package ingest

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/scenario"
)

// jsonLogs is what the collector's kafka exporter writes as otlp_json.
func jsonLogs(ld plog.Logs) []byte {
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	if err != nil {
		panic(err)
	}
	return b
}

// TestFastJSONMatchesPdata runs the JSON log messages of the table tests,
// every prefix of each, and hand-made variants through both paths.
func TestFastJSONMatchesPdata(t *testing.T) {
	var collector [][]byte // as the collector writes them: the fast path must take these
	for _, s := range seedLogs() {
		if s[0] == '{' {
			collector = append(collector, s)
		}
	}
	collector = append(collector, jsonLogs(benchLogs(false)), jsonLogs(benchLogs(true)))
	escaped := oneLog(map[string]string{"k8s.pod.name": "web-6d4cf56db6-x2k9z", "k8s.namespace.name": "shop"}, func(lr plog.LogRecord) {
		istioAttrs(lr.Attributes())
		lr.Attributes().PutStr("user_agent", "Mozilla/5.0 \"quoted\" \\ back\tslash <tag> & é 漢 \u0001")
		lr.Attributes().PutStr("path", "/a/\u2028/b")
		lr.Body().SetStr(exampleLine)
		lr.SetTraceID(traceID)
		lr.SetSeverityText("INFO")
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
		lr.SetEventName("access")
		lr.SetTimestamp(1714564800000000000)
		lr.Attributes().PutInt("response_code", 418)
		lr.Attributes().PutBool("sampled", true)
	})
	collector = append(collector, jsonLogs(escaped))
	// The scenario generator's realistic mesh, as serve's e2e test sends it.
	gen, err := scenario.NewWith(scenario.RealisticMesh(), time.Date(2026, 11, 17, 14, 0, 0, 0, time.UTC), 3, scenario.Options{Scale: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range scenario.Split(gen.Next(10*time.Second), 40)[:3] {
		collector = append(collector, jsonLogs(part))
	}

	taken := 0
	for _, v := range collector {
		if compareBothAs(t, EncodingJSON, v) {
			taken++
		}
		if len(v) < 4000 {
			for n := 0; n < len(v); n++ {
				compareBothAs(t, EncodingJSON, v[:n])
			}
		}
	}
	// Three seeds need pdata: a double value, an array value, invalid UTF-8.
	if taken < len(collector)-3 {
		t.Errorf("fast path taken for %d of %d messages the collector writes", taken, len(collector))
	}

	base := string(jsonLogs(escaped))
	variants := map[string]string{
		"snake_case":             strings.Replace(base, `"resourceLogs"`, `"resource_logs"`, 1),
		"unknown field":          strings.Replace(base, `"scopeLogs"`, `"x":1,"scopeLogs"`, 1),
		"time as a number":       replaceTime(base, false),
		"time with leading zero": replaceTime(base, true),
		"null value":             strings.Replace(base, `"value":{"stringValue":"GET"}`, `"value":null`, 1),
		"int unquoted":           strings.Replace(base, `"intValue":"418"`, `"intValue":418`, 1),
		"int negative":           strings.Replace(base, `"intValue":"418"`, `"intValue":"-418"`, 1),
		"bool quoted":            strings.Replace(base, `"boolValue":true`, `"boolValue":"true"`, 1),
		"severity as a name":     strings.Replace(base, `"severityNumber":9`, `"severityNumber":"SEVERITY_NUMBER_INFO"`, 1),
		"severity leading zero":  strings.Replace(base, `"severityNumber":9`, `"severityNumber":09`, 1),
		"severity fraction":      strings.Replace(base, `"severityNumber":9`, `"severityNumber":9.0`, 1),
		"surrogate pair":         strings.Replace(base, `\"quoted\"`, `\ud83d\ude00`, 1),
		"lone surrogate":         strings.Replace(base, `\"quoted\"`, `\ud83d`, 1),
		"bad escape":             strings.Replace(base, `\"quoted\"`, `\x`, 1),
		"unicode escapes":        strings.Replace(base, `\"quoted\"`, `\u00e9\u0041\u0000\/`, 1),
		"raw control character":  strings.Replace(base, `\"quoted\"`, "\x01", 1),
		"invalid UTF-8":          strings.Replace(base, `\"quoted\"`, "\xff\xfe", 1),
		"short trace id":         strings.Replace(base, `"traceId":"`, `"traceId":"0`, 1),
		"upper-case trace id":    strings.Replace(base, `"traceId":"0102`, `"traceId":"0A0B`, 1),
		"empty trace id":         strings.Replace(base, `"traceId":"0102030405060708090a0b0c0d0e0f10"`, `"traceId":""`, 1),
		"resource after scopes":  resourceLast(base),
		"no resource":            strings.Replace(base, base[strings.Index(base, `"resource":`):strings.Index(base, `"scopeLogs"`)], "", 1),
		"second body":            strings.Replace(base, `"body":`, `"body":{},"body":`, 1),
		"second key":             strings.Replace(base, `{"key":"path",`, `{"key":"x","key":"path",`, 1),
		"empty key":              strings.Replace(base, `{"key":"path",`, `{"key":"",`, 1),
		"trailing data":          base + "x",
		"trailing space":         base + " \n",
		"spaces between tokens":  strings.NewReplacer(`":`, `" : `, `,"`, ` , "`, `{`, `{ `, `}`, ` }`).Replace(base),
		"empty value":            strings.Replace(base, `"value":{"stringValue":"GET"}`, `"value":{}`, 1),
		"double value":           strings.Replace(base, `"intValue":"418"`, `"doubleValue":418`, 1),
		"kvlist body":            strings.Replace(base, `"body":{"stringValue":`, `"body":{"kvlistValue":{}},"x":{"stringValue":`, 1),
	}
	for name, v := range variants {
		if v == base {
			t.Errorf("variant %q left the message unchanged: its replacement no longer matches", name)
			continue
		}
		t.Run(name, func(t *testing.T) { compareBothAs(t, EncodingJSON, []byte(v)) })
	}
	// Random edits with the bytes JSON's grammar turns on: each message
	// either falls back or decodes as pdata does.
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = `{}[]":,\\/ 0123456789-.eEtrufalsnx` + "\xff\x01"
	for _, v := range collector {
		for range 200 {
			m := []byte(string(v))
			for range 1 + rng.IntN(3) {
				i := rng.IntN(len(m))
				c := alphabet[rng.IntN(len(alphabet))]
				switch rng.IntN(3) {
				case 0:
					m[i] = c
				case 1:
					m = append(m[:i], m[i+1:]...)
				default:
					m = append(m[:i], append([]byte{c}, m[i:]...)...)
				}
			}
			compareBothAs(t, EncodingJSON, m)
		}
	}

	if !compareBothAs(t, EncodingJSON, []byte(variants["spaces between tokens"])) {
		t.Error("fast path refused whitespace between tokens")
	}
	if !compareBothAs(t, EncodingJSON, []byte(variants["unicode escapes"])) {
		t.Error("fast path refused unicode escapes")
	}
}

func replaceTime(s string, leadingZero bool) string {
	i := strings.Index(s, `"timeUnixNano":"`)
	if i < 0 {
		return s
	}
	j := i + len(`"timeUnixNano":"`)
	k := j + strings.IndexByte(s[j:], '"')
	if leadingZero {
		return s[:j] + "0" + s[j:]
	}
	return s[:j-1] + s[j:k] + s[k+1:]
}

// resourceLast moves the first resource behind its scope logs.
func resourceLast(s string) string {
	i := strings.Index(s, `"resource":`)
	j := strings.Index(s, `"scopeLogs"`)
	if i < 0 || j < i {
		return s
	}
	res := s[i:j] // `"resource":{...},`
	rest := s[j:]
	end := strings.Index(rest, `,"schemaUrl"`)
	if end < 0 {
		end = strings.LastIndex(rest, "]}]}") + 1
	}
	return s[:i] + rest[:end] + "," + strings.TrimSuffix(res, ",") + rest[end:]
}

func FuzzFastJSONMatchesPdata(f *testing.F) {
	for _, s := range seedLogs() {
		if s[0] == '{' {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		compareBothAs(t, EncodingJSON, value)
	})
}
