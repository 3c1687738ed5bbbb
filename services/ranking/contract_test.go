package ranking

import (
	"context"
	"strings"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	"github.com/recsys/recsys/libs/experiment"
)

func fieldRules(m proto.Message, field protoreflect.Name) *validate.FieldRules {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(field)
	r, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	return r
}

// TestContractLimits: the limits the code uses are the ones ranking.proto
// declares.
func TestContractLimits(t *testing.T) {
	if got := fieldRules(&rankingv1.RankRequest{}, "candidate_ids").GetRepeated().GetMaxItems(); got != MaxCandidates {
		t.Errorf("RankRequest.candidate_ids max_items = %d, want MaxCandidates (%d)", got, MaxCandidates)
	}
	if got := fieldRules(&rankingv1.RecommendRequest{}, "limit").GetInt32().GetLte(); got < DefaultRecommendLimit {
		t.Errorf("RecommendRequest.limit lte = %d, below DefaultRecommendLimit (%d)", got, DefaultRecommendLimit)
	}
}

// TestBadRequestsNameTheField: the contract's rules reach the ranking
// service's callers as InvalidArgument naming the field.
func TestBadRequestsNameTheField(t *testing.T) {
	r := start(t, experiment.Default())
	ctx := context.Background()
	for _, tc := range []struct {
		name, field string
		call        func() error
	}{
		{"rank without user", "user_id", func() error {
			_, err := r.client.Rank(ctx, &rankingv1.RankRequest{CandidateIds: testCandidates})
			return err
		}},
		{"rank without candidates", "candidate_ids", func() error {
			_, err := r.client.Rank(ctx, &rankingv1.RankRequest{UserId: "u1"})
			return err
		}},
		{"rank with a negative limit", "limit", func() error {
			_, err := r.client.Rank(ctx, &rankingv1.RankRequest{UserId: "u1", CandidateIds: testCandidates, Limit: -1})
			return err
		}},
		{"recommend over the limit", "limit", func() error {
			_, err := r.client.Recommend(ctx, &rankingv1.RecommendRequest{UserId: "u1", Limit: 101})
			return err
		}},
		{"recommend with a negative category cap", "max_per_category", func() error {
			_, err := r.client.Recommend(ctx, &rankingv1.RecommendRequest{UserId: "u1", MaxPerCategory: -1})
			return err
		}},
		{"predict nothing", "input_data", func() error {
			_, err := r.infer.Predict(ctx, &rankingv1.PredictRequest{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("= %v, want InvalidArgument naming %s", err, tc.field)
			}
		})
	}
}
