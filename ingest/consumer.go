package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/meshguard/meshguard/consumer"
	"github.com/meshguard/meshguard/models"
)

// Consumer reads OTLP telemetry from Kafka in a consumer group, decodes it
// into flows and hands them to the next stage in batches.
//
// Delivery is at-least-once: a message's offset is committed only after
// next.ConsumeFlows accepted the batch holding every flow of that message
// (or, for an undecodable message, after the dead-letter topic acknowledged
// it), and after the AfterStore stage, if any, saw that batch. After a
// crash or rebalance Kafka redelivers what was not committed; flow ids
// derive from message coordinates, so stores count each record once
// however often it arrives.
//
// Two batches exist: one being filled by the fetch loop while the other is
// stored (three with an AfterStore stage: one more being detected). When
// the store is slow or down all are busy, the fetch loop waits, and Kafka
// keeps the backlog: memory stays bounded and nothing is dropped.
//
// Lifecycle: NewConsumer validates and connects nothing; Run blocks until
// its context is cancelled, then stops fetching, flushes the open batch
// (bounded by IngestConfig.ShutdownTimeout), commits what was stored and
// leaves the group. A Consumer runs once.
type Consumer struct {
	kcfg    KafkaConfig
	icfg    IngestConfig
	next    consumer.Flows
	log     *slog.Logger
	rcfg    kafka.ReaderConfig
	reader  *kafka.Reader // made by Run once a broker accepted the credentials
	dlq     *deadLetters
	dec     *Decoder
	signals map[string]Signal
	stats   consumerStats
	after   consumer.Flows      // AfterStore's stage, or nil
	owner   consumer.Partitions // after, when it keeps state per partition (assign.go)
	own     ownCommits

	connected      atomic.Bool
	lastConnectErr atomic.Pointer[error]

	topicClient *kafka.Client // asks which topics exist (topics.go)
	topicStatus atomic.Pointer[[]TopicStatus]
	watchEvery  time.Duration
	group       groupState                  // assignment and fetches of the current reader (readiness.go)
	progress    progress                    // last fetch and commit, lag, stall (lag.go)
	authFail    atomic.Pointer[authFailure] // credentials refused after the start (authfail.go)
}

// Stats is a snapshot of a Consumer's counters.
type Stats struct {
	Messages      int64 // fetched
	Flows         int64 // decoded and handed on
	Batches       int64 // stored and committed
	DeadLettered  int64 // messages sent to the DLQ (wholly or partly undecodable)
	StoreFailures int64 // failed attempts to store a batch (each retried)
	CommitErrors  int64 // commits that failed (their messages come again)
	// ReaderFailures counts kafka-go readers that gave up (the group
	// unreachable for a while); each time a new one rejoins.
	ReaderFailures int64
	// Redelivered counts messages a new group generation fetched again
	// after this consumer had handed them on (kafka-go restarts kept
	// partitions from the committed offset): skipped, their first
	// delivery's batch stores and commits them.
	Redelivered int64
	// ConnectFailures counts failed attempts to reach Kafka at start
	// (refused, TLS or SASL rejected); see Consumer.ConnectError.
	ConnectFailures int64
	// MissingTopics counts configured topics (the DLQ's included) that do
	// not exist or are denied; see Consumer.Topics for which.
	MissingTopics int64
	// DLQFailures counts attempts the DLQ refused for good (topic missing
	// or denied, even a capped copy too large); DLQBlocked is 1 while a
	// partition waits on one (kafka.dlq_required); DLQSkipped counts
	// messages committed without a copy (kafka.dlq_required: false);
	// DLQCapped counts capped copies of messages too large for the DLQ.
	DLQFailures, DLQSkipped, DLQCapped, DLQBlocked int64
	// OversizeBatches counts reads of a record batch that decompresses
	// past maxDecompressedBatch (each retry counted): refused instead of
	// filling memory.
	OversizeBatches int64
	// AssignedPartitions is how many partitions the group gave this
	// consumer in the current generation.
	AssignedPartitions int64
	// AfterStoreWaits counts batches the store had to wait to hand to
	// the AfterStore stage (it was busy with the one before), and
	// AfterStoreWaited sums those waits: the detector holding ingest back.
	// AfterStoreErrors counts batches that stage failed (not retried).
	AfterStoreWaits, AfterStoreErrors int64
	AfterStoreWaited                  time.Duration
	// FreeBatchWaits counts the times decoding waited for a free batch
	// (every batch still being stored or detected): backpressure reaching
	// Kafka.
	FreeBatchWaits int64
	// LastFetch and LastCommit are when a message last arrived from
	// Kafka and when offsets were last committed (zero before the first).
	LastFetch, LastCommit time.Time
	Decoder               DecoderStats
}

