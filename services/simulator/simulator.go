// Package simulator drives the running platform through its public APIs
// only, with the users of a generated world (services/trainer World): each
// session asks Recommend for a user, shows the list, clicks by the user's
// hidden tastes and a position bias, and sends the impressions and clicks
// through RecordEvents carrying the ranking's request id, model version and
// arm. It reports CTR over time and per arm.
package simulator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/progress"
	"github.com/recsys/recsys/libs/servicemap"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/trainer"
)

// Config is the simulator's whole configuration.
type Config struct {
	Ranking, Feedback, UserFeatures, ItemFeatures string
	WorldSeed                                     uint64
	Users, Items                                  int
	Sessions                                      int
	Rate                                          float64
	Concurrency                                   int
	ListSize                                      int
	Seed                                          bool
	// TLS, when set, is the client certificate for mTLS to the services.
	TLS serving.TLSFiles
}

// RegisterFlags adds the simulator's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Ranking, "ranking-addr", servicemap.Of(servicemap.Ranking).GRPCAddr(), "ranking gRPC address")
	fs.StringVar(&c.Feedback, "feedback-addr", servicemap.Of(servicemap.Feedback).GRPCAddr(), "feedback gRPC address")
	fs.StringVar(&c.UserFeatures, "userfeatures-addr", servicemap.Of(servicemap.UserFeatures).GRPCAddr(), "user features gRPC address (for -seed)")
	fs.StringVar(&c.ItemFeatures, "itemfeatures-addr", servicemap.Of(servicemap.ItemFeatures).GRPCAddr(), "item features gRPC address (for -seed)")
	fs.Uint64Var(&c.WorldSeed, "world-seed", 1, "seed of the generated world")
	fs.IntVar(&c.Users, "world-users", 1000, "users of the world")
	fs.IntVar(&c.Items, "world-items", 400, "items of the world")
	fs.IntVar(&c.Sessions, "sessions", 2000, "sessions to simulate (0: until stopped)")
	fs.Float64Var(&c.Rate, "rate", 50, "sessions per second (0: as fast as possible)")
	fs.IntVar(&c.Concurrency, "concurrency", 4, "sessions in flight")
	fs.IntVar(&c.ListSize, "list-size", 10, "items per recommendation list")
	fs.BoolVar(&c.Seed, "seed", true, "first load the world's users and items into the feature services")
	c.TLS.RegisterFlags(fs)
}

// Clients are the platform's APIs the simulator uses.
type Clients struct {
	Ranking  rankingv1.RankingServiceClient
	Feedback feedbackv1.FeedbackServiceClient
	Users    userfeaturesv1.UserFeatureServiceClient
	Items    itemfeaturesv1.ItemFeatureServiceClient
}

// Dial connects to the platform; close the returned function when done.
func Dial(c Config) (Clients, func(), error) {
	var conns []*grpc.ClientConn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	dial := func(addr string) *grpc.ClientConn {
		conn, err := serving.Dial(addr, serving.ClientConfig{TLS: c.TLS, DefaultTimeout: 5 * time.Second})
		if err != nil {
			return nil
		}
		conns = append(conns, conn)
		return conn
	}
	r, f, u, i := dial(c.Ranking), dial(c.Feedback), dial(c.UserFeatures), dial(c.ItemFeatures)
	if r == nil || f == nil || u == nil || i == nil {
		closeAll()
		return Clients{}, nil, errors.New("dial the platform: bad address")
	}
	return Clients{rankingv1.NewRankingServiceClient(r), feedbackv1.NewFeedbackServiceClient(f),
		userfeaturesv1.NewUserFeatureServiceClient(u), itemfeaturesv1.NewItemFeatureServiceClient(i)}, closeAll, nil
}

