package featurestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
)

// replaceFields atomically replaces every field of a hash that starts with a
// prefix: KEYS[1] hash; ARGV[1] prefix; ARGV[2..] field, value pairs.
var replaceFields = redis.NewScript(`
local prefix = ARGV[1]
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, #prefix) == prefix then redis.call('HDEL', KEYS[1], f) end
end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return 1
`)

// luaLogAdd2 is logAdd2 in Lua, for the scripts that keep trending scores.
// (It avoids the "a, b = b, a" swap: the embedded server's Lua gets it wrong.)
const luaLogAdd2 = `
local function logadd2(c, w)
  local hi, lo = math.max(c, w), math.min(c, w)
  return hi + math.log(1 + math.pow(2, lo - hi)) / math.log(2)
end
`

// applyEntity applies one event to one entity, once.
// KEYS[1] de-duplication marker, KEYS[2] hash, KEYS[3] recent-clicks set (may
// be absent).
// ARGV[1] marker TTL (s), ARGV[2] event time (ms), ARGV[3] item to record as
// clicked ("" for none), ARGV[4] recent-clicks length, ARGV[5] trending log2
// weight to add to the hash's "trend" field ("" for none), then triples of
// (field, increment, half-life ms) of the decayed counters to bump.
// Returns 1 when applied, 0 for a duplicate.
var applyEntity = redis.NewScript(luaLogAdd2 + `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local t = tonumber(ARGV[2])
-- One read and one write of the hash, whatever the number of counters:
-- Redis runs scripts on one thread, so commands per event set the
-- pipeline's throughput.
local fields = {}
for i = 6, #ARGV, 3 do fields[#fields + 1] = ARGV[i] end
if ARGV[5] ~= '' then fields[#fields + 1] = 'trend' end
local cur = redis.call('HMGET', KEYS[2], unpack(fields))
local out = {}
for k = 1, (#ARGV - 5) / 3 do
  local i = 3 + 3 * k
  local inc, hl = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local v, ts = inc, t
  local c = cur[k]
  if c then
    local sep = string.find(c, ':', 1, true)
    local ov, ots = tonumber(string.sub(c, 1, sep - 1)), tonumber(string.sub(c, sep + 1))
    if t >= ots then
      v = ov * math.pow(2, -(t - ots) / hl) + inc
    else
      v = ov + inc * math.pow(2, -(ots - t) / hl)
      ts = ots
    end
  end
  out[#out + 1] = ARGV[i]
  out[#out + 1] = string.format('%.17g:%d', v, ts)
end
if ARGV[5] ~= '' then
  local w = tonumber(ARGV[5])
  local c = cur[#fields]
  if c then w = logadd2(tonumber(c), w) end
  out[#out + 1] = 'trend'
  out[#out + 1] = string.format('%.17g', w)
end
if #out > 0 then redis.call('HSET', KEYS[2], unpack(out)) end
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[3], 'GT', t, ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[4]) - 1)
end
return 1
`)

// applyTrending adds an event's weight to trending sorted sets, once.
// KEYS[1] de-duplication marker, KEYS[2..] sorted sets; ARGV[1] marker TTL
// (s), ARGV[2] item, ARGV[3] log2 weight (see trendingLogWeight).
var applyTrending = redis.NewScript(luaLogAdd2 + `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local w = tonumber(ARGV[3])
for i = 2, #KEYS do
  local s = w
  local cur = redis.call('ZSCORE', KEYS[i], ARGV[2])
  if cur then s = logadd2(tonumber(cur), w) end
  redis.call('ZADD', KEYS[i], string.format('%.17g', s), ARGV[2])
end
return 1
`)

// applyExperiment counts an event for its experiment arm, once.
// KEYS[1] de-duplication marker, KEYS[2] counters hash, KEYS[3] the arm's
// unique-user HyperLogLog; ARGV[1] marker TTL (s), ARGV[2] counter field,
// ARGV[3] user id.
var applyExperiment = redis.NewScript(`
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('PFADD', KEYS[3], ARGV[3])
return 1
`)

var scripts = []*redis.Script{replaceFields, applyEntity, applyTrending, applyExperiment}

const (
	maxIDBytes  = 256
	maxUpsert   = 10000
	profileTag  = "p:"
	attrTag     = "a:"
	counterTag  = "c:"
	affinityTag = "aff:"
	trendField  = "trend"
)

func checkID(what string, i int, id string) error {
	if err := validID(id); err != nil {
		return invalid("%s[%d]: %v", what, i, err)
	}
	return nil
}

func validID(id string) error {
	switch {
	case id == "":
		return errors.New("id is empty")
	case len(id) > maxIDBytes:
		return fmt.Errorf("id is longer than %d bytes", maxIDBytes)
	case !utf8.ValidString(id):
		return errors.New("id is not valid UTF-8")
	}
	return nil
}

