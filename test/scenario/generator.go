package scenario

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Generator plays a Mesh in event time.
type Generator struct {
	mesh  Mesh
	rng   *rand.Rand
	now   time.Time
	svc   map[string]*Service
	ip    map[string]netip.Addr
	calls []Call
	// Body adds Istio's default text line as the log body, as a proxy
	// configured with labels and the default text format sends it.
	Body bool
}

// New returns a generator whose clock starts at start.
func New(mesh Mesh, start time.Time, seed uint64) *Generator {
	g := &Generator{
		mesh:  mesh,
		rng:   rand.New(rand.NewPCG(seed, seed^0x5eed)),
		now:   start.UTC(),
		svc:   map[string]*Service{},
		ip:    map[string]netip.Addr{},
		calls: mesh.Calls,
	}
	for i := range mesh.Services {
		s := &mesh.Services[i]
		g.svc[s.Name] = s
		g.ip[s.Name] = netip.AddrFrom4([4]byte{10, 44, byte(1 + i/200), byte(10 + i%200)})
	}
	for _, c := range mesh.Calls {
		if g.svc[c.From] == nil || g.svc[c.To] == nil {
			panic(fmt.Sprintf("scenario: call %s -> %s names an unknown workload", c.From, c.To))
		}
	}
	return g
}

// Now is the generator's event time.
func (g *Generator) Now() time.Time { return g.now }

// Load is the share of the daily peak at t: low at night, highest in the
// afternoon, lighter at weekends.
func Load(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	l := 0.15 + 0.85*(0.5-0.5*math.Cos(2*math.Pi*(h-4)/24))
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		l *= 0.6
	}
	return l
}

// Next returns the access logs of the next d of event time as one OTLP
// export request, and advances the clock. Each request is logged by both
// proxies (Istio's default), the client's first.
func (g *Generator) Next(d time.Duration) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty() // Istio >= 1.19 sends an empty resource
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("envoy.access_loggers.open_telemetry")
	records := sl.LogRecords()
	load := Load(g.now)
	for _, c := range g.calls {
		rate := c.PeakPerSec * load * d.Seconds()
		if strings.HasSuffix(c.From, "-job") {
			// Batch jobs run from 01:00 to 02:00 only, at full rate.
			rate = 0
			if g.now.Hour() == 1 {
				rate = c.PeakPerSec * d.Seconds()
			}
		}
		for n := g.poisson(rate); n > 0; n-- {
			at := g.now.Add(time.Duration(g.rng.Int64N(int64(d))))
			g.request(records, c, at)
		}
	}
	g.now = g.now.Add(d)
	return ld
}

// Request is one synthetic request, before it is logged.
type Request struct {
	From, To      *Service
	SrcIP, DstIP  netip.Addr
	At            time.Time
	Method, Path  string
	Code          int
	Flags         string
	BytesSent     int // response
	BytesReceived int // request
	DurationMs    int
	UserAgent     string
	Plaintext     bool // no mTLS: no principal, no TLS version
}

func (g *Generator) request(records plog.LogRecordSlice, c Call, at time.Time) {
	from, to := g.svc[c.From], g.svc[c.To]
	r := Request{
		From: from, To: to, SrcIP: g.ip[c.From], DstIP: g.ip[c.To], At: at,
		Method: "GET", Path: g.path(to), Code: 200, Flags: "-",
		BytesReceived: 0, UserAgent: "Go-http-client/1.1",
	}
	if strings.Contains(r.Path, "orders") || strings.Contains(r.Path, "charges") || strings.Contains(r.Path, "token") || strings.HasSuffix(r.Path, "items") {
		r.Method = "POST"
		r.BytesReceived = 200 + g.rng.IntN(400)
	}
	switch p := g.rng.Float64(); {
	case p < c.ErrorRate:
		r.Code, r.Flags = 503, "UF"
	case p < c.ErrorRate+c.AuthFailRate:
		r.Code = 401
	case p < c.ErrorRate+c.AuthFailRate+0.004:
		r.Code = 404
	}
	r.BytesSent = g.jitter(to.MeanBytes)
	if r.Code >= 400 {
		r.BytesSent = 20 + g.rng.IntN(60)
	}
	r.DurationMs = 1 + g.jitter(to.MeanMs)
	g.Emit(records, r)
}

