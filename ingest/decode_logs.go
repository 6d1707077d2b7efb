package ingest

import (
	"math"
	"net/netip"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshguard/meshguard/models"
)

// Access logs from Istio's envoyOtelAls provider, one flow per record:
//   - Attributes named as Istio's JSON format names them, plus identity
//     labels (source_principal, source_workload, ..., tls_version, reporter).
//   - A string body in Istio's default text format fills whatever the
//     attributes did not say. A record with neither is rejected; a body that
//     does not parse next to known attributes is only counted.
//   - Reporter: the reporter label, else the cluster's direction
//     ("outbound|" is the source proxy, "inbound|" the destination's).
//   - Destination service: Istio's SNI, else an outbound cluster's host,
//     else the authority's host. Port: SNI, cluster, downstream local address.
//   - Source IP: downstream_remote_address, on either side (see fillLog).
//   - The resource (k8sattributes) names the reporting workload, filled in
//     only where the record did not say, and only when the reporter is known.
//   - Time: start_time, else the record's timestamp, else its observed time.

// Access-log fields: the 24 of Istio's default text format, in the order
// they are printed (the text parser fills them by index), then the identity
// labels meshguard asks Istio to add.
const (
	fStartTime = iota
	fMethod
	fPath
	fProtocol
	fResponseCode
	fResponseFlags
	fResponseCodeDetails
	fConnectionTerminationDetails
	fUpstreamTransportFailureReason
	fBytesReceived
	fBytesSent
	fDuration
	fUpstreamServiceTime
	fXForwardedFor
	fUserAgent
	fRequestID
	fAuthority
	fUpstreamHost
	fUpstreamCluster
	fUpstreamLocalAddress
	fDownstreamLocalAddress
	fDownstreamRemoteAddress
	fRequestedServerName
	fRouteName
	numTextFields

	fSourcePrincipal = iota - 1
	fDestinationPrincipal
	fSourceWorkload
	fSourceNamespace
	fDestinationWorkload
	fDestinationNamespace
	fTLSVersion
	fReporter
	fDryRunAllow
	numLogFields
)

// logField maps an attribute key (Istio's JSON key names, the identity
// labels, and the namespace label names Istio's metrics use) to its field.
func logField(key string) int {
	switch key {
	case "start_time":
		return fStartTime
	case "method":
		return fMethod
	case "path":
		return fPath
	case "protocol":
		return fProtocol
	case "response_code":
		return fResponseCode
	case "response_flags":
		return fResponseFlags
	case "response_code_details":
		return fResponseCodeDetails
	case "connection_termination_details":
		return fConnectionTerminationDetails
	case "upstream_transport_failure_reason":
		return fUpstreamTransportFailureReason
	case "bytes_received":
		return fBytesReceived
	case "bytes_sent":
		return fBytesSent
	case "duration":
		return fDuration
	case "upstream_service_time":
		return fUpstreamServiceTime
	case "x_forwarded_for":
		return fXForwardedFor
	case "user_agent":
		return fUserAgent
	case "request_id":
		return fRequestID
	case "authority":
		return fAuthority
	case "upstream_host":
		return fUpstreamHost
	case "upstream_cluster":
		return fUpstreamCluster
	case "upstream_local_address":
		return fUpstreamLocalAddress
	case "downstream_local_address":
		return fDownstreamLocalAddress
	case "downstream_remote_address":
		return fDownstreamRemoteAddress
	case "requested_server_name":
		return fRequestedServerName
	case "route_name":
		return fRouteName
	case "source_principal":
		return fSourcePrincipal
	case "destination_principal":
		return fDestinationPrincipal
	case "source_workload":
		return fSourceWorkload
	case "source_namespace", "source_workload_namespace":
		return fSourceNamespace
	case "destination_workload":
		return fDestinationWorkload
	case "destination_namespace", "destination_workload_namespace":
		return fDestinationNamespace
	case "tls_version":
		return fTLSVersion
	case "reporter":
		return fReporter
	case "dry_run_allow_result":
		return fDryRunAllow
	}
	return -1
}

