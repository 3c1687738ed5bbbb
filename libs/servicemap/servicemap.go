// Package servicemap is the platform's one table of servers: each one's
// name, default gRPC and HTTP ports, the protobuf package of its gRPC
// services and the REST gateway handlers it publishes (docs/architecture.md,
// "Services, contracts and ports").
//
// It is the source of these facts: each service's default ports, the
// launcher of make run (services/local) and the web edge's upstreams
// (services/web) read it, and the README's port table, docker-compose.yml
// and the Kubernetes manifests are checked against it
// (deploy/manifeststest).
//
// The port plan leaves the standard ports to the standard servers (Kafka
// 9092, Redis 6379, Prometheus 9090): gRPC on 50050-50055, HTTP (REST,
// gRPC-Web, /metrics, /livez, /readyz) on 8091-8095, and 8080 for the web
// UI and the edge that mounts every service under one origin.
package servicemap

import (
	"fmt"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/serving"
)

// Name names a server of the platform; it is also its binary, its image
// (recsys/<name>), its compose service and its Kubernetes Service.
type Name string

// The servers, in port order.
const (
	Web            Name = "web"
	UserFeatures   Name = "userfeatures"
	ItemFeatures   Name = "itemfeatures"
	Ranking        Name = "ranking"
	Feedback       Name = "feedback"
	FeatureCompute Name = "featurecompute"
)

// The standard servers the platform uses, on their standard ports.
const (
	KafkaPort = 9092
	RedisPort = 6379
	// DefaultKafka is every binary's default -kafka: a broker on this
	// machine, where make deps-up and make run's embedded broker listen.
	// (-redis's default, localhost:6379, is featurestore.Config.RegisterFlags'.)
	DefaultKafka = "localhost:9092"
)

// Service is one row of the table.
type Service struct {
	Name     Name
	GRPCPort int
	HTTPPort int
	// Package is the protobuf package of the server's public gRPC
	// services ("recsys.ranking.v1"): their gRPC-Web paths start with
	// "/<Package>.". Empty for a server with no public API (its gRPC port
	// serves health and reflection only).
	Package string
	// Gateway registers the server's REST API on a grpc-gateway mux, as
	// the server itself and the web edge publish it.
	Gateway []serving.GatewayRegistrar
}

// GRPCAddr is the address a client on the same machine dials.
func (s Service) GRPCAddr() string { return fmt.Sprintf("localhost:%d", s.GRPCPort) }

// HTTPAddr is the address of the server's HTTP port on the same machine.
func (s Service) HTTPAddr() string { return fmt.Sprintf("localhost:%d", s.HTTPPort) }

// All returns the table, in port order. The slice is the caller's.
func All() []Service {
	return []Service{
		{Name: Web, GRPCPort: 50050, HTTPPort: 8080},
		{Name: UserFeatures, GRPCPort: 50051, HTTPPort: 8091, Package: "recsys.userfeatures.v1",
			Gateway: []serving.GatewayRegistrar{userfeaturesv1.RegisterUserFeatureServiceHandler}},
		{Name: ItemFeatures, GRPCPort: 50052, HTTPPort: 8092, Package: "recsys.itemfeatures.v1",
			Gateway: []serving.GatewayRegistrar{itemfeaturesv1.RegisterItemFeatureServiceHandler}},
		{Name: Ranking, GRPCPort: 50053, HTTPPort: 8093, Package: "recsys.ranking.v1",
			Gateway: []serving.GatewayRegistrar{rankingv1.RegisterRankingServiceHandler, rankingv1.RegisterInferenceServiceHandler, rankingv1.RegisterModelServiceHandler}},
		{Name: Feedback, GRPCPort: 50054, HTTPPort: 8094, Package: "recsys.feedback.v1",
			Gateway: []serving.GatewayRegistrar{feedbackv1.RegisterFeedbackServiceHandler}},
		{Name: FeatureCompute, GRPCPort: 50055, HTTPPort: 8095},
	}
}

// Of returns the row of name. name is one of the constants above; any
// other is a programming error, and Of panics on it.
func Of(name Name) Service {
	for _, s := range All() {
		if s.Name == name {
			return s
		}
	}
	panic(fmt.Sprintf("servicemap: no server %q", name))
}