// Emit appends both proxies' access-log records of r.
func (g *Generator) Emit(records plog.LogRecordSlice, r Request) {
	reqID := g.uuid()
	var trace pcommon.TraceID
	for i := range trace {
		trace[i] = byte(g.rng.Uint32())
	}
	srcPort := 30000 + g.rng.IntN(30000)
	for _, side := range [...]string{"source", "destination"} {
		lr := records.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(r.At))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(r.At.Add(time.Duration(r.DurationMs) * time.Millisecond)))
		lr.SetTraceID(trace)
		g.attributes(lr.Attributes(), r, side, reqID, srcPort)
		if g.Body {
			lr.Body().SetStr(textLine(lr.Attributes()))
		}
	}
}

func (g *Generator) attributes(a pcommon.Map, r Request, side, reqID string, srcPort int) {
	host := r.To.App + "." + r.To.Namespace + ".svc.cluster.local"
	port := strconv.Itoa(int(r.To.Port))
	a.EnsureCapacity(32)
	a.PutStr("start_time", r.At.Format("2006-01-02T15:04:05.000Z"))
	a.PutStr("method", r.Method)
	a.PutStr("path", r.Path)
	a.PutStr("protocol", "HTTP/1.1")
	a.PutStr("response_code", strconv.Itoa(r.Code))
	a.PutStr("response_flags", r.Flags)
	a.PutStr("response_code_details", "via_upstream")
	a.PutStr("connection_termination_details", "-")
	a.PutStr("upstream_transport_failure_reason", "-")
	a.PutStr("bytes_received", strconv.Itoa(r.BytesReceived))
	a.PutStr("bytes_sent", strconv.Itoa(r.BytesSent))
	a.PutStr("duration", strconv.Itoa(r.DurationMs))
	a.PutStr("upstream_service_time", strconv.Itoa(max(r.DurationMs-1, 0)))
	a.PutStr("x_forwarded_for", "-")
	a.PutStr("user_agent", r.UserAgent)
	a.PutStr("request_id", reqID)
	a.PutStr("authority", r.To.App+"."+r.To.Namespace+":"+port)
	a.PutStr("reporter", side)
	a.PutStr("source_workload", r.From.Name)
	a.PutStr("source_namespace", r.From.Namespace)
	a.PutStr("destination_workload", r.To.Name)
	a.PutStr("destination_namespace", r.To.Namespace)
	src := r.SrcIP.String() + ":" + strconv.Itoa(srcPort)
	dst := r.DstIP.String() + ":" + port
	if side == "source" {
		a.PutStr("upstream_cluster", "outbound|"+port+"||"+host)
		a.PutStr("upstream_host", dst)
		a.PutStr("upstream_local_address", r.SrcIP.String()+":"+strconv.Itoa(srcPort+1))
		a.PutStr("downstream_local_address", r.DstIP.String()+":"+port)
		a.PutStr("downstream_remote_address", r.SrcIP.String()+":"+strconv.Itoa(srcPort+2))
		a.PutStr("requested_server_name", "-")
		a.PutStr("route_name", "default")
	} else {
		a.PutStr("upstream_cluster", "inbound|"+port+"||")
		a.PutStr("upstream_host", "127.0.0.1:"+port)
		a.PutStr("upstream_local_address", "127.0.0.6:"+strconv.Itoa(srcPort+3))
		a.PutStr("downstream_local_address", dst)
		a.PutStr("downstream_remote_address", src)
		a.PutStr("requested_server_name", "outbound_."+port+"_._."+host)
		a.PutStr("route_name", "default")
	}
	if r.Plaintext {
		a.PutStr("source_principal", "-")
		a.PutStr("tls_version", "-")
		if side == "destination" {
			a.PutStr("requested_server_name", "-")
		}
	} else {
		a.PutStr("source_principal", "spiffe://"+g.mesh.TrustDomain+"/ns/"+r.From.Namespace+"/sa/"+r.From.SA)
		a.PutStr("destination_principal", "spiffe://"+g.mesh.TrustDomain+"/ns/"+r.To.Namespace+"/sa/"+r.To.SA)
		a.PutStr("tls_version", "TLSv1.3")
	}
}