type consumerStats struct {
	messages, flows, batches, deadLettered, storeFailures, commitErrors, connectFailures atomic.Int64
	oversizeBatches, readerFailures, afterErrors, freeWaits, redelivered                 atomic.Int64
	afterWaits, afterWaited                                                              atomic.Int64 // summed over sessions
}

// NewConsumer builds a consumer from validated config. next receives the
// batches; log receives what an operator must see.
func NewConsumer(kcfg KafkaConfig, icfg IngestConfig, next consumer.Flows, log *slog.Logger, opts ...Option) (*Consumer, error) {
	if err := errors.Join(kcfg.Validate(), icfg.Validate()); err != nil {
		return nil, err
	}
	if next == nil {
		return nil, errors.New("ingest: no next stage to hand flows to")
	}
	capCodecs()
	enc, _ := ParseEncoding(kcfg.Encoding)
	signals := kcfg.signals()
	topics := make([]string, 0, len(signals))
	for t := range signals {
		topics = append(topics, t)
	}
	errLog := kafka.LoggerFunc(func(msg string, args ...any) {
		log.Warn("kafka: " + fmt.Sprintf(msg, args...))
	})
	dialer, err := kcfg.Dialer()
	if err != nil {
		return nil, err
	}
	dlq, err := newDeadLetters(kcfg, log)
	if err != nil {
		return nil, err
	}
	rcfg := kafka.ReaderConfig{
		Brokers:     kcfg.Brokers,
		Dialer:      dialer,
		GroupID:     kcfg.GroupID,
		GroupTopics: topics,
		// A new group starts at the oldest retained telemetry: what the
		// collector wrote before meshguard first ran is not skipped.
		StartOffset:       kafka.FirstOffset,
		SessionTimeout:    kcfg.SessionTimeout,
		HeartbeatInterval: kcfg.SessionTimeout / 10,
		// Commits are explicit, one per stored batch.
		CommitInterval: 0,
		MaxBytes:       readerMaxBytes,
		// Prefetch: kafka-go's queue of fetched, undecoded messages
		// (default 100). Full while the fetch loop waits on the store,
		// so it is memory: 16 of the collector's 500-record messages
		// are ~12 MB, 100 were ~77 MB.
		QueueCapacity: readerQueue,
		// Close waits for in-flight long polls: MaxWait bounds how long
		// a shutdown takes (kafka-go's 10s default made it ~9s).
		MaxWait:               time.Second,
		WatchPartitionChanges: true,
		// Range alone: it gives partition N of every telemetry topic to
		// one member, which a consumer.Partitions stage's per-number state needs
		// (round-robin could split otlp_logs/0 from otlp_spans/0).
		GroupBalancers: []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		ErrorLogger:    errLog,
	}
	transport, err := kcfg.Transport()
	if err != nil {
		return nil, err
	}
	c := &Consumer{
		topicClient: &kafka.Client{Addr: kafka.TCP(kcfg.Brokers...), Transport: transport},
		watchEvery:  topicWatchInterval,
		kcfg:        kcfg,
		icfg:        icfg,
		next:        next,
		log:         log,
		rcfg:        rcfg,
		dlq:         dlq,
		dec:         NewDecoder(DecoderConfig{Encoding: enc, MaxFuture: icfg.MaxFuture}),
		signals:     signals,
	}
	for _, o := range opts {
		o(c)
	}
	c.owner, _ = c.after.(consumer.Partitions)
	return c, nil
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (c *Consumer) Stats() Stats {
	return Stats{
		Decoder:         c.dec.Stats(),
		Messages:        c.stats.messages.Load(),
		Flows:           c.stats.flows.Load(),
		Batches:         c.stats.batches.Load(),
		DeadLettered:    c.stats.deadLettered.Load(),
		StoreFailures:   c.stats.storeFailures.Load(),
		CommitErrors:    c.stats.commitErrors.Load(),
		ReaderFailures:  c.stats.readerFailures.Load(),
		Redelivered:     c.stats.redelivered.Load(),
		ConnectFailures: c.stats.connectFailures.Load(),

		MissingTopics:      c.missingTopics(),
		DLQFailures:        c.dlq.failures.Load(),
		DLQSkipped:         c.dlq.skipped.Load(),
		DLQCapped:          c.dlq.capped.Load(),
		DLQBlocked:         b2i(c.dlq.blocked.Load()),
		OversizeBatches:    c.stats.oversizeBatches.Load(),
		AfterStoreWaits:    c.stats.afterWaits.Load(),
		AfterStoreWaited:   time.Duration(c.stats.afterWaited.Load()),
		AfterStoreErrors:   c.stats.afterErrors.Load(),
		FreeBatchWaits:     c.stats.freeWaits.Load(),
		AssignedPartitions: c.group.assigned.Load(),
		LastFetch:          unixNano(c.progress.lastFetch.Load()),
		LastCommit:         unixNano(c.progress.lastCommit.Load()),
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (c *Consumer) missingTopics() int64 {
	var n int64
	for _, s := range c.Topics() {
		if s.Missing() {
			n++
		}
	}
	return n
}

type topicPartition struct {
	topic     string
	partition int
}

type batch struct {
	flows    []models.Flow
	last     map[topicPartition]kafka.Message // newest message per partition: what to commit
	messages int
	opened   time.Time
	// change, on a batch of its own, is a rebalance for the consumer.Partitions stage.
	change *partitionChange
}

func (b *batch) reset() {
	clear(b.flows) // drop references to strings of stored flows
	b.flows = b.flows[:0]
	clear(b.last)
	b.messages = 0
	b.change = nil
}

// Run consumes until ctx is cancelled, then returns nil; a reader that
// fails is replaced (logged, counted in Stats.ReaderFailures). See the
// type's doc for shutdown.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.dlq.close()
	n := c.batchesInFlight()
	free := make(chan *batch, n)
	for range n {
		free <- &batch{flows: make([]models.Flow, 0, c.icfg.BatchSize), last: map[topicPartition]kafka.Message{}}
	}

	// The reader joins the group only once a broker accepted the TLS and
	// SASL settings: until then each attempt logs one clear error, not kafka-go's
	// own retries of every group request.
	if !c.waitForKafka(ctx) {
		return nil
	}
	var topics []string
	wait := time.Second
	for {
		if len(topics) == 0 {
			var ok bool
			if topics, ok = c.waitForTopics(ctx); !ok {
				return nil
			}
		}
		next, err := c.session(ctx, topics, free)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// kafka-go's reader gives up after a few failed joins (a broker
			// down or restarting longer than ~15 s, credentials refused on
			// reconnection). What it fetched is stored or uncommitted, so a
			// new reader resumes from the committed offsets: rejoin rather
			// than end ingest.
			c.stats.readerFailures.Add(1)
			if auth := saslRefusal([]any{err}); auth != nil {
				c.noteAuthFailure(&c.authFail, auth)
			}
			c.log.Error("kafka reader failed; rejoining the group", "err", c.kcfg.ExplainError(strings.Join(c.kcfg.Brokers, ","), err), "retry_in", wait)
			select {
			case <-time.After(jitter(wait)):
			case <-ctx.Done():
				return nil
			}
			wait = min(2*wait, time.Minute)
			continue
		}
		wait = time.Second
		if !slices.Equal(next, topics) {
			c.log.Info("kafka topics changed; rejoining the group with the new set", "topics", next, "was", topics)
		}
		topics = next
	}
}

// waitForTopics returns the configured telemetry topics that exist,
// asking again until at least one does; false when ctx ends first.
func (c *Consumer) waitForTopics(ctx context.Context) ([]string, bool) {
	for {
		if present, _ := c.checkTopics(ctx); len(present) > 0 {
			return present, true
		}
		select {
		case <-time.After(c.watchEvery):
		case <-ctx.Done():
			return nil, false
		}
	}
}

// session consumes topics with one reader (one membership of the group)
// until ctx ends, the reader fails (the error), or the set of existing
// topics changes (the new set). Every batch it fetched is stored and
// committed, or left uncommitted, before it returns, so the next reader
// starts from the committed offsets.
func (c *Consumer) session(ctx context.Context, topics []string, free chan *batch) ([]string, error) {
	rcfg := c.rcfg
	rcfg.GroupTopics = topics
	rcfg.Logger = kafka.LoggerFunc(c.group.observe)
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	var oversize atomic.Pointer[kafka.Message]
	rcfg.ErrorLogger = kafka.LoggerFunc(func(msg string, args ...any) {
		if err := saslRefusal(args); err != nil {
			c.noteAuthFailure(&c.authFail, err)
			return
		}
		if !isBatchTooLarge(args) {
			c.rcfg.ErrorLogger.Printf(msg, args...)
			return
		}
		n := c.stats.oversizeBatches.Add(1)
		if m, ok := oversizeAt(args); ok {
			if oversize.CompareAndSwap(nil, &m) {
				stopFetch() // skipped below, once what was fetched is stored
			}
			return
		}
		// kafka-go retries the batch about once a second: say it once a minute.
		if n == 1 || n%60 == 0 {
			c.log.Error("a kafka record batch decompresses past the cap and its offset is unknown; its partition cannot advance past it (the rest is ingested); "+
				"delete the records or move the group's offset past them", "cap_bytes", maxDecompressedBatch, "kafka", fmt.Sprintf(msg, args...), "times", n)
		}
	})
	c.group.reset()
	c.resetProgress()
	var asg *assignments
	if c.owner != nil {
		// Before the reader: it may report its first generation at once,
		// and the owner must hear of it.
		asg = newAssignments(fetchCtx, &c.group, &c.own)
		defer asg.close()
	}
	c.reader = kafka.NewReader(rcfg)
	defer c.group.reset()

	// The store keeps working after ctx ends, to flush, for at most
	// ShutdownTimeout. A change of topics only stops the fetching: the
	// store finishes its batches unbounded, as it would without the change.
	storeCtx, cancelStore := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStore()
	stopTimer := context.AfterFunc(ctx, func() {
		time.AfterFunc(c.icfg.ShutdownTimeout, cancelStore)
	})
	defer stopTimer()

	var next []string
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		next = c.watch(fetchCtx, topics)
		stopFetch()
	}()

	full := make(chan *batch, 1)
	stored := make(chan struct{})
	go func() {
		defer close(stored)
		c.storeLoop(storeCtx, full, free)
	}()

	err := c.fetchLoop(fetchCtx, full, free, asg)
	stopFetch()
	<-watched
	if asg != nil {
		// Leaving the group gives every partition up: the owner releases
		// them before the reader closes, so the next owner finds them.
		c.tellChange(asg.revokeAll(), full, free)
	}
	close(full)
	<-stored
	if m := oversize.Load(); m != nil && err == nil && ctx.Err() == nil {
		c.skipOversize(ctx, *m)
		if next == nil {
			next = topics // rejoin: the new reader starts past the skipped offset
		}
	}
	if cerr := c.reader.Close(); cerr != nil && err == nil {
		c.log.Warn("closing kafka reader", "err", cerr)
	}
	return next, err
}

