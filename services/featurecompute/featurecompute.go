// Package featurecompute is the stream processor (docs/architecture.md, "The stream processor"): a Kafka
// consumer group on the feedback events that folds each event into the
// real-time features and experiment counters in Redis.
//
// Delivery is at least once and the effect exactly once: offsets are
// committed only after the batch's Redis writes, and every event is
// applied atomically with its de-duplication marker, so a batch delivered
// again after a crash or a rebalance changes nothing. A message that cannot
// be decoded or is not a valid event is parked on the dead-letter topic with
// the reason and never blocks its partition. It scales out by partitions:
// run more replicas with the same group.
package featurecompute

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/servicemap"
	"github.com/recsys/recsys/libs/serving"
)

// Config is the service's whole configuration. (The one-off jobs, rebuild
// and drop-generation, are commands with their own: see RunCommand.)
type Config struct {
	Serving    serving.Config
	Kafka      eventstream.Config
	Topic      string
	DLQ        string
	Group      string
	Partitions int
	Redis      featurestore.Config
	Namespace  string
	Batching   Batching
}

// RegisterFlags adds the service's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	// Default ports: this server's row of the service table.
	svc := servicemap.Of(servicemap.FeatureCompute)
	c.Serving.RegisterFlags(fs, svc.GRPCPort, svc.HTTPPort)
	registerLogFlags(fs, &c.Kafka, &c.Topic)
	fs.StringVar(&c.DLQ, "dlq-topic", eventstream.FeedbackDLQ, "dead-letter topic for messages that are not valid events")
	fs.StringVar(&c.Group, "group", "featurecompute", "consumer group id")
	fs.IntVar(&c.Partitions, "partitions", 3, "partitions of the topics when this service has to create them")
	registerStoreFlags(fs, &c.Redis, &c.Namespace)
	fs.IntVar(&c.Batching.Size, "batch-size", 1000, "most events applied in one Redis round trip")
	fs.DurationVar(&c.Batching.Wait, "batch-wait", 5*time.Millisecond, "how long a batch waits to fill once it has one event")
	fs.IntVar(&c.Batching.InFlight, "in-flight", 3, "batches applied to Redis at once (offsets are still committed in order)")
}

// Run consumes and serves health and metrics until ctx is done.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if len(cfg.Kafka.Brokers) == 0 {
		return errors.New("-kafka: at least one broker is required")
	}
	kc, err := cfg.Kafka.Cluster()
	if err != nil {
		return err
	}
	store, closeRedis, err := cfg.Redis.Open(cfg.Namespace)
	if err != nil {
		return err
	}
	defer closeRedis()
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = eventstream.EnsureTopics(ectx, kc, cfg.Partitions, cfg.Topic, cfg.DLQ)
	cancel()
	if err != nil {
		return err
	}
	if err := store.Refresh(ctx); err != nil {
		logger.Warn("could not read the active feature generation; starting with the default", "err", err)
	}
	srv, err := serving.New(cfg.Serving, logger)
	if err != nil {
		return err
	}
	srv.AddCheck("redis", store.Ping)
	reader := NewReader(kc, cfg.Topic, cfg.Group)
	dlq := eventstream.NewWriter(kc, cfg.DLQ)
	defer dlq.Close()
	c := NewConsumer(reader, dlq, store, NewMetrics(srv.Metrics()), logger, cfg.Batching)

	var wg sync.WaitGroup
	var consumeErr error
	cctx, stopConsumer := context.WithCancel(ctx)
	sctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	wg.Go(func() {
		consumeErr = c.Run(cctx)
		reader.Close()
		if consumeErr != nil {
			// A stream processor without its consumer must not look
			// healthy: stop, and exit with the error (to be restarted).
			logger.Error("the consumer stopped; shutting down", "err", consumeErr)
			stopServing()
		}
	})
	wg.Go(func() { store.Follow(cctx, time.Second, logger) })
	err = srv.Run(sctx)
	stopConsumer()
	wg.Wait()
	return errors.Join(err, consumeErr)
}