// ValidateUser checks one profile as UpsertUsers does; the error wraps
// ErrInvalid.
func ValidateUser(u *userfeaturesv1.UserProfile) error {
	if err := validID(u.GetUserId()); err != nil {
		return invalid("user_id: %v", err)
	}
	if u.GetAge() < 0 || u.GetAge() > 150 {
		return invalid("user %s: age %d is outside 0..150", u.GetUserId(), u.GetAge())
	}
	return nil
}

// ValidateItem checks one item as UpsertItems does; the error wraps
// ErrInvalid.
func ValidateItem(it *itemfeaturesv1.ItemAttributes) error {
	if err := validID(it.GetItemId()); err != nil {
		return invalid("item_id: %v", err)
	}
	for j, c := range it.GetCategories() {
		if c == "" || len(c) > maxIDBytes || !utf8.ValidString(c) || strings.Contains(c, categorySep) {
			return invalid("item %s: categories[%d] %q must be non-empty UTF-8 of at most %d bytes without control characters", it.GetItemId(), j, c, maxIDBytes)
		}
	}
	return nil
}

func checkBatch(what string, n int) error {
	if n == 0 {
		return invalid("%s: at least one is required", what)
	}
	if n > maxUpsert {
		return invalid("%s: %d in one call, at most %d", what, n, maxUpsert)
	}
	return nil
}

// UpsertUsers replaces the profiles of the given users. The whole batch is
// validated before anything is written; each user's profile is replaced
// atomically; re-running the same batch changes nothing.
func (s *Store) UpsertUsers(ctx context.Context, users []*userfeaturesv1.UserProfile) error {
	k := s.keys()
	if err := checkBatch("users", len(users)); err != nil {
		return err
	}
	for i, u := range users {
		if err := ValidateUser(u); err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
	}
	now := strconv.FormatInt(s.now().UnixMilli(), 10)
	_, err := s.runScripts(ctx, func(p redis.Pipeliner) {
		for _, u := range users {
			args := []any{profileTag, profileTag + "ts", now,
				profileTag + "age", u.GetAge(), profileTag + "gender", u.GetGender(),
				profileTag + "occupation", u.GetOccupation(), profileTag + "zip_code", u.GetZipCode()}
			for k, v := range u.GetAttributes() {
				args = append(args, profileTag+"attr:"+k, v)
			}
			replaceFields.EvalSha(ctx, p, []string{k.userKey(u.GetUserId())}, args...)
		}
	})
	if err != nil {
		return fmt.Errorf("upsert %d users: %w", len(users), err)
	}
	return nil
}

// UpsertItems replaces the attributes of the given items, with the same
// guarantees as UpsertUsers.
func (s *Store) UpsertItems(ctx context.Context, items []*itemfeaturesv1.ItemAttributes) error {
	k := s.keys()
	if err := checkBatch("items", len(items)); err != nil {
		return err
	}
	for i, it := range items {
		if err := ValidateItem(it); err != nil {
			return fmt.Errorf("items[%d]: %w", i, err)
		}
	}
	now := strconv.FormatInt(s.now().UnixMilli(), 10)
	_, err := s.runScripts(ctx, func(p redis.Pipeliner) {
		for _, it := range items {
			args := []any{attrTag, attrTag + "ts", now,
				attrTag + "title", it.GetTitle(), attrTag + "categories", strings.Join(it.GetCategories(), categorySep), attrTag + "year", it.GetYear()}
			for k, v := range it.GetAttributes() {
				args = append(args, attrTag+"attr:"+k, v)
			}
			replaceFields.EvalSha(ctx, p, []string{k.itemKey(it.GetItemId())}, args...)
		}
	})
	if err != nil {
		return fmt.Errorf("upsert %d items: %w", len(items), err)
	}
	return nil
}

// EventKind is what happened.
type EventKind int

// Event kinds.
const (
	Impression EventKind = iota + 1
	Click
)

// Event is one user action, as the stream processor applies it.
type Event struct {
	ID     string // unique; the de-duplication key
	Kind   EventKind
	UserID string
	ItemID string
	Time   time.Time
	// The experiment arm that produced the ranking, when there was one.
	ExperimentID string
	Arm          string
	ModelVersion string
}

// ApplyResult counts what ApplyEvents did.
type ApplyResult struct {
	Applied    int // events applied for the first time (to at least one entity)
	Duplicates int // events every part of which had been applied before
}