// watch checks the topics and the reader's fetches until ctx ends (nil)
// or the set of existing telemetry topics differs from topics (the new
// set, possibly empty).
func (c *Consumer) watch(ctx context.Context, topics []string) []string {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastCheck, lastLag := time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		c.group.poll(c.reader)
		if time.Since(lastLag) >= c.watchEvery {
			c.sampleLag(ctx)
			lastLag = time.Now()
		}
		if time.Since(lastCheck) < c.watchEvery {
			continue
		}
		lastCheck = time.Now()
		if present, ok := c.checkTopics(ctx); ok && !slices.Equal(present, topics) {
			return present
		}
	}
}

// fetchLoop fills batches until ctx ends or the reader fails. On return
// every batch is back in free or handed to full. With asg (a
// consumer.Partitions after the store), each rebalance goes to full as a
// batch of its own, in order with the messages.
func (c *Consumer) fetchLoop(ctx context.Context, full chan<- *batch, free chan *batch, asg *assignments) error {
	var b *batch
	select {
	case b = <-free:
	case <-ctx.Done():
		return nil
	}
	flush := func() bool {
		full <- b
		select {
		case b = <-free:
			return true
		default:
			c.stats.freeWaits.Add(1)
		}
		select {
		case b = <-free:
			return true
		case <-ctx.Done():
			b = nil
			return false
		}
	}
	// One deadline per batch, set when its first message arrives, not one
	// per message: a timer costs more than decoding a small message.
	var open struct {
		ctx    context.Context // nil until the batch holds a message
		cancel context.CancelFunc
	}
	closeBatch := func() bool {
		if open.ctx != nil {
			open.cancel()
			open.ctx = nil
		}
		return flush()
	}
	defer func() {
		if open.ctx != nil {
			open.cancel()
		}
	}()
	// rebalance closes the batch before a rebalance and hands the change
	// on in one of its own.
	rebalance := func() bool {
		ch := asg.advance()
		if open.ctx != nil {
			// Derived from the generation replaced: made again from the
			// new one, with the same deadline.
			open.cancel()
			open.ctx = nil
		}
		if ch == nil {
			return true
		}
		if b.messages > 0 && !closeBatch() {
			return false
		}
		b.change = ch
		return closeBatch()
	}
	genCtx := func() context.Context {
		if asg == nil {
			return ctx
		}
		return asg.ctx
	}
	for {
		fetchCtx := genCtx()
		if b.messages > 0 {
			if open.ctx == nil {
				open.ctx, open.cancel = context.WithDeadline(fetchCtx, b.opened.Add(c.icfg.BatchTimeout))
			}
			fetchCtx = open.ctx
		}
		m, err := c.reader.FetchMessage(fetchCtx)
		switch {
		case ctx.Err() != nil:
			c.release(b, full, free)
			return nil
		case asg != nil && err != nil && genCtx().Err() != nil:
			// A newer generation woke the fetch: no message was taken.
			if !rebalance() {
				return nil
			}
			continue
		case errors.Is(err, context.DeadlineExceeded):
			if !closeBatch() {
				return nil
			}
			continue
		case err != nil:
			c.release(b, full, free)
			return fmt.Errorf("ingest: fetch from kafka %v: %w", c.kcfg.Brokers, err)
		}
		c.group.fetched.Store(true)
		c.progress.lastFetch.Store(time.Now().UnixNano())
		if asg != nil && asg.before(m) && !rebalance() {
			return nil // m is not committed: it comes again
		}
		if asg != nil && asg.handedBefore(m) {
			c.stats.redelivered.Add(1)
			continue
		}
		if !c.add(ctx, b, m) {
			// The DLQ could not take the message before ctx ended: it and
			// everything after it on its partition stay uncommitted.
			c.release(b, full, free)
			return nil
		}
		if asg != nil {
			asg.handedOn(m)
			if asg.behind() && !rebalance() {
				return nil
			}
		}
		if len(b.flows) >= c.icfg.BatchSize && !closeBatch() {
			return nil
		}
	}
}

