package trainer

import (
	"cmp"
	"math"
	"slices"
)

// Metrics are offline ranking metrics.
type Metrics struct {
	AUC, NDCG10, Recall10 float64
}

// Evaluate scores the hold-out: AUC over every impression; NDCG@10 and
// Recall@10 per user over the items shown to that user in the hold-out
// (relevant: clicked), averaged over users with a click.
func Evaluate(test []Example, score func(Example) float64) Metrics {
	scores := make([]float64, len(test))
	for i, e := range test {
		scores[i] = score(e)
	}
	m := Metrics{AUC: auc(test, scores)}
	type cand struct {
		score    float64
		relevant bool
	}
	byUser := map[string]map[string]*cand{}
	for i, e := range test {
		items := byUser[e.UserID]
		if items == nil {
			items = map[string]*cand{}
			byUser[e.UserID] = items
		}
		c := items[e.ItemID]
		if c == nil {
			c = &cand{}
			items[e.ItemID] = c
		}
		c.score = scores[i] // the latest impression's score
		c.relevant = c.relevant || e.Label > 0
	}
	users := 0
	for _, items := range byUser {
		var list []cand
		rel := 0
		for _, c := range items {
			list = append(list, *c)
			if c.relevant {
				rel++
			}
		}
		if rel == 0 {
			continue
		}
		users++
		slices.SortStableFunc(list, func(a, b cand) int { return cmp.Compare(b.score, a.score) })
		dcg, idcg, hits := 0.0, 0.0, 0
		for k := 0; k < 10 && k < len(list); k++ {
			if list[k].relevant {
				dcg += 1 / math.Log2(float64(k+2))
				hits++
			}
			if k < rel {
				idcg += 1 / math.Log2(float64(k+2))
			}
		}
		m.NDCG10 += dcg / idcg
		m.Recall10 += float64(hits) / float64(rel)
	}
	if users > 0 {
		m.NDCG10 /= float64(users)
		m.Recall10 /= float64(users)
	}
	return m
}

// auc is the probability that a random click scores above a random
// non-click (ties count half).
func auc(ex []Example, scores []float64) float64 {
	idx := make([]int, len(ex))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	var pos, neg, rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		avgRank := float64(i+j+1) / 2 // 1-based ranks i+1..j
		for k := i; k < j; k++ {
			if ex[idx[k]].Label > 0 {
				pos++
				rankSum += avgRank
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0.5
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

// Popularity is the baseline: an item's clicks in the training data.
func Popularity(train []Example) func(Example) float64 {
	clicks := map[string]float64{}
	for _, e := range train {
		clicks[e.ItemID] += float64(e.Label)
	}
	return func(e Example) float64 { return clicks[e.ItemID] }
}
