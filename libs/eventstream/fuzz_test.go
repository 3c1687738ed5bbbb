package eventstream

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
)

// FuzzDecode: any message value decodes to an event or an error; a decoded
// event is checked without panicking and, when valid, converts for the store.
func FuzzDecode(f *testing.F) {
	good, _ := proto.Marshal(&feedbackv1.Event{EventId: "e1", Type: feedbackv1.EventType_EVENT_TYPE_CLICK, UserId: "u", ItemId: "i", EventTime: timestamppb.Now()})
	f.Add(good)
	f.Add([]byte{0xff, 0xfe, 0x00, 0x13})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(kafka.Message{Value: b})
		if err != nil {
			return
		}
		if ev, err := Check(e); err == nil {
			if err := ev.Validate(); err != nil {
				t.Fatalf("Check passed but the store refuses the event: %v", err)
			}
		}
		_ = Validate(e, time.Now())
	})
}
