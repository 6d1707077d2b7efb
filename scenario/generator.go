package scenario

import (
	"cmp"
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
	start time.Time
	now   time.Time
	svc   map[string]*Service
	ip    map[string]netip.Addr
	calls []Call
	// Body adds Istio's default text line as the log body, as a proxy
	// configured with labels and the default text format sends it.
	Body bool

	opts    Options
	bursts  []burst // by index in mesh.Services
	index   map[string]int
	attacks []attack
	mixed   *mixed // a mesh with Telemetry: the proxies' formats and the pods
}

// Options turn a plain generator into a scenario: the mesh's dynamics and
// attacks. The zero value is New's plain, steady mesh.
type Options struct {
	// Dynamics plays the mesh's bursts, retries, rollouts, jobs and
	// incidents (see RealisticMesh).
	Dynamics bool
	// Scale multiplies every call's rate (0 means 1): 0.25 plays the
	// same mesh at a quarter of the traffic, for quicker evaluations.
	// Attacks keep their absolute rates, or their ratio to the edge.
	Scale float64
	// Attacks to inject; see Attack.
	Attacks []Attack
}

// New returns a generator whose clock starts at start.
func New(mesh Mesh, start time.Time, seed uint64) *Generator {
	g, err := NewWith(mesh, start, seed, Options{})
	if err != nil {
		panic(err)
	}
	return g
}

// NewWith returns a generator with dynamics and attacks. It fails when a
// call, rollout, job, incident or attack names an unknown workload, or an
// attack is malformed.
func NewWith(mesh Mesh, start time.Time, seed uint64, o Options) (*Generator, error) {
	if o.Scale <= 0 {
		o.Scale = 1
	}
	g := &Generator{
		mesh:  mesh,
		rng:   rand.New(rand.NewPCG(seed, seed^0x5eed)),
		start: start.UTC(),
		now:   start.UTC(),
		svc:   map[string]*Service{},
		ip:    map[string]netip.Addr{},
		calls: mesh.Calls,
		opts:  o,
		index: map[string]int{},
	}
	for i := range mesh.Services {
		s := &mesh.Services[i]
		g.svc[s.Name] = s
		g.index[s.Name] = i
		g.ip[s.Name] = netip.AddrFrom4([4]byte{10, 44, byte(1 + i/200), byte(10 + i%200)})
	}
	for _, c := range mesh.Calls {
		if g.svc[c.From] == nil || g.svc[c.To] == nil {
			return nil, fmt.Errorf("scenario: call %s -> %s names an unknown workload", c.From, c.To)
		}
	}
	if err := g.prepareDynamics(); err != nil {
		return nil, err
	}
	if len(mesh.Telemetry) > 0 {
		if err := g.prepareMixed(); err != nil {
			return nil, err
		}
	}
	for _, a := range o.Attacks {
		ra, err := g.resolve(a)
		if err != nil {
			return nil, err
		}
		g.attacks = append(g.attacks, ra)
	}
	return g, nil
}

// Now is the generator's event time.
func (g *Generator) Now() time.Time { return g.now }

// Skip advances the clock by d without producing anything, as if the
// telemetry of that time were lost.
func (g *Generator) Skip(d time.Duration) { g.now = g.now.Add(d) }

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
	if g.mixed != nil {
		ld := plog.NewLogs()
		for _, b := range g.NextBatches(d) {
			b.Logs.ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
		}
		return ld
	}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty() // Istio >= 1.19 sends an empty resource
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("envoy.access_loggers.open_telemetry")
	records := sl.LogRecords()
	if g.opts.Dynamics || g.opts.Scale != 1 || len(g.attacks) > 0 {
		g.nextDynamic(records, d)
		g.playAttacks(records, d)
		g.now = g.now.Add(d)
		return ld
	}
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

	// Details is %RESPONSE_CODE_DETAILS% (default "via_upstream").
	Details string
	// Port is the port asked for (default To.Port).
	Port uint16
	// Principal overrides the caller's certificate identity, as
	// "spiffe://..." (a workload presenting someone else's certificate).
	Principal string
	// ClientOnly: only the caller's proxy logs it (the connection
	// failed); ServerOnly: only the destination's (an attempt the caller
	// retried, or a caller without a sidecar).
	ClientOnly, ServerOnly bool
	// UnknownDestination leaves destination_workload unset, as on a
	// connection that failed before the peer's metadata arrived.
	UnknownDestination bool
	// RequestID and Trace reuse a request's ids (retries keep them);
	// empty ones are drawn.
	RequestID string
	Trace     pcommon.TraceID
	// SrcPort is the caller's ephemeral port (0: drawn).
	SrcPort int
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
// The request's ClientOnly and ServerOnly select one side; its RequestID,
// Trace and SrcPort are drawn when unset.
func (g *Generator) Emit(records plog.LogRecordSlice, r Request) {
	reqID := r.RequestID
	if reqID == "" {
		reqID = g.uuid()
	}
	trace := r.Trace
	if trace.IsEmpty() {
		for i := range trace {
			trace[i] = byte(g.rng.Uint32())
		}
	}
	srcPort := r.SrcPort
	if srcPort == 0 {
		srcPort = 30000 + g.rng.IntN(30000)
	}
	for _, side := range [...]string{"source", "destination"} {
		if (side == "source" && r.ServerOnly) || (side == "destination" && r.ClientOnly) {
			continue
		}
		dst, tel := records, Telemetry{}
		if g.mixed != nil {
			var ok bool
			if dst, tel, ok = g.recordsFor(side, &r); !ok {
				continue
			}
		}
		lr := dst.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(r.At))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(r.At.Add(time.Duration(r.DurationMs) * time.Millisecond)))
		lr.SetTraceID(trace)
		if g.mixed != nil {
			g.mixedRecord(lr, tel, r, side, reqID, srcPort)
			continue
		}
		g.attributes(lr.Attributes(), r, side, reqID, srcPort)
		if g.Body {
			lr.Body().SetStr(textLine(lr.Attributes()))
		}
	}
}

