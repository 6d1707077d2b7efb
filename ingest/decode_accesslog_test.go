package ingest

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/models"
)

func TestParseAccessLogFields(t *testing.T) {
	var got [numTextFields]string
	if err := parseAccessLog(exampleLine+"\n", &got); err != nil {
		t.Fatal(err)
	}
	want := [numTextFields]string{
		fStartTime:                      "2020-11-25T21:26:18.409Z",
		fMethod:                         "GET",
		fPath:                           "/status/418",
		fProtocol:                       "HTTP/1.1",
		fResponseCode:                   "418",
		fResponseFlags:                  "-",
		fResponseCodeDetails:            "via_upstream",
		fConnectionTerminationDetails:   "-",
		fUpstreamTransportFailureReason: "-",
		fBytesReceived:                  "0",
		fBytesSent:                      "135",
		fDuration:                       "3",
		fUpstreamServiceTime:            "1",
		fXForwardedFor:                  "-",
		fUserAgent:                      "curl/7.73.0-DEV",
		fRequestID:                      "84961386-6d84-929d-98bd-c5aee93b5c88",
		fAuthority:                      "httpbin:8000",
		fUpstreamHost:                   "127.0.0.1:80",
		fUpstreamCluster:                "inbound|8000||",
		fUpstreamLocalAddress:           "127.0.0.1:41854",
		fDownstreamLocalAddress:         "10.44.1.27:80",
		fDownstreamRemoteAddress:        "10.44.1.23:37652",
		fRequestedServerName:            "outbound_.8000_._.httpbin.foo.svc.cluster.local",
		fRouteName:                      "default",
	}
	if got != want {
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("field %d = %q, want %q", i, got[i], want[i])
			}
		}
	}
}

func TestParseAccessLogText(t *testing.T) {
	var f models.Flow
	if err := ParseAccessLogText(exampleLine, &f); err != nil {
		t.Fatal(err)
	}
	want := models.Flow{
		TimestampMs: exampleStart.UnixMilli(),
		Reporter:    models.ReporterDestination, // inbound|8000||
		Source:      models.Source{IP: netip.MustParseAddr("10.44.1.23")},
		Destination: models.Destination{
			Service: "httpbin.foo.svc.cluster.local", // from the SNI
			Port:    8000,
		},
		Protocol:     "HTTP/1.1",
		Method:       "GET",
		Path:         "/status/418",
		PathTemplate: "/status/{id}",
		ResponseCode: 418,
		BytesSent:    135,
		DurationMs:   3,
		UserAgent:    "curl/7.73.0-DEV",
		RequestID:    "84961386-6d84-929d-98bd-c5aee93b5c88",
		// No certificate field in the stock format: Istio's inbound SNI
		// says the client proxy originated mTLS.
		TLS:   models.TLSMutual,
		Count: 1,
	}
	diffFlows(t, []models.Flow{f}, []models.Flow{want})
}

