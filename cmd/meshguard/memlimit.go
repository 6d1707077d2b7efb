package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryFiles hold the container's memory limit: cgroup v2, then v1
// (where "no limit" reads as a huge number).
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// noCgroupLimit is above any real limit: v1 reports "unlimited" as about
// 2^63.
const noCgroupLimit = 1 << 50

// setMemoryLimit gives the Go runtime its soft memory limit: GOMEMLIMIT
// when set (the runtime read it already), else ingest.memory_limit_mib,
// else 90% of the container's limit, leaving room for what is not Go heap
// (stacks, kafka-go's and the OS's buffers). Without any, the heap may
// grow to twice what is live (GOGC), and ingest's batches are most of it.
// It returns the limit set, 0 for none.
func setMemoryLimit(mib int, log *slog.Logger) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1)
	}
	limit := int64(mib) << 20
	source := "ingest.memory_limit_mib"
	if limit == 0 {
		source = "90% of the container's memory limit"
		if c := cgroupMemoryLimit(); c > 0 {
			limit = c / 10 * 9
		}
	}
	if limit == 0 {
		return 0
	}
	debug.SetMemoryLimit(limit)
	log.Info("memory limit set", "bytes", limit, "from", source)
	return limit
}

// cgroupMemoryLimit is the container's memory limit in bytes, 0 when
// there is none or it cannot be read.
func cgroupMemoryLimit() int64 {
	for _, f := range cgroupMemoryFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(data))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= noCgroupLimit {
			return 0
		}
		return n
	}
	return 0
}
