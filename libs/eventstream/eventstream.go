// Package eventstream is the project's use of Kafka: topic names, the
// feedback event codec (protobuf values keyed by user id, trace context in
// headers), event validation, and writers and readers configured the same
// way everywhere. (The embedded broker of make run and tests is
// libs/embedded's.)
package eventstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"google.golang.org/protobuf/proto"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/featurestore"
)

// Topics.
const (
	FeedbackTopic = "feedback.events"
	FeedbackDLQ   = "feedback.events.dlq"
	ServedTopic   = "ranking.served"
)

// Limits of event validation.
const (
	// MaxFuture is how far ahead of the server's clock an event may be
	// (client clock skew).
	MaxFuture = 5 * time.Minute
	// MaxAge is how old an event may be: the store remembers event ids for
	// this long, so an older redelivery could count twice.
	MaxAge = featurestore.DedupWindow
	// MaxIDBytes bounds event, user and item ids.
	MaxIDBytes = 256
)

var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,128}$`)

// Validate checks an event received at now: its shape (Check) and that its
// event_time lies within [now-MaxAge, now+MaxFuture]. The feedback service
// sets a missing event_time to the arrival time first. The error names the
// field.
func Validate(e *feedbackv1.Event, now time.Time) error {
	if _, err := Check(e); err != nil {
		return err
	}
	t := e.GetEventTime().AsTime()
	if t.After(now.Add(MaxFuture)) {
		return fmt.Errorf("event_time %s: more than %s in the future", t.Format(time.RFC3339), MaxFuture)
	}
	if t.Before(now.Add(-MaxAge)) {
		return fmt.Errorf("event_time %s: older than %s", t.Format(time.RFC3339), MaxAge)
	}
	return nil
}

// Check checks an event's shape, not its age: what the stream processor
// requires of an event already accepted into the log (it may read it late,
// after an outage or in a rebuild). It returns the event converted for the
// feature store, which checks the rest, so an event on its way through the
// stream processor is converted once.
func Check(e *feedbackv1.Event) (featurestore.Event, error) {
	var err error
	switch {
	case !eventIDPattern.MatchString(e.GetEventId()):
		err = fmt.Errorf("event_id %q: want 1 to 128 letters, digits or . _ : -", e.GetEventId())
	case e.GetType() != feedbackv1.EventType_EVENT_TYPE_IMPRESSION && e.GetType() != feedbackv1.EventType_EVENT_TYPE_CLICK:
		err = fmt.Errorf("type %v: want EVENT_TYPE_IMPRESSION or EVENT_TYPE_CLICK", e.GetType())
	case e.GetUserId() == "" || len(e.GetUserId()) > MaxIDBytes:
		err = fmt.Errorf("user_id: want 1 to %d bytes", MaxIDBytes)
	case e.GetItemId() == "" || len(e.GetItemId()) > MaxIDBytes:
		err = fmt.Errorf("item_id: want 1 to %d bytes", MaxIDBytes)
	case e.GetExperimentId() != "" && e.GetArm() == "":
		err = fmt.Errorf("arm: required with experiment_id %q", e.GetExperimentId())
	case e.GetEventTime() == nil:
		err = errors.New("event_time: required")
	}
	if err != nil {
		return featurestore.Event{}, err
	}
	ev := ToStore(e)
	if err := ev.Validate(); err != nil {
		return featurestore.Event{}, err
	}
	return ev, nil
}

// ToStore converts a validated event for the feature store.
func ToStore(e *feedbackv1.Event) featurestore.Event {
	kind := featurestore.Impression
	if e.GetType() == feedbackv1.EventType_EVENT_TYPE_CLICK {
		kind = featurestore.Click
	}
	return featurestore.Event{
		ID: e.GetEventId(), Kind: kind, UserID: e.GetUserId(), ItemID: e.GetItemId(), Time: e.GetEventTime().AsTime(),
		ExperimentID: e.GetExperimentId(), Arm: e.GetArm(), ModelVersion: e.GetModelVersion(),
		FeaturesDegraded: e.GetFeaturesDegraded(), ModelFallback: e.GetModelFallback(), ServerLatency: e.GetServerLatency().AsDuration(),
	}
}

// Encode makes the Kafka message of an event: keyed by user id (one user's
// events stay in order on one partition), the trace context of ctx in its
// headers.
func Encode(ctx context.Context, e *feedbackv1.Event) (kafka.Message, error) {
	b, err := proto.Marshal(e)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode event %s: %w", e.GetEventId(), err)
	}
	m := kafka.Message{Key: []byte(e.GetUserId()), Value: b}
	otel.GetTextMapPropagator().Inject(ctx, (*headerCarrier)(&m.Headers))
	return m, nil
}

// Decode reads an event from a message; the error says why it cannot.
func Decode(m kafka.Message) (*feedbackv1.Event, error) {
	e := &feedbackv1.Event{}
	if err := proto.Unmarshal(m.Value, e); err != nil {
		return nil, fmt.Errorf("not a recsys.feedback.v1.Event: %w", err)
	}
	return e, nil
}

// Context returns ctx carrying the trace context of a message's headers.
func Context(ctx context.Context, m kafka.Message) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, (*headerCarrier)(&m.Headers))
}

// headerCarrier adapts Kafka headers to OpenTelemetry propagation.
type headerCarrier []kafka.Header

func (h *headerCarrier) Get(key string) string {
	for _, x := range *h {
		if x.Key == key {
			return string(x.Value)
		}
	}
	return ""
}

func (h *headerCarrier) Set(key, value string) {
	for i, x := range *h {
		if x.Key == key {
			(*h)[i].Value = []byte(value)
			return
		}
	}
	*h = append(*h, kafka.Header{Key: key, Value: []byte(value)})
}

func (h *headerCarrier) Keys() []string {
	keys := make([]string, len(*h))
	for i, x := range *h {
		keys[i] = x.Key
	}
	return keys
}

// NewWriter returns a writer to topic that waits for every in-sync replica
// (acks=all), batches for at most a few milliseconds (the kafka-go default
// of 1 s would make every synchronous write take a second), spreads keys
// like the Java client (murmur2), and gives up after a few attempts so
// callers see failures within their deadline. Close it when done.
func NewWriter(c Cluster, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:            kafka.TCP(c.Brokers...),
		Topic:           topic,
		Balancer:        &kafka.Murmur2Balancer{},
		RequiredAcks:    kafka.RequireAll,
		BatchTimeout:    2 * time.Millisecond,
		BatchSize:       1000,
		MaxAttempts:     3,
		WriteBackoffMin: 20 * time.Millisecond,
		WriteBackoffMax: 200 * time.Millisecond,
		WriteTimeout:    5 * time.Second,
		ReadTimeout:     5 * time.Second,
		Transport:       c.Transport(),
	}
}

// EnsureTopics creates the topics that do not exist yet, with the given
// partitions and replication factor 1 (a real cluster's topics are made by
// its operators; this serves make run and tests).
func EnsureTopics(ctx context.Context, c Cluster, partitions int, topics ...string) error {
	if len(c.Brokers) == 0 {
		return errors.New("no Kafka brokers given")
	}
	d := c.Dialer()
	conn, err := d.DialContext(ctx, "tcp", c.Brokers[0])
	if err != nil {
		return fmt.Errorf("kafka %s: %w", c.Brokers[0], err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("kafka controller: %w", err)
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("kafka controller %s:%d: %w", ctrl.Host, ctrl.Port, err)
	}
	defer cc.Close()
	cfgs := make([]kafka.TopicConfig, len(topics))
	for i, t := range topics {
		cfgs[i] = kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1}
	}
	if err := cc.CreateTopics(cfgs...); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	return nil
}
