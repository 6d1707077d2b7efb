package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// serveProc is the round's `meshguard serve`, its output in a log file.
type serveProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid once done is closed
}

// startServe runs serve with the shipped defaults except what the round
// needs: its topic, group, database and namespaces, a learning period the
// replay covers, enforcement, and no other instance's lease or budget in
// the way (as test/e2e runs it against the real servers).
func (e *env) startServe(o options, instance, prefix, topic, group, db, logPath string) (*serveProc, error) {
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.meshguard, "serve", "--stages", "ingest,detect,respond")
	cmd.Env = append(os.Environ(),
		"MESHGUARD_KAFKA_BROKERS="+strings.Join(e.brokers, ","),
		"MESHGUARD_KAFKA_GROUP_ID="+group,
		"MESHGUARD_KAFKA_TOPICS_LOGS="+topic,
		"MESHGUARD_KAFKA_TOPICS_SPANS=",
		"MESHGUARD_KAFKA_TOPICS_METRICS=",
		"MESHGUARD_KAFKA_DLQ_TOPIC="+topic+"-dlq",
		"MESHGUARD_CLICKHOUSE_DSN=clickhouse://"+e.chAddr+"/"+db,
		"MESHGUARD_SERVER_LISTEN=127.0.0.1:0",
		"MESHGUARD_SERVER_AUTH_MODE=none",
		"MESHGUARD_DETECT_LEARNING_PERIOD="+o.learning.String(),
		"MESHGUARD_DETECT_HISTORY=0s",
		"MESHGUARD_KUBERNETES_KUBECONFIG="+e.kubeconfig,
		"MESHGUARD_RESPOND_MODE=enforce",
		"MESHGUARD_RESPOND_INSTANCE="+instance,
		"MESHGUARD_RESPOND_ROOT_NAMESPACE="+prefix+"istio-system",
		"MESHGUARD_RESPOND_PROTECTED_NAMESPACES=istio-system,istio-ingress,kube-system,kube-public,meshguard,"+prefix+"istio-system",
		"MESHGUARD_RESPOND_LEADER_ELECTION_ENABLED=false",
		"MESHGUARD_RESPOND_BLAST_RADIUS_MAX_REQUESTS=0",
		"MESHGUARD_RESPOND_BUDGET_PER_HOUR=100",
		"MESHGUARD_LOG_FORMAT=json",
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start serve: %w", err)
	}
	p := &serveProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *serveProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks for a clean exit and kills after 30 s; safe to call twice.
func (p *serveProc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
