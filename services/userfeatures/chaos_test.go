package userfeatures

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// TestSIGTERMUnderLoad runs the real userfeatures binary, keeps four
// clients calling it (each call held ~300 ms by a slow Redis), sends
// SIGTERM, and checks that no call that was in flight is lost: every call
// the server had accepted completes, later ones are refused.
func TestSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and signals the userfeatures binary")
	}
	redis := testenv.NewRedis(t)
	proxy := testenv.NewFaultProxy(t, redis.Addr)
	ports := testenv.FreePorts(t, 2)
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	bin := testenv.BuildBinary(t, "./cmd/userfeatures")
	p := testenv.StartChild(t, bin, "-redis="+proxy.Addr, "-redis-namespace="+redis.Prefix, "-grpc-addr="+grpcAddr,
		fmt.Sprintf("-http-addr=127.0.0.1:%d", ports[1]), "-shutdown-timeout=10s", "-log-level=warn")
	testenv.WaitForPort(t, grpcAddr, 30*time.Second)
	conn, err := serving.Dial(grpcAddr, serving.ClientConfig{DefaultTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := userfeaturesv1.NewUserFeatureServiceClient(conn)
	if _, err := client.GetUserFeatures(context.Background(), &userfeaturesv1.GetUserFeaturesRequest{UserIds: []string{"u"}}); err != nil {
		t.Fatalf("before any fault: %v", err)
	}
	proxy.SetDelay(300 * time.Millisecond)

	type call struct {
		start, end time.Time
		err        error
	}
	var mu sync.Mutex
	var calls []call
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := call{start: time.Now()}
				_, c.err = client.GetUserFeatures(context.Background(), &userfeaturesv1.GetUserFeaturesRequest{UserIds: []string{"u1", "u2"}})
				c.end = time.Now()
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				if c.err != nil && c.start.After(time.Now().Add(-time.Second)) && status.Code(c.err) == codes.Unavailable {
					time.Sleep(20 * time.Millisecond) // refused: the server is going away
				}
			}
		})
	}
	time.Sleep(time.Second)
	signalAt := time.Now()
	if err := p.Terminate(20 * time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, p.Output())
	}
	close(stop)
	wg.Wait()

	inFlight, lost := 0, 0
	for _, c := range calls {
		// Started well before the signal (the server had it) and still
		// running when it came.
		if c.start.Before(signalAt.Add(-50*time.Millisecond)) && c.end.After(signalAt) {
			inFlight++
			if c.err != nil {
				lost++
				t.Errorf("a call in flight at SIGTERM failed: %v", c.err)
			}
		}
	}
	if inFlight == 0 {
		t.Fatal("no call was in flight at SIGTERM; the test proved nothing")
	}
	t.Logf("%d calls, %d in flight at SIGTERM, %d lost", len(calls), inFlight, lost)
}