func (g *Generator) attributes(a pcommon.Map, r Request, side, reqID string, srcPort int) {
	host := r.To.App + "." + r.To.Namespace + ".svc.cluster.local"
	port := strconv.Itoa(int(cmp.Or(r.Port, r.To.Port)))
	requestValues(a, r, reqID, port)
	a.PutStr("reporter", side)
	a.PutStr("source_workload", r.From.Name)
	a.PutStr("source_namespace", r.From.Namespace)
	if r.UnknownDestination {
		a.PutStr("destination_workload", "-")
	} else {
		a.PutStr("destination_workload", r.To.Name)
	}
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
		a.PutStr("source_principal", cmp.Or(r.Principal, "spiffe://"+g.mesh.TrustDomain+"/ns/"+r.From.Namespace+"/sa/"+r.From.SA))
		a.PutStr("destination_principal", "spiffe://"+g.mesh.TrustDomain+"/ns/"+r.To.Namespace+"/sa/"+r.To.SA)
		a.PutStr("tls_version", "TLSv1.3")
	}
}

// requestValues puts the request's operators of Istio's default format,
// the same on both sides, under Istio's JSON key names.
func requestValues(a pcommon.Map, r Request, reqID, port string) {
	a.EnsureCapacity(32)
	a.PutStr("start_time", r.At.Format("2006-01-02T15:04:05.000Z"))
	a.PutStr("method", r.Method)
	a.PutStr("path", r.Path)
	a.PutStr("protocol", "HTTP/1.1")
	a.PutStr("response_code", strconv.Itoa(r.Code))
	a.PutStr("response_flags", r.Flags)
	a.PutStr("response_code_details", cmp.Or(r.Details, "via_upstream"))
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

func (g *Generator) path(s *Service) string { return g.pathFrom(s.Paths) }

// pathFrom draws one of paths with its placeholders filled.
func (g *Generator) pathFrom(paths []string) string {
	if len(paths) == 0 {
		return "/"
	}
	p := paths[g.rng.IntN(len(paths))]
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

// MaxMessageBytes bounds every message value the project's producers
// build. The broker refuses a record batch over message.max.bytes
// (1048588 by default) and kafka-go's Writer one over BatchBytes (1 MiB by
// default); the margin leaves room for the key, headers and framing.
const MaxMessageBytes = 1_000_000 - 16<<10

// Marshal splits an export request as Split does and encodes each part as
// otlp_proto, ready to be a Kafka message value. A part still larger than
// MaxMessageBytes (a peak hour's records, long bodies) is halved until it
// fits, so no producer depends on the hour of the day to stay under the
// broker's limit.
func Marshal(ld plog.Logs, max int) ([][]byte, error) {
	var out [][]byte
	var enc plog.ProtoMarshaler
	var add func(part plog.Logs) error
	add = func(part plog.Logs) error {
		v, err := enc.MarshalLogs(part)
		if err != nil {
			return err
		}
		if len(v) <= MaxMessageBytes {
			out = append(out, v)
			return nil
		}
		n := part.LogRecordCount()
		if n <= 1 {
			return fmt.Errorf("one log record encodes to %d bytes, over the %d a Kafka message may hold", len(v), MaxMessageBytes)
		}
		for _, half := range Split(part, (n+1)/2) {
			if err := add(half); err != nil {
				return err
			}
		}
		return nil
	}
	for _, part := range Split(ld, max) {
		if err := add(part); err != nil {
			return nil, err
		}
	}
	return out, nil
}
