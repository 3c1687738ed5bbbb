package serving_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzHTTPBodies sends arbitrary bodies as REST JSON and as gRPC-Web frames
// to a running server: every answer is an HTTP response (no panic reaches
// a client, the server keeps serving).
func FuzzHTTPBodies(f *testing.F) {
	ts := startServer(f, nil)
	f.Add([]byte(`{"events":[{"eventId":"e","userId":"u","itemId":"i","type":"EVENT_TYPE_CLICK"}]}`), true)
	f.Add([]byte(`{"events":[{"eventId":"e","type":"EVENT_TYPE_CLICK","userId":"panic","itemId":"i"}]}`), true)
	f.Add([]byte{0, 0, 0, 0, 3, 10, 1, 0}, false)
	f.Add([]byte{0x80, 0xff, 0xff, 0xff, 0xff}, false)
	f.Fuzz(func(t *testing.T, body []byte, rest bool) {
		url, ctype := ts.URL("/v1/events"), "application/json"
		if !rest {
			url, ctype = ts.URL("/recsys.feedback.v1.FeedbackService/RecordEvents"), "application/grpc-web+proto"
		}
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("server did not answer: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 0 {
			t.Fatal("no status")
		}
	})
}
