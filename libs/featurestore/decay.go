package featurestore

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// A decayed counter is stored as a (value, timestamp) pair: value is the
// count as of timestamp, each past event weighing 2^(-age/halfLife). Reading
// decays the value to the reader's time; writing folds an event in at its
// own time. Because an event older than the stored timestamp is decayed to
// it before being added, updates commute: any order of the same events gives
// the same pair (up to float rounding), and reads are exact at any time.

// Counter is a decayed count: a (value, timestamp) pair. The zero value is
// an empty counter. The trainer uses it to compute offline exactly what the
// store serves.
type Counter struct {
	value float64
	at    time.Time
}

// decayFactor is 2^(-d/halfLife); d < 0 counts as 0.
func decayFactor(d, halfLife time.Duration) float64 {
	if d <= 0 {
		return 1
	}
	return math.Exp2(-d.Seconds() / halfLife.Seconds())
}

// ValueAt is the counter's value decayed to now.
func (c Counter) ValueAt(now time.Time, halfLife time.Duration) float64 {
	return c.value * decayFactor(now.Sub(c.at), halfLife)
}

// Add folds an increment at time t into c, as the Lua scripts do.
func (c Counter) Add(inc float64, t time.Time, halfLife time.Duration) Counter {
	if c.at.IsZero() {
		return Counter{inc, t}
	}
	if !t.Before(c.at) {
		return Counter{c.value*decayFactor(t.Sub(c.at), halfLife) + inc, t}
	}
	return Counter{c.value + inc*decayFactor(c.at.Sub(t), halfLife), c.at}
}

// encodeCounter writes "value:unixMillis", the layout the Lua scripts use.
func encodeCounter(c Counter) string {
	return strconv.FormatFloat(c.value, 'g', 17, 64) + ":" + strconv.FormatInt(c.at.UnixMilli(), 10)
}

func decodeCounter(s string) (Counter, bool) {
	v, ts, ok := strings.Cut(s, ":")
	if !ok {
		return Counter{}, false
	}
	value, err1 := strconv.ParseFloat(v, 64)
	ms, err2 := strconv.ParseInt(ts, 10, 64)
	if err1 != nil || err2 != nil {
		return Counter{}, false
	}
	return Counter{value, time.UnixMilli(ms)}, true
}

// Trending scores live in a sorted set, where every item must be comparable
// without rewriting all of them as time passes. Each score is therefore the
// base-2 logarithm of the item's decayed weight referred to the Unix epoch:
// log2(Σ w_i · 2^(t_i/halfLife)). It grows linearly with time, never
// overflows, and orders items exactly as their decayed weights at any common
// time do. Adding an event is a log-sum-exp, which commutes.

// trendingLogWeight is the sorted-set contribution of weight w at time t.
func trendingLogWeight(w float64, t time.Time) float64 {
	return math.Log2(w) + float64(t.UnixMilli())/float64(TrendingHalfLife.Milliseconds())
}

// trendingValue turns a stored score into the decayed weight at now.
func trendingValue(score float64, now time.Time) float64 {
	return math.Exp2(score - float64(now.UnixMilli())/float64(TrendingHalfLife.Milliseconds()))
}

// logAdd2 is log2(2^a + 2^b) without overflow.
func logAdd2(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	return a + math.Log2(1+math.Exp2(b-a))
}
