# The two commands a new user types:
#   make demo   run the whole loop on one machine, no servers needed
#   make test   install and start the real servers, then run every test
GO      ?= go
INFRA   := test/infra/infra.sh
BIN     := bin/meshguard
export MESHGUARD_INFRA_DIR ?= /tmp/meshguard-infra

.PHONY: demo test test-clock build lint unit infra-up infra-down infra-clean infra-status bench bench-ingest bench-latency collector-validate bench-nab eval eval-mixed

demo: build
	./$(BIN) demo

build:
	$(GO) build -o $(BIN) ./cmd/meshguard

# Fast checks first: a formatting or vet error fails in seconds, not after
# the servers started.
test: lint infra-up
	$(GO) test -count=1 -timeout 30m ./...

# The whole suite with the tests' clock moved back across a day
# (test/testenv.Now, MESHGUARD_TEST_CLOCK_SHIFT): every fixture that
# depends on the hour of the day runs at another one. See test/README.md.
CLOCK_SHIFTS ?= -5h -11h -17h -23h
test-clock: lint infra-up
	@for s in $(CLOCK_SHIFTS); do \
		echo "== MESHGUARD_TEST_CLOCK_SHIFT=$$s"; \
		MESHGUARD_TEST_CLOCK_SHIFT=$$s $(GO) test -count=1 -timeout 30m ./... || exit 1; \
	done

# Unit tests only: no servers are started; tests that need one skip and
# say how to start it.
unit: lint
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

infra-up:
	bash $(INFRA) start

infra-down:
	bash $(INFRA) stop

infra-clean:
	bash $(INFRA) clean

infra-status:
	bash $(INFRA) status

# Benchmarks: figures and how they were taken are in BENCHMARKS.md.
bench: infra-up
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.out

# End-to-end ingest: meshguard serve (ingest; ingest,detect) against the
# OpenTelemetry Collector (kafkareceiver -> clickhouseexporter; -> nop) on
# the same 1M access logs, once in small messages of one pod each and once
# in 500-record batches (test/bench/README.md). The first run builds the
# collector (~10 min on 2 cores; cached in ~/.cache/meshguard).
# E.g. make bench-ingest INGESTBENCH_SHAPES=small INGESTBENCH_FLAGS='-runs 1'
INGESTBENCH_SHAPES ?= small batch
bench-ingest: infra-up
	for shape in $(INGESTBENCH_SHAPES); do $(GO) run ./test/bench/ingestbench -shape $$shape $(INGESTBENCH_FLAGS) || exit 1; done

# Live latency: every attack class at wall-clock speed through Kafka into
# serve (respond.mode enforce) with the real kube-apiserver; per class the
# time from the attack's first record to the detection and to the applied
# AuthorizationPolicy (test/bench/README.md). About 7 minutes a round.
# E.g. make bench-latency LATENCYBENCH_FLAGS='-rounds 5'
bench-latency: infra-up
	$(GO) run ./test/bench/latencybench $(LATENCYBENCH_FLAGS)

# Validates deploy/collector/collector.yaml's collector config with the
# collector release it deploys (built and cached by test/bench/otelcol.sh).
collector-validate:
	bash test/bench/otelcol.sh validate

# NAB: artime.Ladder (the causal ARTime port, test/nab/artime, AGPL) over
# the 58 files of ../shared/nab, scored by test/nab under the three profiles for all
# files, the tuning half and the held-out half (test/nab/split.go; and by
# ../shared/nab/score.py when python3 exists), then the speed of it and of
# the other detectors (one core). Figures in BENCHMARKS.md. Another
# detector: NABRUN_FLAGS='-detector univariate' (or ensemble,
# artime-knowing); tune with NABRUN_FLAGS='-only tuning -config ...'.
bench-nab:
	$(GO) run ./test/nab/cmd/nabrun $(NABRUN_FLAGS)
	$(GO) test -run '^$$' -bench 'Ensemble|Univariate|ARTime' -benchtime 5x -cpu 1 ./test/nab/ ./test/nab/artime/

# Detection quality (test/eval): a 6-hour realistic mesh with every attack
# class injected once, through ingest's decoder into detect; per class
# detected or not and time to detect, false detections per 1000
# service-hours. A report: exits 0 whatever the figures.
# E.g. make eval EVAL_FLAGS='-scale 0.25 -strength 0.5'
eval:
	$(GO) run ./test/eval $(EVAL_FLAGS)

# The same on the mixed mesh (scenario.MixedMesh): stock text, label form
# and k8sattributes proxies, otlp_json, callers outside the mesh, pod
# restarts, a compromised leaf; identities resolved from the scenario's
# pods, respond (mode enforce) deciding on every detection; adds incidents
# per attack, false incidents and actions enforced on benign edges.
# E.g. make eval-mixed EVAL_FLAGS='-strength 0.3'
eval-mixed:
	$(GO) run ./test/eval -mixed $(EVAL_FLAGS)
