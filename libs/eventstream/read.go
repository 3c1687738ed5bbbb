package eventstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Offsets are per-partition offsets of one topic.
type Offsets map[int]int64

// partitionOffsets asks each partition's leader for an offset.
func partitionOffsets(ctx context.Context, c Cluster, topic string, f func(*kafka.Conn) (int64, error)) (Offsets, error) {
	if len(c.Brokers) == 0 {
		return nil, errors.New("no Kafka brokers given")
	}
	d := c.Dialer()
	conn, err := d.DialContext(ctx, "tcp", c.Brokers[0])
	if err != nil {
		return nil, fmt.Errorf("kafka %s: %w", c.Brokers[0], err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("kafka topic %s: %w", topic, err)
	}
	out := Offsets{}
	for _, p := range parts {
		leader, err := d.DialLeader(ctx, "tcp", net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)), topic, p.ID)
		if err != nil {
			return nil, fmt.Errorf("kafka %s/%d: %w", topic, p.ID, err)
		}
		off, err := f(leader)
		leader.Close()
		if err != nil {
			return nil, fmt.Errorf("kafka %s/%d offsets: %w", topic, p.ID, err)
		}
		out[p.ID] = off
	}
	return out, nil
}

// Ends returns each partition's end: the offset the next message will get.
func Ends(ctx context.Context, c Cluster, topic string) (Offsets, error) {
	return partitionOffsets(ctx, c, topic, func(c *kafka.Conn) (int64, error) { return c.ReadLastOffset() })
}

// Starts returns each partition's first offset at or after t; the zero t
// means the first offset still in the log.
func Starts(ctx context.Context, c Cluster, topic string, t time.Time) (Offsets, error) {
	return partitionOffsets(ctx, c, topic, func(c *kafka.Conn) (int64, error) {
		if t.IsZero() {
			return c.ReadFirstOffset()
		}
		return c.ReadOffset(t)
	})
}

// ReadRange calls f for every message of each partition from from[p] up
// to, not including, to[p]. f's error stops the read.
func ReadRange(ctx context.Context, c Cluster, topic string, from, to Offsets, f func(kafka.Message) error) error {
	for p, end := range to {
		start := from[p]
		if start >= end {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Brokers, Dialer: c.Dialer(), Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond, MaxBytes: 10 << 20})
		if err := r.SetOffset(start); err != nil {
			r.Close()
			return err
		}
		for {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			m, err := r.ReadMessage(rctx)
			cancel()
			if err != nil {
				r.Close()
				return fmt.Errorf("read %s/%d at %d: %w", topic, p, start, err)
			}
			if err := f(m); err != nil {
				r.Close()
				return err
			}
			if m.Offset >= end-1 {
				break
			}
		}
		r.Close()
	}
	return nil
}