// rawLog gathers one log record's values before they become a Flow. The
// pdata path and the fast path both fill it, and fillLog alone turns it
// into a Flow, so the two paths cannot disagree on the rules.
type rawLog struct {
	v          [numLogFields]rawValue
	known      bool // some attribute key was one of ours
	hasBody    bool // the body is a string
	body       string
	timeNs     uint64
	observedNs uint64
	traceID    [16]byte
}

func (r *rawLog) set(key string, v rawValue) {
	if i := logField(key); i >= 0 {
		if !unusedField[i] {
			r.v[i] = v
		}
		r.known = true
	}
}

// needsText reports whether the text body could fill a field that a Flow
// uses and the attributes left unset.
func (r *rawLog) needsText() bool {
	for i := 0; i < numTextFields; i++ {
		if !unusedField[i] && r.v[i].kind == kindNone {
			return true
		}
	}
	return false
}

// unusedField marks the fields no Flow field comes from. They still make
// a record an access log, but are not worth storing: a record has
// thirty-odd attributes and every store counts.
var unusedField = [numLogFields]bool{
	fResponseCodeDetails: true, fConnectionTerminationDetails: true, fUpstreamTransportFailureReason: true,
	fUpstreamServiceTime: true, fXForwardedFor: true, fUpstreamHost: true, fUpstreamLocalAddress: true, fRouteName: true,
}

// keySlot remembers which field the attribute at one position was.
type keySlot struct {
	key   string
	field int
	set   bool // a zero slot must not claim that key "" is field 0
}

// setAt is set for the pos-th attribute of a record. An exporter writes
// the same keys in the same order in every record, so checking the key
// seen at this position last time usually saves the lookup.
func (d *Decoder) setAt(pos int, key string, v rawValue) {
	var i int
	if pos < len(d.keys) && d.keys[pos].set && d.keys[pos].key == key {
		i = d.keys[pos].field
	} else {
		i = logField(key)
		if pos < len(d.keys) {
			d.keys[pos] = keySlot{key: strings.Clone(key), field: i, set: true}
		}
	}
	if i >= 0 {
		if !unusedField[i] {
			d.log.v[i] = v
		}
		d.log.known = true
	}
}

// resourceInfo is the reporting workload as the collector's k8sattributes
// processor describes the resource.
type resourceInfo struct {
	workload  string
	namespace string
	podIP     netip.Addr
}

// rawResource gathers resource attributes; resolve turns them into a
// resourceInfo.
type rawResource struct {
	namespace, pod, podIP, service          string
	deployment, statefulSet, daemonSet, job string
	cronJob                                 string
}

func (r *rawResource) set(key string, v rawValue) {
	if v.kind != kindStr {
		return
	}
	switch key {
	case "k8s.namespace.name":
		r.namespace = v.s
	case "k8s.pod.name":
		r.pod = v.s
	case "k8s.pod.ip":
		r.podIP = v.s
	case "k8s.deployment.name":
		r.deployment = v.s
	case "k8s.statefulset.name":
		r.statefulSet = v.s
	case "k8s.daemonset.name":
		r.daemonSet = v.s
	case "k8s.cronjob.name":
		r.cronJob = v.s
	case "k8s.job.name":
		r.job = v.s
	case "service.name":
		r.service = v.s
	}
}

// resolve picks the workload the way Istio names it: the owning controller,
// else service.name, else the pod name without a Deployment's hash suffixes.
func (r *rawResource) resolve(d *Decoder) resourceInfo {
	w := r.deployment
	for _, c := range [...]string{r.statefulSet, r.daemonSet, r.cronJob, r.job, r.service, podWorkload(r.pod)} {
		if w != "" {
			break
		}
		w = c
	}
	ri := resourceInfo{workload: d.identityStr(w, false), namespace: d.identityStr(r.namespace, false)}
	ri.podIP, _, _ = parseAddr(r.podIP)
	return ri
}

// podWorkload returns "httpbin" for a Deployment's pod "httpbin-74fb669cc6-x2k9z",
// and "" for names that do not have that shape.
func podWorkload(pod string) string {
	i := lastDash(pod)
	if i < 0 || len(pod)-i-1 != 5 || !alnum(pod[i+1:]) {
		return ""
	}
	j := lastDash(pod[:i])
	if j <= 0 || i-j-1 < 6 || i-j-1 > 10 || !alnum(pod[j+1:i]) {
		return ""
	}
	return pod[:j]
}

