package report

import (
	"fmt"
	"strings"
)

// Verdicts. A control passes only on evidence: requests whose transport
// the telemetry does not show (unknown) leave an encryption control a
// gap, and a control that needs the cluster's policies is a gap when the
// cluster was not read.
const (
	Pass = "pass"
	Gap  = "gap"
)

// Control is one requirement of a framework, judged on the report's
// evidence.
type Control struct {
	Framework string `json:"framework"`
	ID        string `json:"id"`
	// Requirement is a short paraphrase of the control's text; Source
	// where it is published.
	Requirement string   `json:"requirement"`
	Source      string   `json:"source"`
	Verdict     string   `json:"verdict"`
	Why         string   `json:"why"`
	Evidence    []string `json:"evidence"`
}

// Where the controls are published (checked against these when written).
const (
	srcSP800207  = "NIST SP 800-207, Zero Trust Architecture (2020), sec. 2.1: https://doi.org/10.6028/NIST.SP.800-207"
	srcSP800204A = "NIST SP 800-204A, Building Secure Microservices-based Applications Using Service-Mesh Architecture (2020): https://doi.org/10.6028/NIST.SP.800-204A"
	srcSP800204B = "NIST SP 800-204B, Attribute-based Access Control for Microservices-based Applications Using a Service Mesh (2021): https://doi.org/10.6028/NIST.SP.800-204B"
	srcPCI       = "PCI DSS v4.0 (PCI Security Standards Council, 2022): https://www.pcisecuritystandards.org/document_library/"
	srcSOC2      = "AICPA 2017 Trust Services Criteria (revised points of focus, 2022): https://www.aicpa-cima.com/resources/download/2017-trust-services-criteria-with-revised-points-of-focus-2022"
)

// facts are the report's findings the controls are judged on.
type facts struct {
	r                            *Report
	encrypted, noIdentity        bool
	allCovered, allStrict        bool
	monitored                    bool
	audited, evaluated, answered bool
	transport, identity, allow   string
	strict, monitor, audit       string
	evaluation, response         string
}

