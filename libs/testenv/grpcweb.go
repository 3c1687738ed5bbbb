package testenv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// GRPCWeb sends one unary gRPC-Web call as a browser does: a length-prefixed
// data frame; it returns the decoded message frame and the grpc-status from
// the trailer frame or, for trailers-only answers, the headers. origin,
// when set, is sent as the Origin header.
func GRPCWeb(t *testing.T, url, origin string, req proto.Message, resp proto.Message) (codes.Code, string) {
	t.Helper()
	header := http.Header{}
	if origin != "" {
		header.Set("Origin", origin)
	}
	return GRPCWebHeader(t, url, header, req, resp)
}

// GRPCWebHeader is GRPCWeb with the request headers given.
func GRPCWebHeader(t *testing.T, url string, header http.Header, req proto.Message, resp proto.Message) (codes.Code, string) {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(body)))
	frame = append(frame, body...)
	hreq, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(frame))
	hreq.Header.Set("Content-Type", "application/grpc-web+proto")
	hreq.Header.Set("X-Grpc-Web", "1")
	for k, v := range header {
		hreq.Header[k] = v
	}
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	raw, err := io.ReadAll(hresp.Body)
	if err != nil {
		t.Fatal(err)
	}
	trailers := http.Header{}
	for k, v := range hresp.Header {
		trailers[k] = v
	}
	for len(raw) >= 5 {
		flag, n := raw[0], binary.BigEndian.Uint32(raw[1:5])
		payload := raw[5 : 5+n]
		raw = raw[5+n:]
		if flag&0x80 != 0 { // trailer frame: HTTP/1-style header lines
			tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(payload, '\r', '\n'))))
			h, _ := tp.ReadMIMEHeader()
			for k, v := range h {
				trailers[k] = v
			}
			continue
		}
		if err := proto.Unmarshal(payload, resp); err != nil {
			t.Fatalf("decode gRPC-Web message: %v", err)
		}
	}
	code, err := strconv.Atoi(trailers.Get("Grpc-Status"))
	if err != nil {
		t.Fatalf("no grpc-status in gRPC-Web response (HTTP %d, headers %v)", hresp.StatusCode, hresp.Header)
	}
	return codes.Code(code), trailers.Get("Grpc-Message")
}
