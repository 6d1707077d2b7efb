package scenario

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// A mixed mesh is one whose proxies do not all report alike, written from
// the formats' documentation rather than from what meshguard parses
// (../shared/reference.md sections 1 and 2, deploy/istio/mesh-config.yaml,
// Envoy's access-log command operators):
//
//   - FormatLabels: meshguard's label form (deploy/istio). The client side
//     knows its own workload (%ENVIRONMENT(ISTIO_META_WORKLOAD_NAME)%) and
//     its peer by certificate (%UPSTREAM_PEER_URI_SAN%,
//     %UPSTREAM_TLS_VERSION%); the server side its own workload and the
//     caller's certificate (%DOWNSTREAM_PEER_URI_SAN%). Neither side names
//     the other's workload. The body is Istio's default text line (no
//     logFormat.text is set).
//   - FormatText: Istio's stock envoyOtelAls provider: the default text
//     line as the body, no attributes, an empty resource (Istio >= 1.19).
//     The caller is an address; on the server side the SNI
//     outbound_.PORT_._.HOST is the only trace of the client's mTLS.
//   - FormatK8s: the stock text line, the resource filled by the
//     collector's k8sattributes processor (associated by connection IP)
//     with the reporting pod's name, namespace, address and Deployment.
//
// A proxy logs both sides (Istio's default CLIENT_AND_SERVER), or only one
// (Telemetry API accessLogging match.mode); some collectors' kafkaexporter
// writes otlp_json; callers outside the mesh (no sidecar) are logged by
// their destinations only, in plaintext, by address.

// Formats a proxy reports in.
const (
	FormatLabels = "labels"
	FormatText   = "text"
	FormatK8s    = "k8s"
)

// Sides a proxy logs.
const (
	SidesBoth   = ""
	SidesClient = "client"
	SidesServer = "server"
)

// Telemetry is how one workload's proxy reports, and where it runs.
type Telemetry struct {
	Format string // FormatLabels (default), FormatText or FormatK8s
	Sides  string // SidesBoth (default), SidesClient or SidesServer
	// JSON: its collector's kafkaexporter writes otlp_json.
	JSON bool
	// NoSidecar: outside the mesh (a namespace without injection, a VM):
	// no proxy of its own, plaintext, seen only by its destinations.
	NoSidecar bool
	// NoPod: not a pod of the cluster (a VM); its address resolves to
	// nothing. Addr is that address.
	NoPod bool
	Addr  netip.Addr
}

// Restart replaces a workload's pod at At with one at a new address, or,
// with ReuseIPOf, at the address a pod of that workload released before
// At (the CNI hands released addresses out again).
type Restart struct {
	Workload  string
	At        time.Duration
	ReuseIPOf string
}

// Pod is one pod of a mixed mesh's inventory: what the cluster's API
// would list, with the span of event time it ran.
type Pod struct {
	Name, UID, Namespace string
	Workload             string // its Deployment
	ReplicaSet, Hash     string // the ReplicaSet and its pod-template-hash
	SA, App, Version     string
	Node                 string
	IP                   netip.Addr
	// From and To bound the pod's life; To is zero while it runs.
	From, To time.Time
}

// Running reports whether p runs at t.
func (p *Pod) Running(t time.Time) bool {
	return !t.Before(p.From) && (p.To.IsZero() || t.Before(p.To))
}

// Batch is one collector's export of one step: a message's worth of
// resources, each a reporting proxy's.
type Batch struct {
	Logs plog.Logs
	JSON bool
}

// mixed is a generator's state in a mixed mesh.
type mixed struct {
	pods    map[string][]*Pod // by workload
	byIP    map[netip.Addr][]*Pod
	cluster map[string]netip.Addr // Service ClusterIP by app/namespace
	// buckets of the step being played, by reporting pod (or workload).
	proto, json plog.Logs
	buckets     map[string]plog.LogRecordSlice
	scratch     pcommon.Map
}

func (g *Generator) telemetry(w string) Telemetry {
	t := g.mesh.Telemetry[w]
	t.Format = cmp.Or(t.Format, FormatLabels)
	return t
}

