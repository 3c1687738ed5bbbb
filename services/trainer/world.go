package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/evaluation"
)

// World is a simulated catalogue and audience, the same for the same seed.
// Items have a category, a quality, a hidden latent vector and a season
// (their appeal rises and falls over a cycle); users have two loved
// categories whose pull alternates over time, and a hidden latent vector.
// So part of what decides a click is learnable only from ids and
// co-occurrence (the latent vectors), part only from recency (the users'
// drift) and from recent popularity (the seasons), and part from
// categories. It decides clicks; the platform never sees the hidden parts.
type World struct {
	Categories []string
	Items      []WorldItem
	Users      []WorldUser
	seed       uint64
}

// WorldItem is an item of the world.
type WorldItem struct {
	ID, Title, Category string
	Quality             float64
	latent              [latentDim]float64
	phase               float64 // of the item's season, in radians
}

// latentDim is the size of the hidden user and item vectors.
const latentDim = 8

// Cycle is the period of the items' seasons and of the users' drift
// between their two loved categories.
const Cycle = 48 * time.Hour

// WorldUser is a user of the world with hidden preferences.
type WorldUser struct {
	ID, Gender, Occupation string
	Age                    int
	Taste                  map[string]float64 // category → preference (logit)
	loved                  [2]string          // the two loved categories, whose pull alternates
	latent                 [latentDim]float64
	phase                  float64
	seed                   uint64
}

var genres = []string{"Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Fantasy", "Horror", "Mystery", "Romance", "Sci-Fi"}

// NewWorld makes a world of the given size from seed.
func NewWorld(seed uint64, users, items int) *World {
	rng := rand.New(rand.NewPCG(seed, 17))
	w := &World{Categories: genres, seed: seed}
	adjectives := []string{"Silent", "Last", "Golden", "Broken", "Hidden", "Electric", "Midnight", "Wild", "Lost", "Crimson"}
	nouns := []string{"River", "Empire", "Garden", "Signal", "Harbor", "Machine", "Winter", "Orchard", "Circuit", "Lantern"}
	for i := range items {
		cat := genres[rng.IntN(len(genres))]
		it := WorldItem{
			ID:       fmt.Sprintf("item-%d", i),
			Title:    fmt.Sprintf("The %s %s (%d)", adjectives[rng.IntN(len(adjectives))], nouns[rng.IntN(len(nouns))], 1970+rng.IntN(55)),
			Category: cat, Quality: rng.NormFloat64(), phase: 2 * math.Pi * rng.Float64(),
		}
		for k := range it.latent {
			it.latent[k] = rng.NormFloat64()
		}
		w.Items = append(w.Items, it)
	}
	for u := range users {
		taste := map[string]float64{}
		for _, g := range genres {
			taste[g] = -1.5 + 0.3*rng.NormFloat64()
		}
		var loved [2]string
		for k := range loved { // two loved categories
			loved[k] = genres[rng.IntN(len(genres))]
			taste[loved[k]] = 1.5 + 0.3*rng.NormFloat64()
		}
		wu := WorldUser{
			ID: fmt.Sprintf("user-%d", u), Gender: []string{"F", "M"}[rng.IntN(2)], Age: 18 + rng.IntN(50),
			Occupation: []string{"engineer", "artist", "student", "writer", "doctor"}[rng.IntN(5)],
			Taste:      taste, loved: loved, phase: 2 * math.Pi * rng.Float64(), seed: rng.Uint64(),
		}
		for k := range wu.latent {
			wu.latent[k] = rng.NormFloat64()
		}
		w.Users = append(w.Users, wu)
	}
	return w
}

// Item returns an item by id.
func (w *World) Item(id string) (WorldItem, bool) {
	var n int
	if _, err := fmt.Sscanf(id, "item-%d", &n); err != nil || n < 0 || n >= len(w.Items) {
		return WorldItem{}, false
	}
	return w.Items[n], true
}

// ClickProbability is the chance that user u clicks item it shown at
// zero-based position pos at time t: a logistic of the user's Utility,
// times a position bias.
func (w *World) ClickProbability(u WorldUser, it WorldItem, pos int, t time.Time) float64 {
	return 1 / (1 + math.Exp(3-w.Utility(u, it, t))) / (1 + 0.05*float64(pos))
}

