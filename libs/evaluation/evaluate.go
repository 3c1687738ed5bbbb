package evaluation

import (
	"fmt"
	"math"
	"slices"
)

// Scorer fills scores (len(Items)) for user u given that user's training
// events; higher is better; math.Inf(-1) (or NaN treated as -Inf) = not scored.
// Evaluate calls it from a single goroutine unless documented otherwise.
//
// scores arrives filled with -Inf, so a scorer may set only the items it
// has an opinion on. history must not be modified; neither slice may be kept
// after the call returns.
type Scorer func(u int, history []Event, scores []float32)

// Metrics are means over evaluated users.
type Metrics struct {
	NDCG10, Recall10, MRR10, Coverage, AUC float64
	Users                                  int // users evaluated
}

func (m Metrics) String() string {
	return fmt.Sprintf("NDCG@10=%.4f Recall@10=%.4f MRR@10=%.4f Coverage=%.4f AUC=%.4f users=%d",
		m.NDCG10, m.Recall10, m.MRR10, m.Coverage, m.AUC, m.Users)
}

// topN is the cut-off of the ranking metrics.
const topN = 10

var (
	negInf = float32(math.Inf(-1))
	// discount[r] is the DCG gain of a hit at rank r+1; idcg[k] the DCG of k hits at the top.
	discount, idcg = discounts()
)

func discounts() (d [topN]float64, ideal [topN + 1]float64) {
	for r := range d {
		d[r] = 1 / math.Log2(float64(r+2))
		ideal[r+1] = ideal[r] + d[r]
	}
	return d, ideal
}

