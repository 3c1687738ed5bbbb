// Package feedback records user feedback into the event stream and reports
// experiments (docs/architecture.md, "Experiments and their statistics").
//
// RecordEvents validates the whole batch first (its shape is the
// contract's, feedback.proto's buf.validate rules, which the serving
// interceptor enforces before the handler runs; the window of event times
// and the rules the stream processor shares are libs/eventstream's), then
// writes every event to Kafka keyed by user id and
// answers only once the broker acknowledged all of them (acks=all). A batch
// is accepted whole or refused with the first bad event named; a failed
// write answers Unavailable, and retrying with the same event ids never
// counts an event twice (the stream processor de-duplicates by id).
//
// GetExperimentReport analyses an experiment from the per-arm user-level
// sums the stream processor keeps (libs/experiment, docs/architecture.md
// "Experiments and their statistics"); the configured weights for its
// sample-ratio check come from the request or from the experiment file
// the ranking service reads (-experiment-file).
package feedback

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/featureservice"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/servicemap"
	"github.com/recsys/recsys/libs/serving"
)

// Config is the service's whole configuration.
type Config struct {
	Serving      serving.Config
	Kafka        eventstream.Config
	Topic        string
	Redis        featurestore.Config
	Namespace    string
	WriteTimeout time.Duration
	// ExperimentFile is the ranking service's experiment file: the
	// configured weights of the experiment it describes.
	ExperimentFile string
}

// RegisterFlags adds the service's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	// Default ports: this server's row of the service table.
	svc := servicemap.Of(servicemap.Feedback)
	c.Serving.RegisterFlags(fs, svc.GRPCPort, svc.HTTPPort)
	// A public endpoint: limit each client by default.
	serving.SetDefault(fs, "rate-limit", "500")
	serving.SetDefault(fs, "rate-burst", "1000")
	c.Kafka.RegisterFlags(fs, []string{servicemap.DefaultKafka}, "comma-separated Kafka bootstrap brokers")
	fs.StringVar(&c.Topic, "topic", eventstream.FeedbackTopic, "topic events are written to")
	c.Redis.RegisterFlags(fs) // the experiment counters
	fs.StringVar(&c.Namespace, "redis-namespace", "", "prefix of every feature key")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 5*time.Second, "longest wait for Kafka to acknowledge a batch")
	fs.StringVar(&c.ExperimentFile, "experiment-file", "", "the ranking service's experiment JSON, read at each report for the configured weights (sample-ratio check); empty: ranking's default experiment")
}

// Run serves until ctx is done.
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
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := eventstream.EnsureTopics(ectx, kc, 3, cfg.Topic); err != nil {
		logger.Warn("could not check the events topic; RecordEvents answers Unavailable until Kafka has it", "topic", cfg.Topic, "err", err)
	}
	cancel()
	w := eventstream.NewWriter(kc, cfg.Topic)
	defer w.Close()
	srv, err := serving.New(cfg.Serving, logger)
	if err != nil {
		return err
	}
	h := NewServer(w, store, cfg.ExperimentFile, cfg.WriteTimeout, srv.Metrics())
	feedbackv1.RegisterFeedbackServiceServer(srv.GRPC(), h)
	if err := srv.Publish(feedbackv1.File_recsys_feedback_v1_feedback_proto, feedbackv1.RegisterFeedbackServiceHandler); err != nil {
		srv.Close()
		return err
	}
	srv.AddCheck("redis", store.Ping)
	srv.AddCheck("kafka", func(ctx context.Context) error {
		conn, err := kc.Dialer().DialContext(ctx, "tcp", kc.Brokers[0])
		if err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
		return conn.Close()
	})
	return featureservice.RunFollowing(ctx, srv, store, logger)
}

// Server implements FeedbackService.
type Server struct {
	feedbackv1.UnimplementedFeedbackServiceServer
	w       *kafka.Writer
	store   *featurestore.Store
	expFile string
	timeout time.Duration
	events  *prometheus.CounterVec
	arms    *prometheus.CounterVec
	now     func() time.Time

	// armLabels bounds the label values clients can create through
	// experiment ids and arms (metric cardinality): past maxArmLabels
	// combinations, new ones are counted as "other".
	armMu     sync.Mutex
	armLabels map[[2]string]bool
}

const maxArmLabels = 1000

// NewServer returns the handlers over a Kafka writer and the store with the
// experiment counters; experimentFile is the ranking service's experiment
// file ("" for its default experiment), read at each report.
func NewServer(w *kafka.Writer, store *featurestore.Store, experimentFile string, writeTimeout time.Duration, reg prometheus.Registerer) *Server {
	s := &Server{w: w, store: store, expFile: experimentFile, timeout: writeTimeout, now: time.Now, armLabels: map[[2]string]bool{},
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_feedback_events_total",
			Help: "Feedback events by type and outcome (accepted, invalid, unavailable).",
		}, []string{"type", "result"}),
	}
	s.arms = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "recsys_experiment_events_total",
		Help: "Accepted events by experiment, arm and type (per-arm CTR: clicks / impressions).",
	}, []string{"experiment_id", "arm", "type"})
	reg.MustRegister(s.events, s.arms)
	return s
}