// prepareMixed builds the inventory: every workload's first pod at its
// address, the pods of each Deploy and Restart after.
func (g *Generator) prepareMixed() error {
	m := &mixed{pods: map[string][]*Pod{}, byIP: map[netip.Addr][]*Pod{}, cluster: map[string]netip.Addr{}}
	for w, t := range g.mesh.Telemetry {
		if g.svc[w] == nil {
			return fmt.Errorf("scenario: telemetry of %s: not a workload", w)
		}
		switch t.Format {
		case "", FormatLabels, FormatText, FormatK8s:
		default:
			return fmt.Errorf("scenario: telemetry of %s: format %q; use labels, text or k8s", w, t.Format)
		}
		switch t.Sides {
		case SidesBoth, SidesClient, SidesServer:
		default:
			return fmt.Errorf("scenario: telemetry of %s: sides %q; use client, server or empty", w, t.Sides)
		}
		if t.NoPod && !t.Addr.IsValid() {
			return fmt.Errorf("scenario: telemetry of %s: a workload with no pod needs its address", w)
		}
	}
	born := g.start.Add(-24 * time.Hour)
	gens := map[string]int{}
	add := func(s *Service, ip netip.Addr, from time.Time) {
		gen := gens[s.Name]
		gens[s.Name]++
		hash := podHash(s.Name, gen)
		p := &Pod{
			Namespace: s.Namespace, Workload: s.Name, ReplicaSet: s.Name + "-" + hash, Hash: hash,
			SA: s.SA, App: s.App, Version: version(s), IP: ip, From: from,
			Node: fmt.Sprintf("node-%d", len(m.pods[s.Name])%3+1),
		}
		p.Name = p.ReplicaSet + "-" + podHash(s.Name+"/pod", gen)[:5]
		p.UID = fmt.Sprintf("%08x-%s", fnv32(p.Namespace+"/"+p.Name), hash)
		m.pods[s.Name] = append(m.pods[s.Name], p)
		m.byIP[ip] = append(m.byIP[ip], p)
	}
	end := func(w string, at time.Time) netip.Addr {
		var freed netip.Addr
		for _, p := range m.pods[w] {
			if p.To.IsZero() && !p.From.After(at) {
				p.To, freed = at, p.IP
			}
		}
		return freed
	}
	for i := range g.mesh.Services {
		s := &g.mesh.Services[i]
		m.cluster[s.App+"/"+s.Namespace] = netip.AddrFrom4([4]byte{10, 96, byte(1 + i/200), byte(10 + i%200)})
		if t := g.telemetry(s.Name); t.NoPod {
			g.ip[s.Name] = t.Addr
			continue
		}
		add(s, g.ip[s.Name], born)
	}
	type change struct {
		at      time.Duration
		deploy  *Deploy
		restart *Restart
	}
	var changes []change
	for i := range g.mesh.Deploys {
		changes = append(changes, change{at: g.mesh.Deploys[i].At, deploy: &g.mesh.Deploys[i]})
	}
	for i := range g.mesh.Restarts {
		r := &g.mesh.Restarts[i]
		if g.svc[r.Workload] == nil || (r.ReuseIPOf != "" && g.svc[r.ReuseIPOf] == nil) {
			return fmt.Errorf("scenario: restart of %s: not a workload", r.Workload)
		}
		changes = append(changes, change{at: r.At, restart: r})
	}
	// In time order, so that a reused address is one already released.
	for i := 1; i < len(changes); i++ {
		for j := i; j > 0 && changes[j].at < changes[j-1].at; j-- {
			changes[j], changes[j-1] = changes[j-1], changes[j]
		}
	}
	restarts := 0
	for _, c := range changes {
		at := g.start.Add(c.at)
		switch {
		case c.deploy != nil:
			d := c.deploy
			s := g.svc[d.Workload]
			end(d.Workload, at)
			gen := gens[d.Workload]
			for p := 0; p < max(d.Pods, 1); p++ {
				add(s, netip.AddrFrom4([4]byte{10, byte(45 + gen), byte(g.index[d.Workload]), byte(10 + p)}), at)
			}
		default:
			r := c.restart
			s := g.svc[r.Workload]
			end(r.Workload, at)
			restarts++
			ip := netip.AddrFrom4([4]byte{10, byte(60 + restarts/200), byte(g.index[r.Workload]), byte(10 + restarts%200)})
			if r.ReuseIPOf != "" {
				ip = netip.Addr{}
				for _, p := range m.pods[r.ReuseIPOf] {
					if !p.To.IsZero() && !p.To.After(at) && !m.held(p.IP, at) {
						ip = p.IP
					}
				}
				if !ip.IsValid() {
					return fmt.Errorf("scenario: restart of %s at %v: %s released no address before", r.Workload, r.At, r.ReuseIPOf)
				}
			}
			add(s, ip, at)
		}
	}
	m.buckets = map[string]plog.LogRecordSlice{}
	m.scratch = pcommon.NewMap()
	g.mixed = m
	return nil
}

