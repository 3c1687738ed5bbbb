package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
)

// World is a simulated catalogue and audience, the same for the same seed:
// items with a category and a latent quality, users with hidden tastes
// (liked and disliked categories, plus a personal taste per item). It
// decides clicks; the platform never sees the hidden parts.
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
}

// WorldUser is a user of the world with hidden preferences.
type WorldUser struct {
	ID, Gender, Occupation string
	Age                    int
	Taste                  map[string]float64 // category → preference (logit)
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
		w.Items = append(w.Items, WorldItem{
			ID:       fmt.Sprintf("item-%d", i),
			Title:    fmt.Sprintf("The %s %s (%d)", adjectives[rng.IntN(len(adjectives))], nouns[rng.IntN(len(nouns))], 1970+rng.IntN(55)),
			Category: cat, Quality: rng.NormFloat64(),
		})
	}
	for u := range users {
		taste := map[string]float64{}
		for _, g := range genres {
			taste[g] = -1.5 + 0.3*rng.NormFloat64()
		}
		for range 2 { // two loved categories
			taste[genres[rng.IntN(len(genres))]] = 2.5 + 0.3*rng.NormFloat64()
		}
		w.Users = append(w.Users, WorldUser{
			ID: fmt.Sprintf("user-%d", u), Gender: []string{"F", "M"}[rng.IntN(2)], Age: 18 + rng.IntN(50),
			Occupation: []string{"engineer", "artist", "student", "writer", "doctor"}[rng.IntN(5)],
			Taste:      taste, seed: rng.Uint64(),
		})
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

// ClickProbability is the chance that user u clicks item i shown at
// zero-based position pos: a logistic of the user's taste for the category,
// the item's quality and a personal per-item taste, times a position bias.
func (w *World) ClickProbability(u WorldUser, it WorldItem, pos int) float64 {
	h := rand.New(rand.NewPCG(u.seed, uint64(len(it.ID))*1e9+hashString(it.ID)))
	personal := 0.3 * h.NormFloat64()
	z := -2 + u.Taste[it.Category] + 0.4*it.Quality + personal
	return 1 / (1 + math.Exp(-z)) / (1 + 0.05*float64(pos))
}

func hashString(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Interactions simulates sessions: a random user is shown listSize random
// items (random exposure, so the log is unbiased) and clicks by
// ClickProbability; sessions are spread evenly from start over span.
func (w *World) Interactions(sessions, listSize int, start time.Time, span time.Duration, seed uint64) []Interaction {
	rng := rand.New(rand.NewPCG(seed, 99))
	out := make([]Interaction, 0, sessions*listSize)
	for s := range sessions {
		u := w.Users[rng.IntN(len(w.Users))]
		t := start.Add(time.Duration(float64(span) * float64(s) / float64(sessions)))
		for pos, idx := range rng.Perm(len(w.Items))[:min(listSize, len(w.Items))] {
			it := w.Items[idx]
			out = append(out, Interaction{UserID: u.ID, ItemID: it.ID, Time: t, Clicked: rng.Float64() < w.ClickProbability(u, it, pos)})
		}
	}
	return out
}

// Catalog is the items' categories, as the feature store holds them.
func (w *World) Catalog() map[string][]string {
	out := make(map[string][]string, len(w.Items))
	for _, it := range w.Items {
		out[it.ID] = []string{it.Category}
	}
	return out
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