// textLine renders Istio's default access-log text format from the labels.
func textLine(a pcommon.Map) string {
	get := func(k string) string {
		if v, ok := a.Get(k); ok && v.Str() != "" {
			return v.Str()
		}
		return "-"
	}
	return fmt.Sprintf(`[%s] "%s %s %s" %s %s %s %s "%s" %s %s %s %s "%s" "%s" "%s" "%s" "%s" %s %s %s %s %s %s`,
		get("start_time"), get("method"), get("path"), get("protocol"), get("response_code"),
		get("response_flags"), get("response_code_details"), get("connection_termination_details"),
		get("upstream_transport_failure_reason"), get("bytes_received"), get("bytes_sent"), get("duration"),
		get("upstream_service_time"), get("x_forwarded_for"), get("user_agent"), get("request_id"),
		get("authority"), get("upstream_host"), get("upstream_cluster"), get("upstream_local_address"),
		get("downstream_local_address"), get("downstream_remote_address"), get("requested_server_name"),
		get("route_name"))
}

func (g *Generator) path(s *Service) string {
	if len(s.Paths) == 0 {
		return "/"
	}
	p := s.Paths[g.rng.IntN(len(s.Paths))]
	p = strings.ReplaceAll(p, "{id}", strconv.Itoa(1+g.rng.IntN(100000)))
	p = strings.ReplaceAll(p, "{uuid}", g.uuid())
	p = strings.ReplaceAll(p, "{hash}", fmt.Sprintf("%016x", g.rng.Uint64()))
	return p
}

func (g *Generator) uuid() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		u := g.rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(u >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// jitter draws around mean with a long right tail (log-normal, sigma 0.5).
func (g *Generator) jitter(mean int) int {
	if mean <= 0 {
		return 0
	}
	return int(float64(mean) * math.Exp(0.5*g.rng.NormFloat64()-0.125))
}

// poisson draws a Poisson count: exact for small means, normal
// approximation above 30 where it is indistinguishable for this use.
func (g *Generator) poisson(mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*g.rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// Split cuts an export request into requests of at most max log records,
// as the collector's batch processor (send_batch_max_size) does to stay
// under Kafka's message size limit.
func Split(ld plog.Logs, max int) []plog.Logs {
	var out []plog.Logs
	cur, n := plog.NewLogs(), 0
	var dst plog.LogRecordSlice
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			fresh := true
			for k := 0; k < sl.LogRecords().Len(); k++ {
				if n == max {
					out = append(out, cur)
					cur, n, fresh = plog.NewLogs(), 0, true
				}
				if fresh {
					nrl := cur.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(nrl.Resource())
					nsl := nrl.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(nsl.Scope())
					dst, fresh = nsl.LogRecords(), false
				}
				sl.LogRecords().At(k).CopyTo(dst.AppendEmpty())
				n++
			}
		}
	}
	if n > 0 {
		out = append(out, cur)
	}
	return out
}

// Marshal splits an export request as Split does and encodes each part
// as otlp_proto, ready to be a Kafka message value.
func Marshal(ld plog.Logs, max int) ([][]byte, error) {
	var out [][]byte
	for _, part := range Split(ld, max) {
		v, err := (&plog.ProtoMarshaler{}).MarshalLogs(part)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