func TestParseAccessLogTextVariants(t *testing.T) {
	outbound := `[2024-03-01T10:00:00.000Z] "POST /api/v1/orders HTTP/2" 503 UF,URX upstream_reset_before_response_started{connection_failure} - "delayed connect error: 111" 512 91 12 - "203.0.113.9, 10.0.0.1" "Mozilla/5.0 (X11; Linux x86_64)" "r-1" "orders:8080" "10.44.2.7:8080" outbound|8080|v2|orders.shop.svc.cluster.local 10.44.1.5:50122 10.96.0.42:8080 10.44.1.5:41000 - -`
	tests := []struct {
		name  string
		line  string
		check func(t *testing.T, f *models.Flow)
	}{
		{"outbound with spaces in quoted fields", outbound, func(t *testing.T, f *models.Flow) {
			if f.Reporter != models.ReporterSource || f.Destination.Service != "orders.shop.svc.cluster.local" || f.Destination.Port != 8080 {
				t.Errorf("reporter/service/port = %v %q %d", f.Reporter, f.Destination.Service, f.Destination.Port)
			}
			if f.UserAgent != "Mozilla/5.0 (X11; Linux x86_64)" || f.ResponseFlags != "UF,URX" || f.ResponseCode != 503 || f.BytesReceived != 512 {
				t.Errorf("fields = %+v", f)
			}
			if f.Source.IP != netip.MustParseAddr("10.44.1.5") || f.Protocol != "HTTP/2" {
				t.Errorf("source ip / protocol = %v %q", f.Source.IP, f.Protocol)
			}
		}},
		{"tcp", `[2024-03-01T10:00:00.000Z] "- - -" 0 - - - "-" 1024 2048 60000 - "-" "-" "-" "-" "10.44.2.9:5432" outbound|5432||pg.db.svc.cluster.local 10.44.1.5:40000 10.96.0.9:5432 10.44.1.5:39999 - -`,
			func(t *testing.T, f *models.Flow) {
				if f.Method != "" || f.Path != "" || f.Protocol != "" || f.UserAgent != "" || f.RequestID != "" {
					t.Errorf("unset fields not empty: %+v", f)
				}
				if f.BytesReceived != 1024 || f.BytesSent != 2048 || f.DurationMs != 60000 || f.Destination.Port != 5432 {
					t.Errorf("numbers = %+v", f)
				}
			}},
		{"quotes inside the user agent stay in the user agent", strings.Replace(exampleLine, `"curl/7.73.0-DEV"`, `"evil" "x" "y"`, 1),
			func(t *testing.T, f *models.Flow) {
				if f.UserAgent != `evil" "x" "y` || f.Destination.Service != "httpbin.foo.svc.cluster.local" || f.Source.IP != netip.MustParseAddr("10.44.1.23") {
					t.Errorf("ua %q service %q ip %v", f.UserAgent, f.Destination.Service, f.Source.IP)
				}
			}},
		{"quote in path", strings.Replace(exampleLine, "/status/418", `/a"b`, 1),
			func(t *testing.T, f *models.Flow) {
				if f.Path != `/a"b` || f.ResponseCode != 418 {
					t.Errorf("path %q code %d", f.Path, f.ResponseCode)
				}
			}},
		{"plaintext inbound: authority names the service", strings.Replace(exampleLine, "outbound_.8000_._.httpbin.foo.svc.cluster.local", "-", 1),
			func(t *testing.T, f *models.Flow) {
				if f.Destination.Service != "httpbin" || f.Destination.Port != 8000 {
					t.Errorf("service %q port %d", f.Destination.Service, f.Destination.Port)
				}
			}},
		{"ipv6 remote", strings.Replace(exampleLine, "10.44.1.23:37652", "[fd00::17]:37652", 1),
			func(t *testing.T, f *models.Flow) {
				if f.Source.IP != netip.MustParseAddr("fd00::17") {
					t.Errorf("ip %v", f.Source.IP)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f models.Flow
			if err := ParseAccessLogText(tt.line, &f); err != nil {
				t.Fatal(err)
			}
			checkFlowStrings(t, &f)
			tt.check(t, &f)
		})
	}
}

func TestParseAccessLogTextErrors(t *testing.T) {
	for _, line := range []string{
		"",
		"hello world",
		"[2020-11-25T21:26:18.409Z]",
		`[2020-11-25T21:26:18.409Z] "GET"`,
		`[2020-11-25T21:26:18.409Z] "GET /x HTTP/1.1" 200`,
		strings.Replace(exampleLine, " 418 - via", " abc - via", 1), // code not a number
		strings.Replace(exampleLine, " 0 135 3 ", " 0 1x5 3 ", 1),   // bytes not a number
		strings.Replace(exampleLine, "2020-11-25T21:26:18.409Z", "yesterday", 1),
		strings.Replace(exampleLine, " 418 - via", " 70000 - via", 1), // code out of range
		exampleLine[:len(exampleLine)/2],
	} {
		var f models.Flow
		f.Method = "stale"
		if err := ParseAccessLogText(line, &f); err == nil {
			t.Errorf("ParseAccessLogText(%q) = nil error, flow %+v", line, f)
		}
		if f != (models.Flow{}) {
			t.Errorf("ParseAccessLogText(%q) left %+v, want a zero flow", line, f)
		}
	}
}
