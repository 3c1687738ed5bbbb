package featureservice

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

func start(t *testing.T) (*testenv.Server, *miniredis.Miniredis) {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	store, err := featurestore.New(rdb, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.Serve(t, func(srv *serving.Server) {
		metrics := NewMetrics(srv.Metrics())
		userfeaturesv1.RegisterUserFeatureServiceServer(srv.GRPC(), &UserServer{Store: store, Metrics: metrics})
		itemfeaturesv1.RegisterItemFeatureServiceServer(srv.GRPC(), &ItemServer{Store: store, Metrics: metrics})
		if err := srv.Publish(userfeaturesv1.File_recsys_userfeatures_v1_userfeatures_proto, userfeaturesv1.RegisterUserFeatureServiceHandler); err != nil {
			t.Fatal(err)
		}
	})
	return srv, m
}

func TestFeatureServices(t *testing.T) {
	srv, m := start(t)
	users := userfeaturesv1.NewUserFeatureServiceClient(srv.Conn)
	items := itemfeaturesv1.NewItemFeatureServiceClient(srv.Conn)
	ctx := context.Background()

	if _, err := users.UpsertUsers(ctx, &userfeaturesv1.UpsertUsersRequest{Users: []*userfeaturesv1.UserProfile{{UserId: "u1", Age: 40}}}); err != nil {
		t.Fatal(err)
	}
	got, err := users.GetUserFeatures(ctx, &userfeaturesv1.GetUserFeaturesRequest{UserIds: []string{"u1", "nobody"}, FeatureNames: []string{"age"}})
	if err != nil {
		t.Fatal(err)
	}
	if a := got.GetUsers()[0].GetFeatures()["age"]; a.GetNumber() != 40 || a.GetMissing() {
		t.Errorf("u1 age = %v, want 40", a)
	}
	if !got.GetUsers()[1].GetMissing() {
		t.Error("unknown user not flagged missing")
	}

	for _, tc := range []struct {
		name    string
		call    func() error
		code    codes.Code
		mention string
	}{
		{"no ids", func() error {
			_, err := users.GetUserFeatures(ctx, &userfeaturesv1.GetUserFeaturesRequest{})
			return err
		}, codes.InvalidArgument, "user_ids"},
		{"too many ids", func() error {
			_, err := items.GetItemFeatures(ctx, &itemfeaturesv1.GetItemFeaturesRequest{ItemIds: make([]string, featurestore.MaxEntitiesPerRead+1)})
			return err
		}, codes.InvalidArgument, "item_ids"},
		{"unknown feature", func() error {
			_, err := users.GetUserFeature(ctx, &userfeaturesv1.GetUserFeatureRequest{UserId: "u1", FeatureNames: []string{"shoe_size"}})
			return err
		}, codes.InvalidArgument, "shoe_size"},
		{"bad trending limit", func() error {
			_, err := items.ListTrendingItems(ctx, &itemfeaturesv1.ListTrendingItemsRequest{Limit: -1})
			return err
		}, codes.InvalidArgument, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("= %v, want %v mentioning %q", err, tc.code, tc.mention)
			}
		})
	}

	// REST: an unknown user reads as defaults, not an error.
	resp, err := http.Get(srv.URL("/v1/users/nobody/features"))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		User struct {
			Missing  bool
			Features map[string]struct{ Number float64 }
		}
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !body.User.Missing || body.User.Features["ctr"].Number != featurestore.CTRPrior {
		t.Errorf("GET /v1/users/nobody/features = HTTP %d %+v, want 200, missing, ctr %v", resp.StatusCode, body, featurestore.CTRPrior)
	}

	// Redis gone: Unavailable, naming the dependency.
	m.Close()
	_, err = users.GetUserFeature(ctx, &userfeaturesv1.GetUserFeatureRequest{UserId: "u1"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "feature store") {
		t.Errorf("with Redis down = %v, want Unavailable naming the feature store", err)
	}
}
