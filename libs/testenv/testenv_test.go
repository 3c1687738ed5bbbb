package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

func TestRedis(t *testing.T) {
	env := NewRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: env.Addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := env.Prefix + "k"
	if err := rdb.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatalf("SET on %s Redis: %v", env.Kind, err)
	}
	if got, err := rdb.Get(ctx, key).Result(); err != nil || got != "v" {
		t.Errorf("GET %s = %q, %v; want \"v\"", key, got, err)
	}
	if other := NewRedis(t); other.Prefix == env.Prefix {
		t.Errorf("two Redis environments share the prefix %q", env.Prefix)
	}
}

func TestKafka(t *testing.T) {
	env := NewKafka(t)
	topic := env.Topic(t, "testenv", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(env.Brokers...), Topic: topic, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("hello")}); err != nil {
		t.Fatalf("produce to %s Kafka: %v", env.Kind, err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: env.Brokers, Topic: topic, GroupID: topic + "-g", MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("consume from %s Kafka: %v", env.Kind, err)
	}
	if string(m.Value) != "hello" {
		t.Errorf("consumed %q, want %q", m.Value, "hello")
	}
}
