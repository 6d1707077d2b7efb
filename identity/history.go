package identity

import (
	"math"
	"net/netip"
)

// open is the end of a span whose pod still holds its IP.
const open = math.MaxInt64

// span is one pod's tenure of one IP, in Unix milliseconds: [from, to).
type span struct {
	from, to int64
	pod      *podRec
}

// history is what each pod IP meant over time. Pod IPs are reused within
// seconds of a pod's end, and telemetry arrives late (Kafka lag, a
// partition's allowed lateness, a replay of a backlog), so the pod an IP
// names now is not the pod a record from a minute ago came from: records
// are resolved by their own event time against the tenures remembered
// here. Not safe for concurrent use; Resolver locks it.
type history struct {
	ips map[netip.Addr][]span
}

func newHistory() *history { return &history{ips: map[netip.Addr][]span{}} }

// assign records that pod holds ip from from on. A span of another pod
// still open ends at from: one IP is one pod's at a time, and the newer
// pod's start is the better evidence of when the old one let go (its
// delete event may come late). A closed span stands: from moves past its
// end. Assigning the IP its pod already holds is a no-op.
func (h *history) assign(ip netip.Addr, pod *podRec, from int64) {
	spans := h.ips[ip]
	if n := len(spans); n > 0 {
		last := &spans[n-1]
		switch {
		case last.pod == pod && last.to == open:
			return
		case last.to == open:
			last.to = max(from, last.from)
			from = last.to
		default:
			// A creation time before the last tenure ended (creation
			// times have seconds; the pod waited for its IP) cannot
			// reach back into it.
			from = max(from, last.to)
		}
	}
	h.ips[ip] = append(spans, span{from: from, to: open, pod: pod})
}

// release ends pod's open tenure of ip at at.
func (h *history) release(ip netip.Addr, pod *podRec, at int64) {
	spans := h.ips[ip]
	for i := len(spans) - 1; i >= 0; i-- {
		if spans[i].pod == pod && spans[i].to == open {
			spans[i].to = max(at, spans[i].from)
			return
		}
	}
}

// lookup returns the pod that held ip at t (Unix ms), or nil.
func (h *history) lookup(ip netip.Addr, t int64) *podRec { return h.lookupSpan(ip, t).pod }

// lookupSpan returns the tenure of ip that contains t (pod nil if none).
func (h *history) lookupSpan(ip netip.Addr, t int64) span {
	spans := h.ips[ip]
	for i := len(spans) - 1; i >= 0; i-- {
		s := spans[i]
		if s.from <= t {
			if t < s.to {
				return s
			}
			return span{}
		}
	}
	return span{}
}

// prune forgets tenures that ended before before, calling gone for each
// pod whose last tenure that was (it names nothing any more).
func (h *history) prune(before int64, gone func(*podRec)) {
	for ip, spans := range h.ips {
		keep := spans[:0]
		for _, s := range spans {
			if s.to >= before {
				keep = append(keep, s)
				continue
			}
			s.pod.spans--
			if s.pod.spans == 0 {
				gone(s.pod)
			}
		}
		switch {
		case len(keep) == 0:
			delete(h.ips, ip)
		case len(keep) < len(spans):
			clear(spans[len(keep):])
			h.ips[ip] = keep
		}
	}
}
