package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// peakRSS is the process's high-water resident set (VmHWM): the kernel
// keeps the peak, so one read before the process ends is enough.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// clockTick is USER_HZ, 100 on every Linux this runs on.
const clockTick = 10 * time.Millisecond

// cpuTime is the user+system CPU time pid used so far. On a shared,
// noisy machine it says more about cost than wall time does.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// server is a test/infra server whose CPU time a run charges to the
// consumer: Kafka serves every consumer, ClickHouse stores what meshguard
// and the collector -> clickhouse write. Zero when its pid file is
// missing.
type server struct {
	name string
	pid  int
}

func infraServer(infraDir, name, pidFile string) server {
	data, err := os.ReadFile(infraDir + "/" + name + "/" + pidFile)
	if err != nil {
		return server{name: name}
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return server{name: name, pid: pid}
}

// cpu is the server's CPU time so far, its children's included: chserver's
// pid file names the script that supervises the engine.
func (s server) cpu() time.Duration {
	if s.pid == 0 {
		return 0
	}
	d, _ := cpuTime(s.pid)
	children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", s.pid, s.pid))
	for _, f := range strings.Fields(string(children)) {
		if pid, err := strconv.Atoi(f); err == nil {
			c, _ := cpuTime(pid)
			d += c
		}
	}
	return d
}