func factsOf(r *Report) facts {
	f := facts{r: r}
	c := r.Coverage
	f.monitored = c.Requests > 0
	f.encrypted = f.monitored && c.Plaintext == 0 && c.Unknown == 0
	f.transport = fmt.Sprintf("%d requests from %s to %s: %s over mTLS, %s plaintext on %d edges, %s with no TLS evidence",
		c.Requests, r.From.Format("2006-01-02 15:04"), r.To.Format("2006-01-02 15:04 MST"),
		pct(c.MTLSShare), pct(c.PlaintextShare), len(r.PlaintextEdges), pct(c.UnknownShare))
	f.noIdentity = len(r.NoIdentity) == 0
	f.identity = fmt.Sprintf("%d workloads seen; %d callers or workloads showed no mesh identity and sent or received plaintext",
		len(r.Identities), len(r.NoIdentity))
	f.allCovered = r.ClusterRead && len(r.Uncovered) == 0 && len(r.CoverageUnknown) == 0
	f.allow = fmt.Sprintf("%d of %d workloads covered by no enforced ALLOW AuthorizationPolicy (allowed by default); %d whose coverage is unknown (pod labels not found)",
		len(r.Uncovered), len(r.Identities), len(r.CoverageUnknown))
	f.allStrict = r.ClusterRead && len(r.NotStrict) == 0
	f.strict = fmt.Sprintf("%d of %d workloads not under PeerAuthentication STRICT (or not known to be)", len(r.NotStrict), len(r.Identities))
	if !r.ClusterRead {
		f.allow = "the cluster's policies were not read (no kubernetes.kubeconfig): coverage unknown"
		f.strict = "the cluster's policies were not read: mTLS modes unknown"
	}
	f.monitor = fmt.Sprintf("%d requests recorded from the proxies' telemetry for detection; %d detections in %d incidents",
		c.Requests, len(r.Detections), len(r.Incidents))
	noActor := 0
	for _, a := range r.Actions {
		if strings.TrimSpace(a.Actor) == "" {
			noActor++
		}
	}
	f.audited = noActor == 0
	f.audit = fmt.Sprintf("%d audit rows (time, action, state, target, actor), %d without an actor; %d policy changes", len(r.Actions), noActor, len(r.PolicyChanges))
	assessed := map[string]bool{}
	for _, a := range r.Actions {
		if a.DetectionID != "" {
			assessed[a.DetectionID] = true
		}
	}
	unassessed := 0
	for _, d := range r.Detections {
		if !assessed[d.ID] {
			unassessed++
		}
	}
	f.evaluated = unassessed == 0
	f.evaluation = fmt.Sprintf("%d detections, each scored with a severity; %d with no decision recorded in the audit log", len(r.Detections), unassessed)
	unanswered := 0
	var ttr float64
	for _, x := range r.Incidents {
		if x.TimeToRespondSeconds == nil {
			unanswered++
		} else {
			ttr = max(ttr, *x.TimeToRespondSeconds)
		}
	}
	f.answered = unanswered == 0
	f.response = fmt.Sprintf("%d incidents, %d without a response (policy applied or alert sent); slowest response %.0f s after detection", len(r.Incidents), unanswered, ttr)
	return f
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

func verdict(ok bool) string {
	if ok {
		return Pass
	}
	return Gap
}

// judge maps the findings to the controls.
func judge(r *Report) []Control {
	f := factsOf(r)
	c := func(fw, id, req, src string, ok bool, why string, ev ...string) Control {
		return Control{Framework: fw, ID: id, Requirement: req, Source: src, Verdict: verdict(ok), Why: why, Evidence: ev}
	}
	said := func(ok bool, yes, no string) string {
		if ok {
			return yes
		}
		return no
	}
	enc := said(f.encrypted, "every observed request was mutually authenticated and encrypted",
		"plaintext requests were observed, or requests with no TLS evidence leave encryption unproven")
	cov := said(f.allCovered, "every workload is covered by an enforced ALLOW policy (deny by default)",
		"some workloads are allowed by default or their coverage is unknown, or the cluster was not read")
	str := said(f.allStrict, "every workload requires mTLS", "some workloads accept plaintext (PERMISSIVE, DISABLE or unknown)")
	mon := said(f.monitored, "the mesh's traffic was recorded and available to the detectors", "no traffic was stored for the period")
	aud := said(f.audited, "every action carries its actor and time", "some audit rows name no actor")
	eva := said(f.evaluated, "every detection has a recorded decision", "some detections have no decision in the audit log")
	ans := said(f.answered, "every incident was answered", "some incidents got no response")
	nid := said(f.noIdentity, "every caller showed a mesh identity", "callers without a mesh identity exchanged plaintext")
	return []Control{
		c("NIST SP 800-207", "Tenet 2", "All communication is secured regardless of network location.", srcSP800207, f.encrypted, enc, f.transport),
		c("NIST SP 800-207", "Tenet 3", "Access to each resource is granted per session, with least privilege.", srcSP800207, f.allCovered, cov, f.allow),
		c("NIST SP 800-207", "Tenet 5", "The enterprise monitors and measures the integrity and security posture of its assets.", srcSP800207, f.monitored, mon, f.transport, f.monitor),
		c("NIST SP 800-207", "Tenet 6", "Authentication and authorization are dynamic and strictly enforced before access is allowed.", srcSP800207, f.allStrict && f.allCovered, str+"; "+cov, f.strict, f.allow),
		c("NIST SP 800-207", "Tenet 7", "The enterprise collects information on assets, network and communications and uses it to improve its posture.", srcSP800207, f.monitored, mon, f.monitor),
		c("NIST SP 800-204A", "Secure communication", "Service-to-service traffic uses mutual TLS, enforced by the mesh.", srcSP800204A, f.encrypted && f.allStrict, enc+"; "+str, f.transport, f.strict),
		c("NIST SP 800-204A", "Authorization", "Each service call is authorized by mesh policy at the service proxy.", srcSP800204A, f.allCovered, cov, f.allow),
		c("NIST SP 800-204A", "Security monitoring", "The mesh's telemetry is collected and monitored for security events.", srcSP800204A, f.monitored, mon, f.monitor),
		c("NIST SP 800-204B", "ABAC on service identity", "Access policies are expressed on attributes of authenticated service identities.", srcSP800204B, f.allCovered && f.noIdentity, cov+"; "+nid, f.allow, f.identity),
		c("PCI DSS v4.0", "Req. 1 (1.3)", "Network security controls restrict traffic to and from the cardholder data environment to what is necessary.", srcPCI, f.allCovered, cov, f.allow),
		c("PCI DSS v4.0", "Req. 4.2 (4.2.1)", "Strong cryptography protects account data in transmission (the standard requires it over open, public networks; judged here on all service traffic).", srcPCI, f.encrypted, enc, f.transport),
		c("PCI DSS v4.0", "Req. 7", "Access to system components is restricted by business need to know (least privilege).", srcPCI, f.allCovered, cov, f.allow),
		c("PCI DSS v4.0", "Req. 10 (10.2)", "Audit logs record events with who, what, when, outcome and origin, to detect anomalies and support forensics.", srcPCI, f.audited, aud, f.audit),
		c("PCI DSS v4.0", "Req. 11.5 (11.5.1)", "Intrusion-detection or -prevention techniques detect, alert on and prevent intrusions into the network.", srcPCI, f.monitored && f.answered, mon+"; "+ans, f.monitor, f.response),
		c("SOC 2", "CC6.1", "Logical access security software, infrastructure and architectures protect information assets.", srcSOC2, f.allCovered && f.allStrict, cov+"; "+str, f.allow, f.strict),
		c("SOC 2", "CC6.6", "Logical access measures protect against threats from sources outside the system's boundaries.", srcSOC2, f.noIdentity && f.allStrict, nid+"; "+str, f.identity, f.strict),
		c("SOC 2", "CC6.7", "The transmission of information is restricted and protected, including by encryption.", srcSOC2, f.encrypted, enc, f.transport),
		c("SOC 2", "CC7.2", "System components are monitored for anomalies indicative of malicious acts and errors.", srcSOC2, f.monitored, mon, f.monitor),
		c("SOC 2", "CC7.3", "Security events are evaluated to decide whether they are incidents.", srcSOC2, f.evaluated, eva, f.evaluation),
		c("SOC 2", "CC7.4", "Identified security incidents are responded to (contained, remediated, communicated).", srcSOC2, f.answered, ans, f.response, f.audit),
	}
}
