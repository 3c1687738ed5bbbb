package featurecompute

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/recsys/recsys/libs/testenv"
)

// chaosSize is the events and kills of the SIGKILL test: a short run in
// make test, RECSYS_CHAOS_EVENTS and RECSYS_CHAOS_KILLS (make chaos) for a
// long one. Each kill costs a consumer-group session timeout (10 s) before
// the restarted process gets the partitions back.
func chaosSize() (events, kills int) {
	events, kills = 20_000, 3
	if n, err := strconv.Atoi(os.Getenv("RECSYS_CHAOS_EVENTS")); err == nil && n > 0 {
		events = n
	}
	if n, err := strconv.Atoi(os.Getenv("RECSYS_CHAOS_KILLS")); err == nil && n > 0 {
		kills = n
	}
	return events, kills
}

// TestSIGKILLMidStream runs the real featurecompute binary, kills it with
// SIGKILL at random moments while it applies a burst, restarts it, and
// checks every counter against the events applied once.
func TestSIGKILLMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the featurecompute binary")
	}
	h := newHarness(t)
	bin := testenv.BuildBinary(t, "./cmd/featurecompute")
	start := func() *testenv.Child {
		return testenv.StartChild(t, bin, "-kafka="+h.brokers[0], "-topic="+h.topic, "-dlq-topic="+h.dlq, "-group="+h.group,
			"-redis="+h.rdb.Options().Addr, "-redis-namespace="+h.prefix, "-grpc-addr=127.0.0.1:0", "-http-addr=127.0.0.1:0",
			"-batch-size=200", "-log-level=warn")
	}
	n, maxKills := chaosSize()
	evs, want := burst(n)
	h.produce(encodeAll(t, evs))

	rng := rand.New(rand.NewPCG(uint64(n), 3))
	kills := 0
	for total(h.counts()) < total(want) && kills < maxKills {
		p := start()
		// Let it get going, then kill it without warning.
		before := total(h.counts())
		deadline := time.Now().Add(30 * time.Second)
		for total(h.counts()) == before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		p.Kill()
		kills++
	}
	p := start()
	h.waitFor(want, 3*time.Minute)
	if err := p.Terminate(20 * time.Second); err != nil {
		t.Errorf("featurecompute after SIGTERM: %v\n%s", err, p.Output())
	}
	h.verify(evs, want)
	t.Log(fmt.Sprintf("%d events, %d SIGKILLs", n, kills))
}