func lastDash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '-' {
			return i
		}
	}
	return -1
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// pvalue converts a pdata value.
func pvalue(v pcommon.Value) rawValue {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return strValue(v.Str())
	case pcommon.ValueTypeInt:
		return rawValue{n: uint64(v.Int()), kind: kindInt}
	case pcommon.ValueTypeDouble:
		return rawValue{n: math.Float64bits(v.Double()), kind: kindDouble}
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return rawValue{n: 1, kind: kindBool}
		}
		return rawValue{kind: kindBool}
	case pcommon.ValueTypeEmpty:
		return rawValue{}
	}
	return rawValue{kind: kindOther}
}

func (d *Decoder) resource(attrs pcommon.Map) resourceInfo {
	var rr rawResource
	attrs.Range(func(k string, v pcommon.Value) bool {
		rr.set(k, pvalue(v))
		return true
	})
	return rr.resolve(d)
}

// decodeLogs is the reference decoder for logs: every encoding and every
// shape of message goes through pdata here.
func (d *Decoder) decodeLogs(ld plog.Logs, id models.FlowIDBase, dst []models.Flow) ([]models.Flow, error) {
	var b tally
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := d.resource(rl.Resource().Attributes())
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				r := &d.log
				*r = rawLog{timeNs: uint64(lr.Timestamp()), observedNs: uint64(lr.ObservedTimestamp()), traceID: lr.TraceID()}
				switch body := lr.Body(); body.Type() {
				case pcommon.ValueTypeStr:
					r.hasBody, r.body = true, body.Str()
				case pcommon.ValueTypeMap:
					// A collector that parsed a JSON access log into the
					// body: its keys count as attributes, the real
					// attributes win.
					body.Map().Range(func(k string, v pcommon.Value) bool {
						r.set(k, pvalue(v))
						return true
					})
				}
				lr.Attributes().Range(func(k string, v pcommon.Value) bool {
					r.set(k, pvalue(v))
					return true
				})
				dst = d.appendLog(dst, &b, id, &res)
			}
		}
	}
	return dst, b.err()
}

// appendLog turns d.log into the next flow of dst, or rejects it.
func (d *Decoder) appendLog(dst []models.Flow, b *tally, id models.FlowIDBase, res *resourceInfo) []models.Flow {
	i := b.total
	b.total++
	d.stats.LogRecords++
	dst = append(dst, models.Flow{})
	f := &dst[len(dst)-1]
	if detail := d.fillLog(&d.log, res, f); detail != "" {
		b.reject(i, detail)
		return dst[:len(dst)-1]
	}
	f.ID = id.ID(i)
	return dst
}

