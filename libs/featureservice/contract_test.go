package featureservice

import (
	"slices"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/featurestore"
)

func rules(m proto.Message, field protoreflect.Name) *validate.FieldRules {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(field)
	r, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	return r
}

func names(defs []featurestore.Def) []string {
	out := make([]string, len(defs))
	for i, d := range defs {
		out[i] = d.Name
	}
	return out
}

// TestContractAgreesWithTheStore: the feature names and limits the
// contract declares (the user and item feature protos' buf.validate
// rules, which the serving interceptor enforces) are the feature store's,
// so a request the contract accepts is one the store serves.
func TestContractAgreesWithTheStore(t *testing.T) {
	for _, tc := range []struct {
		msg   proto.Message
		field protoreflect.Name
		want  []string
	}{
		{&userfeaturesv1.GetUserFeatureRequest{}, "feature_names", names(featurestore.UserFeatures)},
		{&userfeaturesv1.GetUserFeaturesRequest{}, "feature_names", names(featurestore.UserFeatures)},
		{&itemfeaturesv1.GetItemFeatureRequest{}, "feature_names", names(featurestore.ItemFeatures)},
		{&itemfeaturesv1.GetItemFeaturesRequest{}, "feature_names", names(featurestore.ItemFeatures)},
	} {
		name := tc.msg.ProtoReflect().Descriptor().Name()
		if got := rules(tc.msg, tc.field).GetRepeated().GetItems().GetString().GetIn(); !slices.Equal(got, tc.want) {
			t.Errorf("%s.%s: the contract allows %v, the store has %v", name, tc.field, got, tc.want)
		}
	}
	for _, tc := range []struct {
		msg   proto.Message
		field protoreflect.Name
	}{{&userfeaturesv1.GetUserFeaturesRequest{}, "user_ids"}, {&itemfeaturesv1.GetItemFeaturesRequest{}, "item_ids"}} {
		if got := rules(tc.msg, tc.field).GetRepeated().GetMaxItems(); got != featurestore.MaxEntitiesPerRead {
			t.Errorf("%s.%s max_items = %d, want featurestore.MaxEntitiesPerRead (%d)", tc.msg.ProtoReflect().Descriptor().Name(), tc.field, got, featurestore.MaxEntitiesPerRead)
		}
	}
	limit := rules(&itemfeaturesv1.ListTrendingItemsRequest{}, "limit").GetInt32()
	if limit.GetGte() != 0 || limit.GetLte() != featurestore.MaxTrending || DefaultTrendingLimit > featurestore.MaxTrending {
		t.Errorf("ListTrendingItemsRequest.limit = %v, want 0..featurestore.MaxTrending (%d), which holds DefaultTrendingLimit (%d)", limit, featurestore.MaxTrending, DefaultTrendingLimit)
	}
}
