package eventstream

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/recsys/recsys/libs/testenv"
)

// TestSecureKafka talks to a Kafka listener that speaks TLS and requires
// SASL/SCRAM-SHA-512: the flags every binary has (Config) get topic
// creation, offsets, a produce and a consume through, and a client
// without credentials, with a wrong password, or without TLS is refused.
func TestSecureKafka(t *testing.T) {
	env := testenv.NewSecureKafka(t)
	cluster := func(t *testing.T, args ...string) Cluster {
		t.Helper()
		var c Config
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		c.RegisterFlags(fs, nil, "brokers")
		if err := fs.Parse(append([]string{"-kafka=" + env.Brokers[0]}, args...)); err != nil {
			t.Fatal(err)
		}
		cl, err := c.Cluster()
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := fmt.Sprintf("secure.%d", time.Now().UnixNano())

	t.Run("credentials and TLS", func(t *testing.T) {
		c := cluster(t, "-kafka-tls", "-kafka-ca="+env.CAFile, "-kafka-sasl-user="+env.User, "-kafka-sasl-password="+env.Password)
		if err := EnsureTopics(ctx, c, 1, topic); err != nil {
			t.Fatalf("EnsureTopics over SASL_SSL: %v", err)
		}
		w := NewWriter(c, topic)
		defer w.Close()
		// Topic metadata reaches every broker a moment after creation.
		var err error
		for range 50 {
			if err = w.WriteMessages(ctx, kafka.Message{Key: []byte("u1"), Value: []byte("hello")}); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("produce over SASL_SSL: %v", err)
		}
		ends, err := Ends(ctx, c, topic)
		if err != nil || ends[0] != 1 {
			t.Fatalf("Ends(%s) = %v, %v; want partition 0 at 1", topic, ends, err)
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Brokers, Dialer: c.Dialer(), Topic: topic, GroupID: topic + ".g", MaxWait: 100 * time.Millisecond})
		defer r.Close()
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("consume over SASL_SSL: %v", err)
		}
		if string(m.Value) != "hello" {
			t.Errorf("consumed %q, want %q", m.Value, "hello")
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Errorf("commit over SASL_SSL: %v", err)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no credentials", []string{"-kafka-tls", "-kafka-ca=" + env.CAFile}},
		{"wrong password", []string{"-kafka-tls", "-kafka-ca=" + env.CAFile, "-kafka-sasl-user=" + env.User, "-kafka-sasl-password=not-" + env.Password}},
		{"no TLS", []string{"-kafka-sasl-user=" + env.User, "-kafka-sasl-password=" + env.Password}},
		{"unknown CA", []string{"-kafka-tls", "-kafka-sasl-user=" + env.User, "-kafka-sasl-password=" + env.Password}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster(t, tc.args...)
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, err := Ends(rctx, c, topic); err == nil {
				t.Errorf("Ends(%s) with %v succeeded; want it refused", topic, tc.args)
			} else {
				t.Logf("refused as it should be: %v", err)
			}
			w := NewWriter(c, topic)
			defer w.Close()
			if err := w.WriteMessages(rctx, kafka.Message{Value: []byte("intruder")}); err == nil {
				t.Errorf("produce with %v succeeded; want it refused", tc.args)
			}
		})
	}
}
