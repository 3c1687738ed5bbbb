package eventstream

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/recsys/recsys/libs/certs"
	"github.com/recsys/recsys/libs/config"
)

// Cluster is how to reach a Kafka cluster: its bootstrap brokers and,
// optionally, TLS and a SASL mechanism. Every writer, reader, dialer and
// admin call of the project is built from one (NewWriter, Dialer,
// Transport, EnsureTopics, ...), so a secured cluster is secured
// everywhere. The zero TLS and SASL are plaintext without authentication.
// A Cluster is a value; share it freely.
type Cluster struct {
	Brokers []string
	TLS     *tls.Config
	SASL    sasl.Mechanism
}

// Plain is a cluster reached in plaintext without authentication, as the
// embedded broker and tests are.
func Plain(brokers ...string) Cluster { return Cluster{Brokers: brokers} }

// Dialer returns a dialer for connections to single brokers (admin calls,
// partition readers), with the cluster's TLS and SASL.
func (c Cluster) Dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 5 * time.Second, TLS: c.TLS, SASLMechanism: c.SASL}
}

// Transport returns a transport for a Writer, with the cluster's TLS and
// SASL. Each writer gets its own (a transport caches broker connections).
func (c Cluster) Transport() *kafka.Transport {
	return &kafka.Transport{DialTimeout: 2 * time.Second, IdleTimeout: time.Minute, TLS: c.TLS, SASL: c.SASL}
}

// Config is a binary's Kafka flags, filled by RegisterFlags (and so from
// RECSYS_* environment variables, libs/config); Cluster turns it into a
// Cluster. Written once here so every binary has the same flags.
type Config struct {
	Brokers      config.StringList // -kafka
	TLS          bool              // -kafka-tls
	CAFile       string            // -kafka-ca: the CA of the brokers' certificates ("": the system's)
	CertFile     string            // -kafka-cert: a client certificate, for brokers that require one
	KeyFile      string            // -kafka-key
	SASLUser     string            // -kafka-sasl-user: SCRAM-SHA-512 user ("": no SASL)
	SASLPassword string            // -kafka-sasl-password (better RECSYS_KAFKA_SASL_PASSWORD)
}

// RegisterFlags adds -kafka (default brokers, usage as given) and the
// security flags -kafka-tls, -kafka-ca, -kafka-cert, -kafka-key,
// -kafka-sasl-user and -kafka-sasl-password to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet, brokers []string, usage string) {
	c.Brokers = append(config.StringList(nil), brokers...)
	fs.Var(&c.Brokers, "kafka", usage)
	fs.BoolVar(&c.TLS, "kafka-tls", false, "talk TLS to Kafka (implied by -kafka-ca and -kafka-cert)")
	fs.StringVar(&c.CAFile, "kafka-ca", "", "PEM CA certificate that the brokers' certificates must chain to (empty: the system's roots)")
	fs.StringVar(&c.CertFile, "kafka-cert", "", "PEM client certificate to present to the brokers (ssl.client.auth); with -kafka-key")
	fs.StringVar(&c.KeyFile, "kafka-key", "", "PEM private key of -kafka-cert")
	fs.StringVar(&c.SASLUser, "kafka-sasl-user", "", "authenticate to Kafka with SASL/SCRAM-SHA-512 as this user (empty: no SASL)")
	fs.StringVar(&c.SASLPassword, "kafka-sasl-password", "", "password of -kafka-sasl-user; prefer the environment variable RECSYS_KAFKA_SASL_PASSWORD, which ps does not show")
}

// Cluster checks c and builds the Cluster it names (reading the TLS files
// now).
func (c Config) Cluster() (Cluster, error) {
	cl := Cluster{Brokers: c.Brokers}
	if c.TLS || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" {
		t, err := certs.ClientConfig(c.CAFile, c.CertFile, c.KeyFile)
		if err != nil {
			return Cluster{}, fmt.Errorf("kafka TLS: %w", err)
		}
		cl.TLS = t
	}
	if c.SASLUser != "" || c.SASLPassword != "" {
		if c.SASLUser == "" {
			return Cluster{}, errors.New("-kafka-sasl-password without -kafka-sasl-user")
		}
		m, err := scram.Mechanism(scram.SHA512, c.SASLUser, c.SASLPassword)
		if err != nil {
			return Cluster{}, fmt.Errorf("kafka SASL: %w", err)
		}
		cl.SASL = m
	}
	return cl, nil
}
