package serving_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// TestContractRulesBeforeTheHandler sends requests that break the rules
// feedback.proto declares (buf.validate) over each protocol: each is
// refused with InvalidArgument naming every bad field, and the handler,
// which checks nothing itself, never runs.
func TestContractRulesBeforeTheHandler(t *testing.T) {
	ts := startServer(t, nil)
	bad := events("u1", "", "u3")
	bad.Events[0].EventId = "has space"
	bad.Events[2].ExperimentId = "exp" // without an arm
	wantFields := []string{"events[0].event_id", "events[1].user_id", "events[2]"}

	_, err := ts.client(t, serving.ClientConfig{}).RecordEvents(context.Background(), bad)
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("gRPC RecordEvents(bad) = %v, want InvalidArgument", err)
	}
	for _, f := range wantFields {
		if !strings.Contains(st.Message(), f) {
			t.Errorf("gRPC message %q does not name %s", st.Message(), f)
		}
	}
	if !strings.Contains(st.Message(), `"has space"`) || !strings.Contains(st.Message(), "arm is required when experiment_id is set") {
		t.Errorf("gRPC message %q: want the bad value quoted and the rule's own words", st.Message())
	}
	var named []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				named = append(named, v.GetField())
			}
		}
	}
	if !slices.Equal(named, wantFields) {
		t.Errorf("BadRequest detail names %v, want %v", named, wantFields)
	}

	hresp, err := http.Post(ts.URL("/v1/events"), "application/json", strings.NewReader(`{"events":[{"eventId":"e1","type":"EVENT_TYPE_CLICK","userId":"u1","itemId":"i1","position":-1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(hresp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if hresp.StatusCode != http.StatusBadRequest || body.Code != int(codes.InvalidArgument) || !strings.Contains(body.Message, "events[0].position -1") {
		t.Errorf("REST POST /v1/events (position -1) = HTTP %d %+v, want 400 naming events[0].position and its value", hresp.StatusCode, body)
	}

	code, msg := testenv.GRPCWeb(t, ts.URL("/recsys.feedback.v1.FeedbackService/RecordEvents"), "", bad, &feedbackv1.RecordEventsResponse{})
	if code != codes.InvalidArgument || !strings.Contains(msg, "events[1].user_id") {
		t.Errorf("gRPC-Web RecordEvents(bad) = %d %q, want InvalidArgument naming events[1].user_id", code, msg)
	}
	if n := ts.fb.calls.Load(); n != 0 {
		t.Errorf("the handler ran %d times for requests that break the contract, want 0", n)
	}
}

// TestMethodNotAllowed: a method a REST path does not have is 405 with the
// path's methods in Allow; a path no one serves stays 404.
func TestMethodNotAllowed(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"TRACE", "/v1/events", http.StatusMethodNotAllowed, "POST"},
		{"GET", "/v1/events", http.StatusMethodNotAllowed, "POST"},
		{"DELETE", "/v1/experiments/e1/report", http.StatusMethodNotAllowed, "GET"},
		{"POST", "/healthz", http.StatusMethodNotAllowed, "GET"},
		{"GET", "/v1/nothing", http.StatusNotFound, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL(tc.path), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || resp.Header.Get("Allow") != tc.allow {
				t.Errorf("%s %s = HTTP %d Allow %q %s, want %d Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), raw, tc.code, tc.allow)
			}
			var st struct{ Code int }
			if err := json.Unmarshal(raw, &st); err != nil || st.Code == 0 {
				t.Errorf("%s %s body %s: want a JSON status", tc.method, tc.path, raw)
			}
		})
	}
}

// reportFeedback answers GetExperimentReport with arms whose guardrails
// and latency are unset.
type reportFeedback struct{ testFeedback }

func (*reportFeedback) GetExperimentReport(context.Context, *feedbackv1.GetExperimentReportRequest) (*feedbackv1.GetExperimentReportResponse, error) {
	return &feedbackv1.GetExperimentReportResponse{ExperimentId: "e1", GeneratedAt: timestamppb.Now(),
		Arms: []*feedbackv1.ArmReport{{Arm: "control"}, {Arm: "treatment", Guardrails: &feedbackv1.Guardrails{LatencyP99: durationpb.New(0)}}}}, nil
}

// TestJSONMatchesTheSchema: REST leaves unset messages out (the OpenAPI
// document types them as objects or strings, never null) and keeps
// every scalar, zero or not.
func TestJSONMatchesTheSchema(t *testing.T) {
	srv := testenv.Serve(t, func(srv *serving.Server) {
		feedbackv1.RegisterFeedbackServiceServer(srv.GRPC(), &reportFeedback{})
		if err := srv.Publish(feedbackv1.File_recsys_feedback_v1_feedback_proto, feedbackv1.RegisterFeedbackServiceHandler); err != nil {
			t.Fatal(err)
		}
	})
	resp, err := http.Get(srv.URL("/v1/experiments/e1/report"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(raw), "null") {
		t.Fatalf("GET report = HTTP %d %s, want 200 without nulls", resp.StatusCode, raw)
	}
	var got struct {
		SrmChecked *bool `json:"srmChecked"`
		Arms       []map[string]any
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.SrmChecked == nil || len(got.Arms) != 2 {
		t.Fatalf("report %s: want srmChecked (false) present and two arms", raw)
	}
	if _, ok := got.Arms[0]["guardrails"]; ok {
		t.Errorf("arm without guardrails: %v, want the field left out", got.Arms[0])
	}
	if g, ok := got.Arms[1]["guardrails"].(map[string]any); !ok || g["latencyP99"] != "0s" || g["impressions"] != "0" {
		t.Errorf("arm with guardrails: %v, want latencyP99 \"0s\" and impressions \"0\"", got.Arms[1])
	}
}

// TestManyViolationsStayReadable: a request breaking one rule a thousand
// times gets a message naming the first few and counting the rest, and a
// detail that lists every one for programs.
func TestManyViolationsStayReadable(t *testing.T) {
	ts := startServer(t, nil)
	bad := events(make([]string, 200)...) // 200 events without a user id
	_, err := ts.client(t, serving.ClientConfig{}).RecordEvents(context.Background(), bad)
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "events[0].user_id") || !strings.Contains(st.Message(), "more") || len(st.Message()) > 1000 {
		t.Errorf("RecordEvents(200 bad events) = %v %q (%d bytes), want InvalidArgument naming events[0].user_id and counting the rest, under 1000 bytes", st.Code(), st.Message(), len(st.Message()))
	}
	n := 0
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			n += len(br.GetFieldViolations())
		}
	}
	if n < 200 {
		t.Errorf("BadRequest detail lists %d violations, want every one (at least 200)", n)
	}
}