// storeLoop stores each full batch, then commits it, or hands it to the
// AfterStore stage, which commits it once done. It returns once full is
// closed and every batch is back in free.
func (c *Consumer) storeLoop(ctx context.Context, full <-chan *batch, free chan<- *batch) {
	var q chan *batch
	done := make(chan struct{})
	if c.after != nil {
		q = make(chan *batch)
		go func() {
			defer close(done)
			c.afterStore(ctx, q, free)
		}()
	} else {
		close(done)
	}
	lost := false
	for b := range full {
		switch {
		case lost || !c.store(ctx, b):
			// Not stored before shutdown: neither committed nor seen by
			// the stage after the store, and nothing after it is
			// committed either (that would commit past it).
			lost = true
		case q != nil:
			c.handOn(q, b)
			continue
		default:
			c.commit(ctx, b)
		}
		b.reset()
		free <- b
	}
	if q != nil {
		close(q)
	}
	<-done
}

// release hands b to the store when it holds messages, else back to free.
func (c *Consumer) release(b *batch, full chan<- *batch, free chan<- *batch) {
	if b.messages > 0 {
		full <- b
	} else {
		free <- b
	}
}

// add decodes m into b. It returns false only when m could not be dead-
// lettered because ctx ended.
func (c *Consumer) add(ctx context.Context, b *batch, m kafka.Message) bool {
	c.stats.messages.Add(1)
	before := len(b.flows)
	base := models.NewFlowIDBase(m.Topic, int32(m.Partition), m.Offset)
	flows, err := c.dec.Decode(c.signals[m.Topic], m.Value, base, b.flows)
	b.flows = flows
	for i := before; i < len(flows); i++ {
		flows[i].Partition = int32(m.Partition)
	}
	c.stats.flows.Add(int64(len(flows) - before))
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) { // Decode promises *DecodeError; stay safe if that changes
			de = &DecodeError{Reason: "decode", Detail: err.Error()}
		}
		commit, kept := c.dlq.send(ctx, m, de)
		if !commit {
			return false
		}
		if kept {
			c.stats.deadLettered.Add(1)
		}
	}
	if b.messages == 0 {
		b.opened = time.Now()
	}
	b.messages++
	b.last[topicPartition{m.Topic, m.Partition}] = m
	return true
}