// NewReader returns a consumer-group reader that fetches without
// committing (the consumer commits after applying) and waits at most 100 ms
// for data, so it also stops promptly.
func NewReader(c eventstream.Cluster, topic, group string) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:           c.Brokers,
		Topic:             topic,
		GroupID:           group,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           100 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  200 * time.Millisecond,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    200 * time.Millisecond,
		Dialer:            c.Dialer(),
	})
}

// Metrics are the stream processor's metrics.
type Metrics struct {
	applied, duplicates prometheus.Counter
	deadLettered        *prometheus.CounterVec
	freshness           prometheus.Histogram
	lag                 *prometheus.GaugeVec
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recsys_featurecompute_events_applied_total", Help: "Events applied to the features for the first time."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recsys_featurecompute_duplicates_skipped_total", Help: "Events delivered again and skipped (already applied)."}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_featurecompute_dead_lettered_total", Help: "Messages parked on the dead-letter topic, by reason."}, []string{"reason"}),
		freshness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "recsys_feature_freshness_seconds",
			Help:    "Time from an event's event_time to its effect being visible in Redis.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "recsys_featurecompute_consumer_lag", Help: "Messages behind the end of the partition, as of the last fetch."}, []string{"partition"}),
	}
	reg.MustRegister(m.applied, m.duplicates, m.deadLettered, m.freshness, m.lag)
	return m
}

// Batching is how the consumer groups events.
type Batching struct {
	Size     int           // most events in one batch (one Redis round trip)
	Wait     time.Duration // how long a batch waits to fill once it has one event
	InFlight int           // batches applied at once
}

// Consumer applies fetched events in batches. Run it once.
type Consumer struct {
	reader *kafka.Reader
	dlq    *kafka.Writer
	store  *featurestore.Store
	m      *Metrics
	logger *slog.Logger
	b      Batching
	tracer trace.Tracer
	// afterApply, when set (tests), runs between the Redis write and the
	// offset commit: the window where a crash causes redelivery.
	afterApply func()
}

// NewConsumer returns a consumer. The reader must belong to a consumer
// group (commits) and is not closed by the consumer.
func NewConsumer(r *kafka.Reader, dlq *kafka.Writer, store *featurestore.Store, m *Metrics, logger *slog.Logger, b Batching) *Consumer {
	b.Size, b.InFlight = max(b.Size, 1), max(b.InFlight, 1)
	return &Consumer{reader: r, dlq: dlq, store: store, m: m, logger: logger, b: b, tracer: otel.Tracer("recsys/featurecompute")}
}

// applying is a fetched batch and, once its apply ends, the outcome.
type applying struct {
	batch []kafka.Message
	done  chan error
}

// Run consumes until ctx is done. Up to InFlight batches are applied to
// Redis at once, so Redis works while the next batch is fetched and the
// last one committed; the order of applying does not matter (every update
// commutes). Offsets are committed in fetch order, each batch only after it
// and every batch before it were applied. What was fetched but not yet
// committed when ctx ends is delivered again later, and skipped as
// duplicates.
func (c *Consumer) Run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var wg sync.WaitGroup
	var fetchErr error
	pending := make(chan applying, c.b.InFlight)
	slots := make(chan struct{}, c.b.InFlight) // one per batch between fetch and commit
	wg.Go(func() {
		defer close(pending)
		for {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			batch, err := c.fetch(ctx)
			if err != nil {
				if ctx.Err() == nil {
					fetchErr = fmt.Errorf("fetch from Kafka: %w", err)
					cancel()
				}
				return
			}
			a := applying{batch: batch, done: make(chan error, 1)}
			wg.Go(func() { a.done <- c.apply(ctx, batch) })
			pending <- a // never blocks: a slot was taken
		}
	})
	err := c.commitInOrder(ctx, pending, slots)
	cancel()
	wg.Wait()
	if parent.Err() != nil {
		return nil
	}
	return errors.Join(err, fetchErr)
}