// SeedWorld loads the world's users and items, and gives every item one
// exploratory impression so retrieval (trending) sees the whole catalogue.
func SeedWorld(ctx context.Context, cl Clients, w *trainer.World) error {
	users, items := w.Profiles()
	for i := 0; i < len(users); i += 1000 {
		if _, err := cl.Users.UpsertUsers(ctx, &userfeaturesv1.UpsertUsersRequest{Users: users[i:min(i+1000, len(users))]}); err != nil {
			return fmt.Errorf("seed users: %w", err)
		}
	}
	for i := 0; i < len(items); i += 1000 {
		if _, err := cl.Items.UpsertItems(ctx, &itemfeaturesv1.UpsertItemsRequest{Items: items[i:min(i+1000, len(items))]}); err != nil {
			return fmt.Errorf("seed items: %w", err)
		}
	}
	evs := make([]*feedbackv1.Event, 0, len(items))
	for _, it := range items {
		evs = append(evs, &feedbackv1.Event{EventId: "seed-" + it.GetItemId(), Type: feedbackv1.EventType_EVENT_TYPE_IMPRESSION, UserId: "seed", ItemId: it.GetItemId()})
	}
	return recordEvents(ctx, cl, evs, "seed impressions")
}

// RecordHistory records users' past choices, an impression and a click
// for each at its time, so users arrive with the history a model was
// trained on. Event ids are derived from the choice, so recording the
// same history again counts nothing twice.
func RecordHistory(ctx context.Context, cl Clients, history []trainer.Interaction) error {
	evs := make([]*feedbackv1.Event, 0, 2*len(history))
	for _, in := range history {
		id, at := in.UserID+"-"+in.ItemID, timestamppb.New(in.Time)
		evs = append(evs, &feedbackv1.Event{EventId: "seen-" + id, Type: feedbackv1.EventType_EVENT_TYPE_IMPRESSION, UserId: in.UserID, ItemId: in.ItemID, EventTime: at})
		if in.Clicked {
			evs = append(evs, &feedbackv1.Event{EventId: "chose-" + id, Type: feedbackv1.EventType_EVENT_TYPE_CLICK, UserId: in.UserID, ItemId: in.ItemID, EventTime: at})
		}
	}
	return recordEvents(ctx, cl, evs, "record history")
}

// recordEvents sends events in batches the feedback service takes.
func recordEvents(ctx context.Context, cl Clients, evs []*feedbackv1.Event, what string) error {
	for i := 0; i < len(evs); i += 1000 {
		if _, err := cl.Feedback.RecordEvents(ctx, &feedbackv1.RecordEventsRequest{Events: evs[i:min(i+1000, len(evs))]}); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// ArmStats is what one arm (at one model version) got in a simulation.
type ArmStats struct {
	Arm, ModelVersion   string
	Impressions, Clicks int
}

// CTR is clicks per impression.
func (a ArmStats) CTR() float64 {
	if a.Impressions == 0 {
		return 0
	}
	return float64(a.Clicks) / float64(a.Impressions)
}

// Report is a simulation's outcome.
type Report struct {
	Sessions, Failed int
	Arms             []ArmStats
	CTRByTenth       []float64 // CTR of each tenth of the sessions
}

// Simulate runs sessions against the platform. Sessions that fail (an RPC
// error) are counted, not fatal.
func Simulate(ctx context.Context, cl Clients, w *trainer.World, c Config, runSeed uint64, out io.Writer) (*Report, error) {
	if c.Sessions <= 0 || c.ListSize <= 0 || c.Concurrency <= 0 {
		return nil, errors.New("sessions, list size and concurrency must be positive")
	}
	var (
		mu     sync.Mutex
		rep    = &Report{}
		arms   = map[string]*ArmStats{}
		tenthI = make([]int, 10)
		tenthC = make([]int, 10)
	)
	bar := progress.New(out, "simulating", "sessions", int64(c.Sessions))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for worker := range c.Concurrency {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(runSeed, uint64(worker)))
			for s := range jobs {
				imps, clicks, arm, err := session(ctx, cl, w, c.ListSize, rng, fmt.Sprintf("sim-%d-%d", runSeed, s))
				mu.Lock()
				rep.Sessions++
				if err != nil {
					rep.Failed++
				} else if imps > 0 {
					a := arms[arm.Arm+"\x1f"+arm.ModelVersion]
					if a == nil {
						a = &ArmStats{Arm: arm.Arm, ModelVersion: arm.ModelVersion}
						arms[arm.Arm+"\x1f"+arm.ModelVersion] = a
					}
					a.Impressions += imps
					a.Clicks += clicks
					tenthI[s*10/c.Sessions] += imps
					tenthC[s*10/c.Sessions] += clicks
				}
				mu.Unlock()
				bar.Add(1)
			}
		})
	}
	var tick <-chan time.Time
	if c.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / c.Rate))
		defer t.Stop()
		tick = t.C
	}