// store hands b to the next stage until it accepts it or ctx ends. A store
// that is down means waiting, never dropping: the fetch loop stalls behind
// this one and Kafka holds the backlog.
func (c *Consumer) store(ctx context.Context, b *batch) bool {
	if len(b.flows) == 0 {
		return true
	}
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := c.next.ConsumeFlows(ctx, b.flows)
		if err == nil {
			return true
		}
		c.stats.storeFailures.Add(1)
		if ctx.Err() != nil {
			c.log.Warn("batch not stored before shutdown; its messages stay uncommitted and are read again on restart",
				"flows", len(b.flows), "messages", b.messages)
			return false
		}
		if consumer.IsPermanent(err) {
			// Retrying the same batch will fail the same way until an
			// operator fixes the cause (usually the schema): wait long,
			// say so loudly, lose nothing.
			wait = c.icfg.RetryMax
			c.log.Error("storing a batch failed permanently; fix the cause (e.g. run `meshguard migrate`), ingest resumes by itself",
				"err", err, "attempt", attempt, "flows", len(b.flows))
		} else if attempt == 1 || attempt%10 == 0 {
			c.log.Warn("storing a batch failed; retrying with backoff", "err", err, "attempt", attempt, "flows", len(b.flows))
		}
		select {
		case <-time.After(jitter(wait)):
		case <-ctx.Done():
		}
		wait = min(wait*2, c.icfg.RetryMax)
	}
}

func (c *Consumer) commit(ctx context.Context, b *batch) {
	if len(b.last) == 0 {
		return // a rebalance's batch: no message
	}
	msgs := make([]kafka.Message, 0, len(b.last))
	for _, m := range b.last {
		msgs = append(msgs, m)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = c.reader.CommitMessages(ctx, msgs...); err == nil {
			c.own.note(msgs)
			c.stats.batches.Add(1)
			c.progress.lastCommit.Store(time.Now().UnixNano())
			if f := c.progress.onBatch.Load(); f != nil {
				(*f)(time.Since(b.opened))
			}
			return
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(jitter(time.Duration(100<<attempt) * time.Millisecond))
	}
	// Not fatal: the stored messages come again (after a rebalance or
	// restart) and the store counts each flow id once.
	c.stats.commitErrors.Add(1)
	c.log.Warn("committing offsets failed; these messages will be delivered again", "err", err, "partitions", len(msgs))
}

// readerQueue bounds the messages fetched ahead of decoding.
const readerQueue = 16

// jitter spreads retries of many replicas over [d/2, d).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
