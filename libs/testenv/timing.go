package testenv

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// Interleave runs each call once per benchmark iteration, in turn, so that
// they meet the same machine (a budget compares them in one run), and
// returns each call's latencies. Each iteration takes the calls in a new
// order (from a fixed seed), so that no call always follows the same one:
// a call pays for the garbage of the calls before it. A call's error
// fails the benchmark.
func Interleave(b *testing.B, calls ...func() error) [][]time.Duration {
	b.Helper()
	times := make([][]time.Duration, len(calls))
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for b.Loop() {
		for _, i := range rng.Perm(len(calls)) {
			call := calls[i]
			start := time.Now()
			if err := call(); err != nil {
				b.Fatal(err)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	b.StopTimer()
	return times
}

// Quantile is the q-quantile of d (which it sorts), for a benchmark's
// p50/p99.
func Quantile(d []time.Duration, q float64) time.Duration {
	slices.Sort(d)
	return d[int(q*float64(len(d)-1))]
}
