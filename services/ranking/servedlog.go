package ranking

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
)

// ServedLog publishes served rankings to Kafka through a bounded buffer:
// ranking never waits for Kafka; when the buffer is full the record is
// dropped and counted. Offer may be called concurrently; Run owns the
// writing.
type ServedLog struct {
	ch      chan *rankingv1.ServedRanking
	w       *kafka.Writer
	logger  *slog.Logger
	dropped prometheus.Counter
	written prometheus.Counter
}

// NewServedLog returns a log writing through w with room for size records.
func NewServedLog(w *kafka.Writer, size int, logger *slog.Logger, reg prometheus.Registerer) *ServedLog {
	l := &ServedLog{ch: make(chan *rankingv1.ServedRanking, size), w: w, logger: logger,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recsys_served_log_dropped_total", Help: "Served rankings not logged: buffer full or Kafka failing."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recsys_served_log_written_total", Help: "Served rankings written to Kafka."}),
	}
	reg.MustRegister(l.dropped, l.written)
	return l
}

// Offer queues a record, or drops it when the buffer is full.
func (l *ServedLog) Offer(r *rankingv1.ServedRanking) {
	select {
	case l.ch <- r:
	default:
		l.dropped.Inc()
	}
}

// Run writes queued records in batches until ctx is done, then flushes
// what is queued within a few seconds.
func (l *ServedLog) Run(ctx context.Context) {
	batch := make([]kafka.Message, 0, 256)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.w.WriteMessages(wctx, batch...); err != nil {
			l.dropped.Add(float64(len(batch)))
			l.logger.Warn("served rankings not logged", "count", len(batch), "err", err)
		} else {
			l.written.Add(float64(len(batch)))
		}
		batch = batch[:0]
	}
	add := func(r *rankingv1.ServedRanking) {
		b, err := proto.Marshal(r)
		if err != nil {
			l.dropped.Inc()
			return
		}
		batch = append(batch, kafka.Message{Key: []byte(r.GetUserId()), Value: b})
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-l.ch:
			add(r)
			if len(batch) == cap(batch) {
				flush()
			}
		case <-tick.C:
			flush()
		case <-ctx.Done():
			for {
				select {
				case r := <-l.ch:
					add(r)
				default:
					flush()
					return
				}
			}
		}
	}
}