// held reports whether a pod holds ip at t.
func (m *mixed) held(ip netip.Addr, t time.Time) bool {
	for _, p := range m.byIP[ip] {
		if p.Running(t) {
			return true
		}
	}
	return false
}

func version(s *Service) string {
	if i := len(s.Name) - 3; i > 0 && s.Name[i:i+2] == "-v" {
		return s.Name[i+1:]
	}
	return "v1"
}

func fnv32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// podHash is a ReplicaSet's pod-template-hash: 10 characters of
// Kubernetes' alphabet (no vowels), stable per workload and generation.
func podHash(w string, gen int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	h := uint64(fnv32(w+"#"+strconv.Itoa(gen)))<<32 | uint64(fnv32(strconv.Itoa(gen)+w))
	b := make([]byte, 10)
	for i := range b {
		b[i] = alphabet[h%uint64(len(alphabet))]
		h /= uint64(len(alphabet))
	}
	return string(b)
}

// Pods is the mixed mesh's inventory (nil for another mesh), every pod
// that ran at any time, for identity resolution.
func (g *Generator) Pods() []Pod {
	if g.mixed == nil {
		return nil
	}
	var out []Pod
	for i := range g.mesh.Services {
		for _, p := range g.mixed.pods[g.mesh.Services[i].Name] {
			out = append(out, *p)
		}
	}
	return out
}

// Mesh is the mesh the generator plays.
func (g *Generator) Mesh() Mesh { return g.mesh }

// podAt picks the pod of w serving a request at t: one of those running.
func (g *Generator) podAt(w string, t time.Time) *Pod {
	var run []*Pod
	for _, p := range g.mixed.pods[w] {
		if p.Running(t) {
			run = append(run, p)
		}
	}
	switch len(run) {
	case 0:
		return nil
	case 1:
		return run[0]
	}
	return run[g.rng.IntN(len(run))]
}

// addr is the address w sends from or is reached at, at t.
func (g *Generator) addr(w string, t time.Time) netip.Addr {
	if g.mixed != nil {
		if p := g.podAt(w, t); p != nil {
			return p.IP
		}
	}
	return g.ip[w]
}

// NextBatches plays d of a mixed mesh and returns each collector's
// export: one resource per reporting proxy, otlp_proto collectors in one
// batch and otlp_json ones in another.
func (g *Generator) NextBatches(d time.Duration) []Batch {
	m := g.mixed
	m.proto, m.json = plog.NewLogs(), plog.NewLogs()
	clear(m.buckets)
	unused := plog.NewLogRecordSlice()
	g.nextDynamic(unused, d)
	g.playAttacks(unused, d)
	g.now = g.now.Add(d)
	var out []Batch
	if m.proto.LogRecordCount() > 0 {
		out = append(out, Batch{Logs: m.proto})
	}
	if m.json.LogRecordCount() > 0 {
		out = append(out, Batch{Logs: m.json, JSON: true})
	}
	return out
}

// recordsFor returns where the record of r's side goes in a mixed mesh,
// and false when no proxy logs that side.
func (g *Generator) recordsFor(side string, r *Request) (plog.LogRecordSlice, Telemetry, bool) {
	m := g.mixed
	w, ip := r.From, r.SrcIP
	if side == "destination" {
		w, ip = r.To, r.DstIP
	}
	t := g.telemetry(w.Name)
	if t.NoSidecar || (side == "source" && t.Sides == SidesServer) || (side == "destination" && t.Sides == SidesClient) {
		return plog.LogRecordSlice{}, t, false
	}
	var pod *Pod
	for _, p := range m.byIP[ip] {
		if p.Workload == w.Name && p.Running(r.At) {
			pod = p
		}
	}
	key := w.Name
	if pod != nil {
		key = pod.Name
	}
	if rs, ok := m.buckets[key]; ok {
		return rs, t, true
	}
	dst := m.proto
	if t.JSON {
		dst = m.json
	}
	rl := dst.ResourceLogs().AppendEmpty()
	if t.Format == FormatK8s && pod != nil {
		a := rl.Resource().Attributes()
		a.PutStr("k8s.pod.ip", pod.IP.String())
		a.PutStr("k8s.pod.name", pod.Name)
		a.PutStr("k8s.pod.uid", pod.UID)
		a.PutStr("k8s.namespace.name", pod.Namespace)
		a.PutStr("k8s.deployment.name", pod.Workload)
		a.PutStr("k8s.node.name", pod.Node)
	}
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("envoy.access_loggers.open_telemetry")
	m.buckets[key] = sl.LogRecords()
	return sl.LogRecords(), t, true
}