feed:
	for s := range c.Sessions {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				break feed
			}
		}
		select {
		case jobs <- s:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	bar.Done()
	for _, a := range arms {
		rep.Arms = append(rep.Arms, *a)
	}
	sort.Slice(rep.Arms, func(i, j int) bool {
		return rep.Arms[i].Arm+rep.Arms[i].ModelVersion < rep.Arms[j].Arm+rep.Arms[j].ModelVersion
	})
	for i := range tenthI {
		ctr := 0.0
		if tenthI[i] > 0 {
			ctr = float64(tenthC[i]) / float64(tenthI[i])
		}
		rep.CTRByTenth = append(rep.CTRByTenth, ctr)
	}
	return rep, ctx.Err()
}

// session is one user's visit: a recommendation, what the user sees and
// clicks, sent back as events.
func session(ctx context.Context, cl Clients, w *trainer.World, size int, rng *rand.Rand, id string) (int, int, ArmStats, error) {
	u := w.Users[rng.IntN(len(w.Users))]
	resp, err := cl.Ranking.Recommend(ctx, &rankingv1.RecommendRequest{UserId: u.ID, Limit: int32(size)})
	if err != nil {
		return 0, 0, ArmStats{}, err
	}
	arm := ArmStats{Arm: resp.GetArm(), ModelVersion: resp.GetModelVersion()}
	now := timestamppb.Now()
	var evs []*feedbackv1.Event
	clicks := 0
	for _, it := range resp.GetItems() {
		wi, ok := w.Item(it.GetItemId())
		if !ok {
			continue
		}
		// The serving flags go back with the events: the experiment
		// report's guardrails compare arms on them.
		base := &feedbackv1.Event{UserId: u.ID, ItemId: it.GetItemId(), RequestId: resp.GetRequestId(), ModelVersion: resp.GetModelVersion(),
			ExperimentId: resp.GetExperimentId(), Arm: resp.GetArm(), EventTime: now, Position: it.GetPosition(),
			FeaturesDegraded: resp.GetFeaturesDegraded(), ModelFallback: resp.GetModelFallback(), ServerLatency: resp.GetServerLatency()}
		evs = append(evs, withType(base, fmt.Sprintf("%s-%d-i", id, it.GetPosition()), feedbackv1.EventType_EVENT_TYPE_IMPRESSION))
		if rng.Float64() < w.ClickProbability(u, wi, int(it.GetPosition()), time.Now()) {
			evs = append(evs, withType(base, fmt.Sprintf("%s-%d-c", id, it.GetPosition()), feedbackv1.EventType_EVENT_TYPE_CLICK))
			clicks++
		}
	}
	if len(evs) == 0 {
		return 0, 0, arm, nil
	}
	if _, err := cl.Feedback.RecordEvents(ctx, &feedbackv1.RecordEventsRequest{Events: evs}); err != nil {
		return 0, 0, arm, err
	}
	return len(resp.GetItems()), clicks, arm, nil
}

func withType(base *feedbackv1.Event, id string, t feedbackv1.EventType) *feedbackv1.Event {
	e := proto.Clone(base).(*feedbackv1.Event)
	e.EventId, e.Type = id, t
	return e
}

// Print writes the report.
func (r *Report) Print(out io.Writer) {
	fmt.Fprintf(out, "%d sessions (%d failed)\n", r.Sessions, r.Failed)
	fmt.Fprintf(out, "CTR over time (by tenth):")
	for _, c := range r.CTRByTenth {
		fmt.Fprintf(out, " %.3f", c)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "  %-12s %-20s %12s %8s %7s\n", "arm", "model version", "impressions", "clicks", "CTR")
	for _, a := range r.Arms {
		fmt.Fprintf(out, "  %-12s %-20s %12d %8d %7.4f\n", a.Arm, a.ModelVersion, a.Impressions, a.Clicks, a.CTR())
	}
}