// ApplyEvents folds events into the real-time features: the user's and the
// item's decayed counts, the user's category affinity and recent clicks, and
// the trending scores. Each part is applied atomically together with its
// de-duplication marker, so applying the same events again — after a crash,
// a rebalance or a retry — changes nothing. It takes two round trips: one to
// read the items' categories, one to apply.
func (s *Store) ApplyEvents(ctx context.Context, events []Event) (ApplyResult, error) {
	k := s.keys()
	if len(events) == 0 {
		return ApplyResult{}, nil
	}
	for i, e := range events {
		if err := e.Validate(); err != nil {
			return ApplyResult{}, invalid("events[%d]: %v", i, err)
		}
	}
	cats, err := s.categories(ctx, k, events)
	if err != nil {
		return ApplyResult{}, err
	}
	ttl := int64(DedupWindow.Seconds())
	parts := make([]int, len(events)) // script calls per event
	cmds, err := s.runScripts(ctx, func(p redis.Pipeliner) {
		for i, e := range events {
			parts[i] = 3
			t := e.Time.UnixMilli()
			kind, recent, trendW := "impressions", "", ImpressionTrendingWeight
			if e.Kind == Click {
				kind, recent, trendW = "clicks", e.ItemID, 1
			}
			counters := make([]any, 0, 3*(len(horizons)+len(cats[e.ItemID])))
			for _, h := range horizons {
				counters = append(counters, counterTag+kind+"_"+h.suffix, 1, h.halfLife.Milliseconds())
			}
			w := strconv.FormatFloat(trendingLogWeight(trendW, e.Time), 'g', 17, 64)
			itemArgs := append([]any{ttl, t, "", RecentClicks, w}, counters...)
			applyEntity.EvalSha(ctx, p, []string{k.itemKey(e.ItemID) + ":seen:" + e.ID, k.itemKey(e.ItemID)}, itemArgs...)

			if e.Kind == Click {
				for _, c := range cats[e.ItemID] {
					counters = append(counters, affinityTag+c, 1, AffinityHalfLife.Milliseconds())
				}
			}
			userArgs := append([]any{ttl, t, recent, RecentClicks, ""}, counters...)
			applyEntity.EvalSha(ctx, p, []string{k.userKey(e.UserID) + ":seen:" + e.ID, k.userKey(e.UserID), k.recentKey(e.UserID)}, userArgs...)

			keys := []string{k.trendingKey("") + ":seen:" + e.ID, k.trendingKey("")}
			for _, c := range cats[e.ItemID] {
				keys = append(keys, k.trendingKey(c))
			}
			applyTrending.EvalSha(ctx, p, keys, ttl, e.ItemID, w)

			if e.ExperimentID != "" {
				parts[i]++
				arm := armKey(e.Arm, e.ModelVersion)
				exp := k.experimentKey(e.ExperimentID)
				applyExperiment.EvalSha(ctx, p, []string{exp + ":seen:" + e.ID, exp, exp + ":users:" + arm}, ttl, arm+armSep+kind, e.UserID)
			}
		}
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply %d events: %w", len(events), err)
	}
	var res ApplyResult
	for i := range events {
		fresh := false
		for _, c := range cmds[:parts[i]] {
			if n, _ := c.(*redis.Cmd).Int(); n == 1 {
				fresh = true
			}
		}
		cmds = cmds[parts[i]:]
		if fresh {
			res.Applied++
		} else {
			res.Duplicates++
		}
	}
	return res, nil
}

// Validate checks an event as ApplyEvents does.
func (e Event) Validate() error {
	switch {
	case e.ID == "" || len(e.ID) > maxIDBytes:
		return fmt.Errorf("event id must be 1..%d bytes", maxIDBytes)
	case e.Kind != Impression && e.Kind != Click:
		return fmt.Errorf("event %s: unknown kind %d", e.ID, e.Kind)
	case e.UserID == "" || e.ItemID == "":
		return fmt.Errorf("event %s: user and item ids are required", e.ID)
	case e.Time.IsZero() || math.Abs(time.Since(e.Time).Hours()) > 24*365*50:
		return fmt.Errorf("event %s: event time %s is not plausible", e.ID, e.Time)
	case e.ExperimentID != "" && e.Arm == "":
		return fmt.Errorf("event %s: experiment %s without an arm", e.ID, e.ExperimentID)
	case strings.Contains(e.Arm+e.ModelVersion, armSep) || strings.ContainsAny(e.ExperimentID, "{}"):
		return fmt.Errorf("event %s: experiment, arm or model version has a control character or brace", e.ID)
	}
	return nil
}

// categories reads the categories of the events' items in one round trip.
func (s *Store) categories(ctx context.Context, k keyspace, events []Event) (map[string][]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := map[string]*redis.StringCmd{}
	for _, e := range events {
		if _, ok := cmds[e.ItemID]; !ok {
			cmds[e.ItemID] = pipe.HGet(ctx, k.itemKey(e.ItemID), attrTag+"categories")
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("redis: read item categories: %w", err)
	}
	out := make(map[string][]string, len(cmds))
	for id, c := range cmds {
		out[id] = splitCategories(c.Val())
	}
	return out, nil
}

// categorySep joins an item's categories in its hash (a control character
// no category may contain).
const categorySep = "\x1f"

func splitCategories(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, categorySep)
}
