package trainer

import (
	"math"
	"time"
)

// Interaction is one impression and whether it was clicked.
type Interaction struct {
	UserID, ItemID string
	Time           time.Time
	Clicked        bool
}

// Example is one training row of the ranker.
type Example struct {
	UserID, ItemID, RequestID string
	Row                       []float32
	Label                     float32
	Time                      time.Time
}

// split divides examples (in time order) at the given fraction: the
// hold-out is the latest part.
func split(ex []Example, holdout float64) (train, test []Example) {
	cut := int(math.Round(float64(len(ex)) * (1 - holdout)))
	return ex[:cut], ex[cut:]
}
