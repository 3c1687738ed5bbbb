// Package evaluation measures recommenders offline, honestly: per user, on a
// temporal split, against the full catalogue, and it provides the
// collaborative-filtering baselines (popularity, item-kNN, EASE, PureSVD) a
// new model has to beat.
//
// Full-catalogue means that for each user every item of the catalogue is a
// candidate, except the items already in that user's training history: the
// model has to find the user's held-out items among thousands of others, as
// it would in production. Sampled metrics (rank the held-out item against,
// say, 100 random negatives) are not used because they flatter: a random
// sample is mostly unpopular items any model beats, so scores saturate, the
// gaps between models shrink and their order can even flip relative to the
// full ranking (Krichene and Rendle, "On Sampled Metrics for Item
// Recommendation", KDD 2020).
//
// Everything is deterministic for a given input and seed: ids are sorted,
// no result depends on Go map iteration order, and every tie between items is
// broken by item index (ascending), which is the sorted order of item ids.
package evaluation

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Interaction is one user-item event.
type Interaction struct {
	User, Item string
	Time       time.Time
	Relevant   bool // e.g. a rating >= 4, or a click
}

// Event is an interaction inside Data: item index, time (Unix ms), relevance.
type Event struct {
	Item     int32
	Time     int64
	Relevant bool
}

// Data is a set of interactions indexed once: Users and Items are sorted
// (Items = the whole catalogue: every item in the interactions plus any extra
// catalogue ids given), ByUser[u] holds user u's events in time order (ties
// by item index). An item may appear more than once for a user (keep all events).
//
// Data is read-only once built; it is safe for concurrent readers. Data
// values made by Split share Users, Items, ItemIndex and the events' backing
// arrays with their parent.
type Data struct {
	Users     []string
	Items     []string
	ItemIndex map[string]int32
	ByUser    [][]Event
}

// NewData indexes in. Times are kept to the millisecond, so events less than
// a millisecond apart tie and are ordered by item index.
func NewData(in []Interaction, catalogue []string) *Data {
	users := make([]string, 0, len(in))
	items := make([]string, 0, len(in)+len(catalogue))
	for _, x := range in {
		users = append(users, x.User)
		items = append(items, x.Item)
	}
	items = append(items, catalogue...)
	slices.Sort(users)
	users = slices.Clip(slices.Compact(users))
	slices.Sort(items)
	items = slices.Clip(slices.Compact(items))

	// The maps are only looked up, never iterated.
	userIndex := make(map[string]int, len(users))
	for u, id := range users {
		userIndex[id] = u
	}
	itemIndex := make(map[string]int32, len(items))
	for i, id := range items {
		itemIndex[id] = int32(i)
	}

	counts := make([]int, len(users))
	for _, x := range in {
		counts[userIndex[x.User]]++
	}
	// One backing array for all events, carved per user.
	all := make([]Event, len(in))
	byUser := make([][]Event, len(users))
	off := 0
	for u, c := range counts {
		byUser[u] = all[off : off : off+c]
		off += c
	}
	for _, x := range in {
		u := userIndex[x.User]
		byUser[u] = append(byUser[u], Event{Item: itemIndex[x.Item], Time: x.Time.UnixMilli(), Relevant: x.Relevant})
	}
	for _, ev := range byUser {
		// Relevant is the last key so that identical (time, item) events
		// end up in the same order whatever the input order.
		slices.SortFunc(ev, compareEvents)
	}
	return &Data{Users: users, Items: items, ItemIndex: itemIndex, ByUser: byUser}
}

func compareEvents(a, b Event) int {
	if c := cmp.Compare(a.Time, b.Time); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Item, b.Item); c != 0 {
		return c
	}
	switch {
	case a.Relevant == b.Relevant:
		return 0
	case b.Relevant:
		return -1
	default:
		return 1
	}
}

// Split is the per-user temporal split: for each user the latest frac of
// their events (rounded, at least one) are the test set, the rest train; a
// user with fewer than 2 events keeps everything in train. Both share
// Users/Items/ItemIndex with d.
//
// At least one event always stays in train (a frac that rounds to all of a
// user's events leaves the earliest one there), so that every tested user has
// a history to be scored from. Because events are in time order with ties by
// item index, events at the same instant on either side of the cut are split
// by item index. Neither result may be appended to or modified: their event
// slices share d's backing array (capacities are clipped, so an append would
// copy rather than overwrite).
func (d *Data) Split(frac float64) (train, test *Data) {
	train = &Data{Users: d.Users, Items: d.Items, ItemIndex: d.ItemIndex, ByUser: make([][]Event, len(d.ByUser))}
	test = &Data{Users: d.Users, Items: d.Items, ItemIndex: d.ItemIndex, ByUser: make([][]Event, len(d.ByUser))}
	for u, ev := range d.ByUser {
		n := len(ev)
		if n < 2 {
			train.ByUser[u] = ev[:n:n]
			continue
		}
		k := 1 // also for a NaN or negative frac
		if f := math.Round(frac * float64(n)); f > 1 {
			k = int(min(f, float64(n-1)))
		}
		train.ByUser[u] = ev[: n-k : n-k]
		test.ByUser[u] = ev[n-k : n : n]
	}
	return train, test
}