// commitInOrder commits each pending batch once it is applied and frees
// its slot. It returns at the first error, or nil when ctx ends.
func (c *Consumer) commitInOrder(ctx context.Context, pending <-chan applying, slots <-chan struct{}) error {
	for a := range pending {
		err := <-a.done
		if err == nil {
			if c.afterApply != nil {
				c.afterApply()
			}
			err = c.commit(ctx, a.batch)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		<-slots
	}
	return nil
}

// fetch waits for one message, then takes what else arrives within
// the batch wait, up to the batch size.
func (c *Consumer) fetch(ctx context.Context) ([]kafka.Message, error) {
	m, err := c.reader.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := []kafka.Message{m}
	wctx, cancel := context.WithTimeout(ctx, c.b.Wait)
	defer cancel()
	for len(batch) < c.b.Size {
		m, err := c.reader.FetchMessage(wctx)
		if err != nil {
			break // the wait is over; a fetch error shows again next time
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// apply parks bad messages and applies the events, retrying Redis and the
// dead-letter topic until they answer or ctx ends.
func (c *Consumer) apply(ctx context.Context, batch []kafka.Message) error {
	links := make([]trace.Link, 0, len(batch))
	events := make([]featurestore.Event, 0, len(batch))
	var parked []kafka.Message
	for _, m := range batch {
		links = append(links, trace.LinkFromContext(eventstream.Context(ctx, m)))
		e, err := eventstream.Decode(m)
		if err != nil {
			parked = append(parked, deadLetter(m, "undecodable", err))
			continue
		}
		ev, err := eventstream.Check(e)
		if err != nil {
			parked = append(parked, deadLetter(m, "invalid", err))
			continue
		}
		events = append(events, ev)
	}
	ctx, span := c.tracer.Start(ctx, "featurecompute.apply", trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("events", len(events)), attribute.Int("dead_lettered", len(parked))))
	defer span.End()

	if len(parked) > 0 {
		if err := c.retry(ctx, "write to the dead-letter topic", func(ctx context.Context) error {
			return c.dlq.WriteMessages(ctx, parked...)
		}); err != nil {
			return err
		}
		for _, p := range parked {
			c.m.deadLettered.WithLabelValues(headerValue(p, "x-recsys-dlq-class")).Inc()
			c.logger.Warn("dead-lettered a message", "partition", headerValue(p, "x-recsys-source-partition"),
				"offset", headerValue(p, "x-recsys-source-offset"), "reason", headerValue(p, "x-recsys-dlq-reason"))
		}
	}
	var res featurestore.ApplyResult
	if err := c.retry(ctx, "apply events to Redis", func(ctx context.Context) error {
		var err error
		res, err = c.store.ApplyEvents(ctx, events)
		return err
	}); err != nil {
		return err
	}
	applied := time.Now()
	for _, e := range events {
		c.m.freshness.Observe(applied.Sub(e.Time).Seconds())
	}
	c.m.applied.Add(float64(res.Applied))
	c.m.duplicates.Add(float64(res.Duplicates))
	return nil
}

// commit commits a batch's offsets and updates the lag of its partitions.
func (c *Consumer) commit(ctx context.Context, batch []kafka.Message) error {
	if err := c.reader.CommitMessages(ctx, batch...); err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	last := map[int]kafka.Message{}
	for _, m := range batch {
		last[m.Partition] = m
	}
	for p, m := range last {
		c.m.lag.WithLabelValues(strconv.Itoa(p)).Set(float64(max(m.HighWaterMark-m.Offset-1, 0)))
	}
	return nil
}

// retry runs f until it succeeds or ctx ends, backing off up to 2 s; each
// try has a 10 s deadline.
func (c *Consumer) retry(ctx context.Context, what string, f func(context.Context) error) error {
	backoff := 50 * time.Millisecond
	for {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(tctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.logger.Error("retrying", "what", what, "err", err, "in", backoff.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// deadLetter makes the dead-letter copy of m: the same key, value and
// headers, plus where it came from and why it was parked (class is
// "undecodable" or "invalid").
func deadLetter(m kafka.Message, class string, reason error) kafka.Message {
	headers := append([]kafka.Header(nil), m.Headers...)
	headers = append(headers,
		kafka.Header{Key: "x-recsys-dlq-class", Value: []byte(class)},
		kafka.Header{Key: "x-recsys-dlq-reason", Value: []byte(reason.Error())},
		kafka.Header{Key: "x-recsys-source-topic", Value: []byte(m.Topic)},
		kafka.Header{Key: "x-recsys-source-partition", Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: "x-recsys-source-offset", Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: headers}
}

func headerValue(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