// fillLog applies the decoding rules for access logs. It returns why the
// record is rejected, or "".
func (d *Decoder) fillLog(r *rawLog, res *resourceInfo, f *models.Flow) string {
	// The text body fills whatever the attributes did not say; when they
	// said everything (Istio's label form), parsing it is wasted work
	// (about 8% of ingest's CPU in the end-to-end profile).
	if r.hasBody && r.body != "" && (!r.known || r.needsText()) {
		var text [numTextFields]string
		if err := parseAccessLog(r.body, &text); err == nil {
			for i, s := range text {
				if r.v[i].kind == kindNone {
					r.v[i] = strValue(s)
				}
			}
		} else if r.known {
			d.stats.TextParseErrors++
		} else {
			d.stats.RejectedNoTelemetry++
			return "text body is not an Istio access log (" + err.Error() + ") and there are no access-log attributes"
		}
	} else if !r.known {
		d.stats.RejectedNoTelemetry++
		return "no access-log attributes and no text body"
	}

	// Numbers first: a record that fails is dropped before any work.
	code, ok := number(r.v[fResponseCode], math.MaxUint16)
	if !ok {
		return d.badNumber("response_code", r.v[fResponseCode])
	}
	received, ok := number(r.v[fBytesReceived], math.MaxUint64)
	if !ok {
		return d.badNumber("bytes_received", r.v[fBytesReceived])
	}
	sent, ok := number(r.v[fBytesSent], math.MaxUint64)
	if !ok {
		return d.badNumber("bytes_sent", r.v[fBytesSent])
	}
	duration, ok := number(r.v[fDuration], math.MaxUint64)
	if !ok {
		return d.badNumber("duration", r.v[fDuration])
	}
	f.TimestampMs, ok = logTime(r)
	if !ok {
		d.stats.RejectedBadTime++
		return "start_time " + describe(r.v[fStartTime]) + " is not an RFC 3339 time"
	}
	if detail := d.checkTime(f.TimestampMs); detail != "" {
		return detail
	}
	f.ResponseCode = uint16(code)
	f.BytesReceived = received
	f.BytesSent = sent
	f.DurationMs = uint32(min(duration, math.MaxUint32)) // a long-lived TCP connection can outlast 49 days

	d.fillRequest(f, r.v[fMethod], r.v[fPath], r.v[fProtocol], r.v[fUserAgent], r.v[fRequestID])
	f.ResponseFlags = d.internStr(d.text(r.v[fResponseFlags], d.cfg.MaxFieldBytes))
	f.TLSVersion = d.internStr(d.text(r.v[fTLSVersion], d.cfg.MaxFieldBytes))

	f.Reporter = models.ParseReporter(r.v[fReporter].s)
	f.DryRunAllow = models.ParseDryRun(r.v[fDryRunAllow].s)
	crep, cport, chost := clusterParts(r.v[fUpstreamCluster].s)
	if f.Reporter == models.ReporterUnknown {
		f.Reporter = crep
	}

	// Destination service: the SNI Istio's client proxy sets names it
	// exactly; else the cluster Envoy routed to; only then the authority,
	// which the client chose (and on outbound logs is often a short name).
	sni := r.v[fRequestedServerName].s
	if r.v[fRequestedServerName].kind != kindStr || sni == "-" {
		sni = ""
	}
	authority := d.text(r.v[fAuthority], d.cfg.MaxFieldBytes)
	var svc string
	if port, host, ok := sniParts(sni); ok {
		svc, f.Destination.Port = host, port
	} else if crep == models.ReporterSource && chost != "" {
		svc = chost
	} else if authority != "" {
		svc, _ = hostPort(authority)
	} else {
		svc = sni
	}
	f.Destination.Service = d.identityStr(svc, false)
	if f.Destination.Port == 0 {
		f.Destination.Port = cport
	}
	if f.Destination.Port == 0 && r.v[fDownstreamLocalAddress].kind == kindStr {
		_, f.Destination.Port, _ = parseAddr(r.v[fDownstreamLocalAddress].s)
	}
	// The downstream peer of either proxy is the caller: the client app on
	// the source side, the client's proxy (or a plaintext client) on the
	// destination side.
	if r.v[fDownstreamRemoteAddress].kind == kindStr {
		f.Source.IP, _, _ = parseAddr(r.v[fDownstreamRemoteAddress].s)
	}

	f.Source.Principal = d.principal(r.v[fSourcePrincipal], false)
	f.Source.Workload = d.identity(r.v[fSourceWorkload], false)
	f.Source.Namespace = d.identity(r.v[fSourceNamespace], false)
	f.Destination.Principal = d.principal(r.v[fDestinationPrincipal], false)
	f.Destination.Workload = d.identity(r.v[fDestinationWorkload], false)
	f.Destination.Namespace = d.identity(r.v[fDestinationNamespace], false)
	fillReporter(f, res)

	f.TLS = logTLS(f, r, sni)

	f.TraceID = r.traceID
	f.Count = 1
	return ""
}