// Utility is how much user u wants item it at time t: the user's taste
// for the category (of the two loved ones, the one in favour at t pulls
// more), the match of their latent vectors, the item's quality and
// season at t, and a personal per-item taste.
func (w *World) Utility(u WorldUser, it WorldItem, t time.Time) float64 {
	h := rand.New(rand.NewPCG(u.seed, uint64(len(it.ID))*1e9+hashString(it.ID)))
	personal := 0.3 * h.NormFloat64()
	cycle := 2 * math.Pi * float64(t.UnixMilli()%Cycle.Milliseconds()) / float64(Cycle.Milliseconds())
	taste := u.Taste[it.Category]
	switch it.Category {
	case u.loved[0]:
		taste += 1.2 * math.Cos(cycle+u.phase)
	case u.loved[1]:
		taste -= 1.2 * math.Cos(cycle+u.phase)
	}
	match := 0.0
	for k := range u.latent {
		match += u.latent[k] * it.latent[k]
	}
	match /= math.Sqrt(latentDim)
	season := 1.2 * math.Cos(cycle+it.phase)
	return taste + 1.2*match + 0.4*it.Quality + season + personal
}

// Consumption simulates users choosing for themselves, as in a ratings
// dataset: n times, a random user (some far more active than others)
// picks an item they have not had yet from the whole catalogue, with
// probability proportional to exp(Utility); times spread evenly from
// start over span.
func (w *World) Consumption(n int, start time.Time, span time.Duration, seed uint64) []Interaction {
	rng := rand.New(rand.NewPCG(seed, 77))
	activity := make([]float64, len(w.Users)) // cumulative, log-normal weights
	total := 0.0
	for i := range activity {
		total += math.Exp(rng.NormFloat64())
		activity[i] = total
	}
	had := make([]map[int]bool, len(w.Users))
	weights := make([]float64, len(w.Items))
	out := make([]Interaction, 0, n)
	for e := range n {
		ui, _ := slices.BinarySearch(activity, rng.Float64()*total)
		ui = min(ui, len(w.Users)-1)
		u := w.Users[ui]
		if had[ui] == nil {
			had[ui] = map[int]bool{}
		}
		t := start.Add(time.Duration(float64(span) * float64(e) / float64(n)))
		sum := 0.0
		for i, it := range w.Items {
			weights[i] = 0
			if !had[ui][i] {
				weights[i] = math.Exp(w.Utility(u, it, t))
			}
			sum += weights[i]
		}
		if sum == 0 {
			continue
		}
		pick, x := 0, rng.Float64()*sum
		for i, wt := range weights {
			if x -= wt; x <= 0 && wt > 0 {
				pick = i
				break
			}
		}
		had[ui][pick] = true
		out = append(out, Interaction{UserID: u.ID, ItemID: w.Items[pick].ID, Time: t, Clicked: true})
	}
	return out
}

func hashString(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Data is the clicks among interactions, as the interactions the
// retrieval stage learns from (an impression without a click is not a
// consumption), over the world's whole catalogue.
func (w *World) Data(ins []Interaction) *evaluation.Data {
	var clicks []evaluation.Interaction
	for _, in := range ins {
		if in.Clicked {
			clicks = append(clicks, evaluation.Interaction{User: in.UserID, Item: in.ItemID, Time: in.Time, Relevant: true})
		}
	}
	catalogue := make([]string, len(w.Items))
	for i, it := range w.Items {
		catalogue[i] = it.ID
	}
	return evaluation.NewData(clicks, catalogue)
}

// Profiles returns the users and items as the feature services take them.
func (w *World) Profiles() ([]*userfeaturesv1.UserProfile, []*itemfeaturesv1.ItemAttributes) {
	users := make([]*userfeaturesv1.UserProfile, len(w.Users))
	for i, u := range w.Users {
		users[i] = &userfeaturesv1.UserProfile{UserId: u.ID, Age: int32(u.Age), Gender: u.Gender, Occupation: u.Occupation}
	}
	items := make([]*itemfeaturesv1.ItemAttributes, len(w.Items))
	for i, it := range w.Items {
		items[i] = &itemfeaturesv1.ItemAttributes{ItemId: it.ID, Title: it.Title, Categories: []string{it.Category}}
	}
	return users, items
}