// RecordEvents validates and writes a batch of events.
func (s *Server) RecordEvents(ctx context.Context, req *feedbackv1.RecordEventsRequest) (*feedbackv1.RecordEventsResponse, error) {
	evs := req.GetEvents()
	now := s.now()
	msgs := make([]kafka.Message, len(evs))
	for i, e := range evs {
		if e.GetEventTime() == nil {
			e.EventTime = timestamppb.New(now)
		}
		if err := eventstream.Validate(e, now); err != nil {
			s.count(evs, "invalid")
			return nil, status.Errorf(codes.InvalidArgument, "events[%d] (%s): %v; nothing was recorded", i, e.GetEventId(), err)
		}
		m, err := eventstream.Encode(ctx, e)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "events[%d]: %v", i, err)
		}
		msgs[i] = m
	}
	// Answer Unavailable before the caller's own deadline, not after it.
	deadline := now.Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-d.Sub(now)/10).Before(deadline) {
		deadline = d.Add(-d.Sub(now) / 10)
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := s.w.WriteMessages(wctx, msgs...); err != nil {
		s.count(evs, "unavailable")
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Errorf(codes.Unavailable, "event stream (Kafka) unavailable: %v; retry with the same event ids, nothing is counted twice", err)
	}
	s.count(evs, "accepted")
	for _, e := range evs {
		if e.GetExperimentId() != "" {
			exp, arm := s.armLabel(e.GetExperimentId(), e.GetArm())
			s.arms.WithLabelValues(exp, arm, eventType(e)).Inc()
		}
	}
	return &feedbackv1.RecordEventsResponse{AcceptedCount: int32(len(evs))}, nil
}

func (s *Server) count(evs []*feedbackv1.Event, result string) {
	for _, e := range evs {
		s.events.WithLabelValues(eventType(e), result).Inc()
	}
}

// armLabel returns the metric labels of an experiment arm: itself while
// fewer than maxArmLabels combinations have been seen, else "other".
func (s *Server) armLabel(exp, arm string) (string, string) {
	key := [2]string{exp, arm}
	s.armMu.Lock()
	defer s.armMu.Unlock()
	if s.armLabels[key] {
		return exp, arm
	}
	if len(s.armLabels) >= maxArmLabels {
		return "other", "other"
	}
	s.armLabels[key] = true
	return exp, arm
}

// eventType is "impression" or "click" (a metric label).
func eventType(e *feedbackv1.Event) string {
	return strings.ToLower(strings.TrimPrefix(e.GetType().String(), "EVENT_TYPE_"))
}

// GetExperimentReport reports an experiment from the user-level sums the
// stream processor keeps. The contract has checked the weights (finite,
// not negative, one positive).
func (s *Server) GetExperimentReport(ctx context.Context, req *feedbackv1.GetExperimentReportRequest) (*feedbackv1.GetExperimentReportResponse, error) {
	counts, arms, err := s.store.ExperimentStats(ctx, req.GetExperimentId())
	if err != nil {
		return nil, featureservice.Status(err)
	}
	weights, note := req.GetArmWeights(), ""
	if len(weights) == 0 {
		weights, note = s.configuredWeights(req.GetExperimentId())
	}
	r, err := experiment.Report(experiment.Input{ID: req.GetExperimentId(), Control: req.GetControlArm(), Weights: weights, Counts: counts, Arms: arms})
	switch {
	case errors.Is(err, experiment.ErrNoEvents):
		return nil, status.Errorf(codes.NotFound, "experiment %q: %v", req.GetExperimentId(), err)
	case err != nil:
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if note != "" {
		r.Warnings = append(r.Warnings, note)
	}
	r.GeneratedAt = timestamppb.New(s.now())
	return r, nil
}

// configuredWeights are the arms' weights in the experiment file, read
// now (the ranking service reloads it when it changes), when it describes
// experiment id; else nil, and why in words when the reader should know.
func (s *Server) configuredWeights(id string) (map[string]float64, string) {
	c := experiment.Default()
	if s.expFile != "" {
		var err error
		if c, err = experiment.Load(s.expFile); err != nil {
			return nil, fmt.Sprintf("The experiment file did not load, so its weights are unknown: %v.", err)
		}
	}
	if c.ID != id {
		return nil, ""
	}
	w := make(map[string]float64, len(c.Arms))
	for _, a := range c.Arms {
		w[a.Name] = a.Weight
	}
	return w, ""
}