// logTLS reads a record's evidence of transport security. Unknown unless
// the record carries the fields that would show it:
//   - the destination proxy: a client certificate (source_principal,
//     DOWNSTREAM_PEER_URI_SAN) is mTLS, and that field logged empty is
//     plaintext. Without it, Istio's inbound SNI outbound_.PORT_._.HOST,
//     which Istio's client proxy sets when it originates mTLS, is mTLS,
//     and any other SNI or none is plaintext. Istio's stock text format
//     always carries the SNI, so its inbound records are never unknown.
//   - the source proxy: a TLS version with the upstream peer's principal
//     (UPSTREAM_TLS_VERSION, UPSTREAM_PEER_URI_SAN) is mTLS; an empty TLS
//     version field is plaintext, unless the flags say no upstream
//     connection was made (noUpstreamConnection); a record without the
//     field (the stock text format) is unknown.
func logTLS(f *models.Flow, r *rawLog, sni string) models.TLS {
	carries := func(i int) bool { return r.v[i].kind == kindStr }
	switch f.Reporter {
	case models.ReporterDestination:
		switch {
		case f.Source.Principal != "":
			return models.TLSMutual
		case carries(fSourcePrincipal):
			// The certificate field is the authority: the SNI is the
			// client's to choose, so it counts only where no certificate
			// field was logged.
			return models.TLSPlaintext
		case strings.HasPrefix(sni, "outbound_."):
			return models.TLSMutual
		case carries(fRequestedServerName):
			return models.TLSPlaintext
		}
	case models.ReporterSource:
		if f.TLSVersion != "" && f.Destination.Principal != "" {
			return models.TLSMutual
		}
		if carries(fTLSVersion) && f.TLSVersion == "" && !noUpstreamConnection(f.ResponseFlags) {
			return models.TLSPlaintext
		}
	}
	return models.TLSUnknown
}

// noUpstreamConnection reports whether Envoy's response flags say the
// client proxy never had an upstream connection for the request: it
// failed (UF), had no host (UH, NR, NC, DF), was refused by a circuit
// breaker, a fault, a rate limit or an external authorizer before any
// (UO, FI, RL, RLSE, UAEX, LH, OM). %UPSTREAM_TLS_VERSION% is then empty
// because no TLS session existed, not because the request went in
// plaintext.
func noUpstreamConnection(flags string) bool {
	for len(flags) > 0 {
		var f string
		f, flags, _ = strings.Cut(flags, ",")
		switch f {
		case "UF", "UH", "NR", "NC", "DF", "UO", "FI", "RL", "RLSE", "UAEX", "LH", "OM":
			return true
		}
	}
	return false
}

func (d *Decoder) badNumber(name string, v rawValue) string {
	d.stats.RejectedBadNumber++
	return name + " " + describe(v) + " is not a number in range"
}

// logTime is the request's start: the start_time field, else the record's
// timestamp, else its observed timestamp. Unset ("-") falls through.
func logTime(r *rawLog) (int64, bool) {
	switch v := r.v[fStartTime]; v.kind {
	case kindStr:
		if v.s != "-" && v.s != "" {
			return parseStartTime(v.s)
		}
	case kindInt, kindDouble:
		return epochMs(v)
	case kindBool, kindOther:
		return 0, false
	}
	if r.timeNs != 0 {
		return int64(r.timeNs / 1e6), true
	}
	return int64(r.observedNs / 1e6), true
}

// fillRequest sets the request fields logs and spans share.
func (d *Decoder) fillRequest(f *models.Flow, method, path, protocol, userAgent, requestID rawValue) {
	f.Method = d.internStr(d.text(method, d.cfg.MaxFieldBytes))
	f.Protocol = d.internStr(d.text(protocol, d.cfg.MaxFieldBytes))
	f.Path = d.keep(d.text(path, d.cfg.MaxPathBytes))
	f.PathTemplate = d.pathTemplate(f.Path)
	f.UserAgent = d.agents.get(d.text(userAgent, d.cfg.MaxUserAgentBytes))
	f.RequestID = d.keep(d.text(requestID, d.cfg.MaxFieldBytes))
}

// fillReporter fills the reporting side's workload from the resource where
// the record did not say. With no reporter nothing is filled: the side is
// unknown.
func fillReporter(f *models.Flow, res *resourceInfo) {
	switch f.Reporter {
	case models.ReporterSource:
		if f.Source.Workload == "" {
			f.Source.Workload = res.workload
		}
		if f.Source.Namespace == "" {
			f.Source.Namespace = res.namespace
		}
		if !f.Source.IP.IsValid() {
			f.Source.IP = res.podIP
		}
	case models.ReporterDestination:
		if f.Destination.Workload == "" {
			f.Destination.Workload = res.workload
		}
		if f.Destination.Namespace == "" {
			f.Destination.Namespace = res.namespace
		}
	}
}
