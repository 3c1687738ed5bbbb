package eventstream

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/featurestore"
)

func TestTraceContextTravelsInHeaders(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("t").Start(context.Background(), "record")
	defer span.End()

	m, err := Encode(ctx, &feedbackv1.Event{EventId: "e1", UserId: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Key) != "u1" {
		t.Errorf("key = %q, want the user id", m.Key)
	}
	got := trace.SpanContextFromContext(Context(context.Background(), m))
	if got.TraceID() != span.SpanContext().TraceID() {
		t.Errorf("trace id after Kafka = %s, want %s (headers %v)", got.TraceID(), span.SpanContext().TraceID(), m.Headers)
	}
}

func TestValidate(t *testing.T) {
	now := time.Now()
	good := func() *feedbackv1.Event {
		return &feedbackv1.Event{EventId: "e-1", Type: feedbackv1.EventType_EVENT_TYPE_CLICK, UserId: "u", ItemId: "i", EventTime: timestamppb.New(now)}
	}
	if err := Validate(good(), now); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*feedbackv1.Event)
		field  string
	}{
		{"bad id", func(e *feedbackv1.Event) { e.EventId = "has space" }, "event_id"},
		{"no type", func(e *feedbackv1.Event) { e.Type = 0 }, "type"},
		{"no item", func(e *feedbackv1.Event) { e.ItemId = "" }, "item_id"},
		{"no time", func(e *feedbackv1.Event) { e.EventTime = nil }, "event_time"},
		{"future", func(e *feedbackv1.Event) { e.EventTime = timestamppb.New(now.Add(time.Hour)) }, "event_time"},
		{"too old", func(e *feedbackv1.Event) { e.EventTime = timestamppb.New(now.Add(-MaxAge - time.Hour)) }, "event_time"},
	} {
		e := good()
		tc.mutate(e)
		if err := Validate(e, now); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Validate = %v, want an error naming %s", tc.name, err, tc.field)
		}
	}
	old := good()
	old.EventTime = timestamppb.New(now.Add(-MaxAge - time.Hour))
	ev, err := Check(old)
	if err != nil {
		t.Errorf("Check(an old event) = %v; the stream processor must still apply it", err)
	}
	if ev.ID != old.GetEventId() || ev.Kind != featurestore.Click || !ev.Time.Equal(old.GetEventTime().AsTime()) {
		t.Errorf("Check(an old event) = %+v, want it converted for the store", ev)
	}
}