// Evaluate ranks, for every user with at least one relevant test event, the
// whole catalogue except the items in the user's training events, by the
// scorer's scores (ties broken by item index ascending), and measures the
// top 10 against the user's relevant test items (a set: an item counts once).
// NDCG@10: binary gain, DCG = sum 1/log2(rank+1) over hits, IDCG over min(|rel|,10).
// Recall@10 = hits / |rel|. MRR@10 = 1/rank of the first hit in the top 10, else 0.
// Coverage = distinct items in all users' top-10 lists / len(Items).
// AUC per user = probability that a relevant test item scores above a candidate that is not a relevant test item (ties count half; candidates are all non-training items, so non-relevant test items are negatives too), averaged over users.
//
// Details that the summary above leaves open:
//   - An item is relevant when any of the user's test events for it is.
//   - A relevant test item that is also in the user's training events cannot
//     be ranked (training items are not candidates), so it is not a target
//     either: it is left out of the relevant set, and a user left with no
//     relevant item is not evaluated. Counting it would charge every model
//     for an item none of them may recommend.
//   - Items scored -Inf (or NaN) are not recommended: a top-10 list holds
//     only scored items and may be shorter than 10, so an unscored item is
//     never a hit and never counts towards Coverage. In AUC they are ordinary
//     scores: they tie with each other and lose to everything else.
//   - AUC is averaged over the evaluated users that have at least one
//     negative (a user whose relevant items are all the candidates has no
//     AUC); the other metrics over all evaluated users (Users).
//
// train and test must share their catalogue and users (as Split's results
// do); Evaluate panics otherwise. Per user the work is O(len(Items)) plus
// the scorer's, with buffers reused across users; the AUC costs
// O(len(Items)·log|rel|). Evaluate is not itself concurrent.
func Evaluate(train, test *Data, score Scorer) Metrics {
	n := len(train.Items)
	if len(test.Items) != n || len(test.ByUser) != len(train.ByUser) {
		panic(fmt.Sprintf("evaluation: train (%d users, %d items) and test (%d users, %d items) do not share users and catalogue",
			len(train.ByUser), n, len(test.ByUser), len(test.Items)))
	}
	var (
		scores = make([]float32, n)
		// inTrain[i] == stamp marks i as in the current user's training
		// events, isRel[i] == stamp as relevant: no clearing between users.
		inTrain   = make([]int32, n)
		isRel     = make([]int32, n)
		covered   = make([]bool, n)
		relItems  []int32
		posScores []float32
		top       = make([]int32, 0, topN)

		sum      Metrics
		aucUsers int
	)
	for u, testEvents := range test.ByUser {
		stamp := int32(u + 1)
		history := train.ByUser[u]
		for _, e := range history {
			inTrain[e.Item] = stamp
		}
		relItems = relItems[:0]
		for _, e := range testEvents {
			if e.Relevant && inTrain[e.Item] != stamp && isRel[e.Item] != stamp {
				isRel[e.Item] = stamp
				relItems = append(relItems, e.Item)
			}
		}
		if len(relItems) == 0 {
			continue
		}

		for i := range scores {
			scores[i] = negInf
		}
		score(u, history, scores)

		candidates := 0
		top = top[:0]
		for i, s := range scores {
			if s != s { // NaN
				s = negInf
				scores[i] = s
			}
			if inTrain[i] == stamp {
				continue
			}
			candidates++
			if s == negInf || len(top) == topN && s <= scores[top[topN-1]] {
				// Equal scores lose: the item already there has a smaller index.
				continue
			}
			p := len(top)
			for p > 0 && s > scores[top[p-1]] {
				p--
			}
			if len(top) < topN {
				top = append(top, 0)
			}
			copy(top[p+1:], top[p:len(top)-1])
			top[p] = int32(i)
		}

		var dcg, rr float64
		hits := 0
		for r, i := range top {
			covered[i] = true
			if isRel[i] != stamp {
				continue
			}
			hits++
			dcg += discount[r]
			if rr == 0 {
				rr = 1 / float64(r+1)
			}
		}
		sum.Users++
		sum.NDCG10 += dcg / idcg[min(len(relItems), topN)]
		sum.Recall10 += float64(hits) / float64(len(relItems))
		sum.MRR10 += rr

		if negatives := candidates - len(relItems); negatives > 0 {
			posScores = posScores[:0]
			for _, i := range relItems {
				posScores = append(posScores, scores[i])
			}
			sum.AUC += auc(scores, inTrain, isRel, stamp, posScores, negatives)
			aucUsers++
		}
	}

	if sum.Users == 0 {
		return Metrics{}
	}
	for _, c := range covered {
		if c {
			sum.Coverage++
		}
	}
	users := float64(sum.Users)
	sum.NDCG10 /= users
	sum.Recall10 /= users
	sum.MRR10 /= users
	sum.Coverage /= float64(n)
	if aucUsers > 0 {
		sum.AUC /= float64(aucUsers)
	}
	return sum
}

// auc is the Mann-Whitney statistic of one user: for every negative (a
// candidate that is not relevant) it counts the positives above it, plus half
// of those tied with it, by binary search in the sorted positive scores. The
// positives are usually few, so this is far cheaper than sorting all
// candidates. pos is sorted in place.
func auc(scores []float32, inTrain, isRel []int32, stamp int32, pos []float32, negatives int) float64 {
	slices.Sort(pos)
	var twiceU int64 // 2·U keeps the half-counts of ties integral
	last, lastGain := float32(math.NaN()), int64(0)
	for i, s := range scores {
		if inTrain[i] == stamp || isRel[i] == stamp {
			continue
		}
		if s != last { // runs of equal scores (zeros, -Inf) are common
			lo, hi := bounds(pos, s)
			last, lastGain = s, int64(2*(len(pos)-hi)+(hi-lo))
		}
		twiceU += lastGain
	}
	return float64(twiceU) / (2 * float64(len(pos)) * float64(negatives))
}

// bounds returns the first index of sorted whose value is >= s and the first
// whose value is > s.
func bounds(sorted []float32, s float32) (lo, hi int) {
	lo, hi = 0, len(sorted)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if sorted[m] < s {
			lo = m + 1
		} else {
			hi = m
		}
	}
	hi = len(sorted)
	for l := lo; l < hi; {
		m := int(uint(l+hi) >> 1)
		if sorted[m] <= s {
			l = m + 1
		} else {
			hi = m
		}
	}
	return lo, hi
}