// mixedRecord fills lr as the reporting proxy of side formats it.
func (g *Generator) mixedRecord(lr plog.LogRecord, t Telemetry, r Request, side, reqID string, srcPort int) {
	a := lr.Attributes()
	if t.Format != FormatLabels {
		a = g.mixed.scratch
		a.Clear()
	}
	g.envoyValues(a, r, side, reqID, srcPort)
	if t.Format == FormatLabels {
		g.labels(a, r, side)
	}
	lr.Body().SetStr(textLine(a))
	if t.Format != FormatLabels {
		a.Clear()
	}
}

// envoyValues puts the default format's operators as Envoy fills them on
// side, under Istio's JSON key names.
func (g *Generator) envoyValues(a pcommon.Map, r Request, side, reqID string, srcPort int) {
	host := r.To.App + "." + r.To.Namespace + ".svc.cluster.local"
	port := strconv.Itoa(int(cmp.Or(r.Port, r.To.Port)))
	requestValues(a, r, reqID, port)
	src := r.SrcIP.String() + ":" + strconv.Itoa(srcPort)
	dst := r.DstIP.String() + ":" + port
	if side == "source" {
		// The app dialled the Service's ClusterIP; the sidecar picked an
		// endpoint and connected to it from the pod's address.
		vip := g.mixed.cluster[r.To.App+"/"+r.To.Namespace]
		a.PutStr("upstream_host", dst)
		a.PutStr("upstream_cluster", "outbound|"+port+"||"+host)
		a.PutStr("upstream_local_address", src)
		a.PutStr("downstream_local_address", vip.String()+":"+port)
		a.PutStr("downstream_remote_address", r.SrcIP.String()+":"+strconv.Itoa(srcPort+1))
		a.PutStr("requested_server_name", "-")
	} else {
		a.PutStr("upstream_host", dst)
		a.PutStr("upstream_cluster", "inbound|"+port+"||")
		a.PutStr("upstream_local_address", "127.0.0.6:"+strconv.Itoa(srcPort+3))
		a.PutStr("downstream_local_address", dst)
		a.PutStr("downstream_remote_address", src)
		sni := "-"
		if !r.Plaintext {
			sni = "outbound_." + port + "_._." + host
		}
		a.PutStr("requested_server_name", sni)
	}
	a.PutStr("route_name", "default")
}

// labels adds deploy/istio's identity labels for side: the proxy's own
// workload and namespace, the peer's certificate and the TLS version. A
// connection that never opened has no peer certificate and no TLS.
func (g *Generator) labels(a pcommon.Map, r Request, side string) {
	tls := !r.Plaintext && !(r.ClientOnly && r.UnknownDestination)
	spiffe := func(s *Service) string {
		return "spiffe://" + g.mesh.TrustDomain + "/ns/" + s.Namespace + "/sa/" + s.SA
	}
	dash := func(ok bool, v string) string {
		if ok {
			return v
		}
		return "-"
	}
	a.PutStr("reporter", side)
	a.PutStr("tls_version", dash(tls, "TLSv1.3"))
	if side == "source" {
		a.PutStr("source_workload", r.From.Name)
		a.PutStr("source_namespace", r.From.Namespace)
		a.PutStr("destination_principal", dash(tls, spiffe(r.To)))
		return
	}
	a.PutStr("destination_workload", r.To.Name)
	a.PutStr("destination_namespace", r.To.Namespace)
	a.PutStr("source_principal", dash(tls, cmp.Or(r.Principal, spiffe(r.From))))
	a.PutStr("destination_principal", dash(tls, spiffe(r.To)))
}
