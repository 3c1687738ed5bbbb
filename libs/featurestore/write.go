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

// luaApply is what the scripts that apply events share. A script reads its
// KEYS and ARGV in order through key() and arg(), so one event's parts can
// run one script each (Redis Cluster: a part's keys are in one slot) or
// all in one script (a single Redis), with the same code.
const luaApply = `
local ki, ai = 0, 0
local function key() ki = ki + 1 return KEYS[ki] end
local function arg() ai = ai + 1 return ARGV[ai] end

-- fresh sets the de-duplication marker (a key; then the TTL in seconds) and
-- says whether it was not set before.
local function fresh()
  return redis.call('SET', key(), '1', 'NX', 'EX', arg())
end

-- logadd2 is logAdd2. (It avoids the "a, b = b, a" swap: the embedded
-- server's Lua gets it wrong.)
local function logadd2(c, w)
  local hi, lo = math.max(c, w), math.min(c, w)
  return hi + math.log(1 + math.pow(2, lo - hi)) / math.log(2)
end

-- entity folds the event into one user's or item's hash with one read and
-- one write, whatever the number of counters, and adds the item to the
-- entity's capped sorted sets (a user's recent clicks and history). Keys:
-- the hash, then those sets. Args: event time (ms), the item, the number of
-- sets and the length each is capped to, trending log2 weight to add to
-- the "trend" field ("" for none), the number of counters, then (field,
-- increment, half-life ms) of each decayed counter to bump.
local function entity()
  local hash = key()
  local t, item, nsets = tonumber(arg()), arg(), tonumber(arg())
  local keeps = {}
  for k = 1, nsets do keeps[k] = tonumber(arg()) end
  local trend, n = arg(), tonumber(arg())
  local fields, incs, hls = {}, {}, {}
  for k = 1, n do fields[k], incs[k], hls[k] = arg(), tonumber(arg()), tonumber(arg()) end
  if trend ~= '' then fields[n + 1] = 'trend' end
  local cur = redis.call('HMGET', hash, unpack(fields))
  local out = {}
  for k = 1, n do
    local v, ts = incs[k], t
    local c = cur[k]
    if c then
      local sep = string.find(c, ':', 1, true)
      local ov, ots = tonumber(string.sub(c, 1, sep - 1)), tonumber(string.sub(c, sep + 1))
      if t >= ots then
        v = ov * math.pow(2, -(t - ots) / hls[k]) + incs[k]
      else
        v = ov + incs[k] * math.pow(2, -(ots - t) / hls[k])
        ts = ots
      end
    end
    out[#out + 1] = fields[k]
    out[#out + 1] = string.format('%.17g:%d', v, ts)
  end
  if trend ~= '' then
    local w = tonumber(trend)
    local c = cur[n + 1]
    if c then w = logadd2(tonumber(c), w) end
    out[#out + 1] = 'trend'
    out[#out + 1] = string.format('%.17g', w)
  end
  redis.call('HSET', hash, unpack(out))
  -- GT keeps each item's latest time and the cap its newest ones, so the
  -- sets do not depend on the order events arrive in.
  for k = 1, nsets do
    local set = key()
    redis.call('ZADD', set, 'GT', t, item)
    redis.call('ZREMRANGEBYRANK', set, 0, -keeps[k] - 1)
  end
end

-- trending adds the event's weight to trending sorted sets. Keys: the
-- sets. Args: their number, the item, the log2 weight.
local function trending()
  local n, item, w = tonumber(arg()), arg(), tonumber(arg())
  for _ = 1, n do
    local set, s = key(), w
    local cur = redis.call('ZSCORE', set, item)
    if cur then s = logadd2(tonumber(cur), w) end
    redis.call('ZADD', set, string.format('%.17g', s), item)
  end
end

-- experiment counts the event for its arm: the (arm, version) counter and
-- unique users, and the arm's user-level sums (experiment.go): the user's
-- own counts, and the sums over users updated by the change of this
-- user's terms. Keys: the counters hash, the unique-user HyperLogLog, the
-- arm's hash, the arm's per-user hash. Args: counter field, user id,
-- "clicks" or "impressions", the user's pre-experiment clicks and
-- impressions (kept from their first event in the arm), and the latency
-- bucket ("" when the event carries no serving flags), features-degraded
-- and model-fallback (0 or 1). Increments rather than a read and a write
-- of every sum: the counts' terms are integers (HINCRBY), and the
-- covariates' terms are skipped when the user had no activity before.
local function experiment()
  local counters, hll, arm, users = key(), key(), key(), key()
  local field, user, kind = arg(), arg(), arg()
  local c, m = tonumber(arg()), tonumber(arg())
  local bucket, fd, mf = arg(), arg(), arg()
  redis.call('HINCRBY', counters, field, 1)
  redis.call('PFADD', hll, user)
  local y, x = 0, 0
  local u = redis.call('HGET', users, user)
  if u then
    local a, b, cc, mm = string.match(u, '^(%S+) (%S+) (%S+) (%S+)$')
    y = tonumber(a)
    x = tonumber(b)
    c = tonumber(cc)
    m = tonumber(mm)
  else
    redis.call('HINCRBY', arm, 'n', 1)
    if c ~= 0 or m ~= 0 then
      redis.call('HINCRBYFLOAT', arm, 'c', c)
      redis.call('HINCRBYFLOAT', arm, 'm', m)
      redis.call('HINCRBYFLOAT', arm, 'cc', c * c)
      redis.call('HINCRBYFLOAT', arm, 'cm', c * m)
      redis.call('HINCRBYFLOAT', arm, 'mm', m * m)
    end
  end
  -- y' = y + 1 adds 2y + 1 to Σy², x to Σyx, c to Σyc, m to Σym (and so
  -- for x).
  local v, other, p, pc, pm = 'y', x, 2 * y + 1, 'yc', 'ym'
  if kind == 'clicks' then
    y = y + 1
  else
    v, other, p, pc, pm = 'x', y, 2 * x + 1, 'xc', 'xm'
    x = x + 1
  end
  redis.call('HINCRBY', arm, v, 1)
  redis.call('HINCRBY', arm, v .. v, p)
  if other ~= 0 then redis.call('HINCRBY', arm, 'yx', other) end
  if c ~= 0 then redis.call('HINCRBYFLOAT', arm, pc, c) end
  if m ~= 0 then redis.call('HINCRBYFLOAT', arm, pm, m) end
  redis.call('HSET', users, user, string.format('%d %d %.17g %.17g', y, x, c, m))
  if bucket ~= '' then
    redis.call('HINCRBY', arm, 'g', 1)
    redis.call('HINCRBY', arm, 'l' .. bucket, 1)
    if fd == '1' then redis.call('HINCRBY', arm, 'fd', 1) end
    if mf == '1' then redis.call('HINCRBY', arm, 'mf', 1) end
  end
end
`

// applyPart applies one part of an event (user, item, trending or
// experiment; see eventParts), once: KEYS[1] and ARGV[1] are the part's
// de-duplication marker and its TTL, ARGV[2] the part ("entity",
// "trending" or "experiment"), the rest as its function in luaApply takes
// them. Returns 1 when applied, 0 for a duplicate. On Redis Cluster every
// part is one call, its keys in one slot.
var applyPart = redis.NewScript(luaApply + `
if not fresh() then return 0 end
local part = arg()
if part == 'entity' then entity() elseif part == 'trending' then trending() else experiment() end
return 1
`)

// applyEvents applies several whole events in one call on a single Redis
// (where every key may go in one script), each event's parts at once with
// one marker: the item, the user, trending and, when it has one, the
// experiment part. A call costs the server a script invocation (the
// embedded server starts a Lua state for each), so this is many times
// faster than one call per part. ARGV[1] is the number of events; each
// event then begins with the number of its KEYS and ARGV entries (so a
// duplicate's can be skipped) and whether it has an experiment part ("1"
// or "0"), followed by its marker, the marker's TTL, and its parts' keys
// and args as their functions in luaApply take them. Returns 1 (applied)
// or 0 (duplicate) per event.
var applyEvents = redis.NewScript(luaApply + `
local res = {}
for e = 1, tonumber(arg()) do
  local nk, na, exp = tonumber(arg()), tonumber(arg()), arg()
  local k0, a0 = ki, ai
  res[e] = 0
  if fresh() then
    entity()
    entity()
    trending()
    if exp == '1' then experiment() end
    res[e] = 1
  end
  ki, ai = k0 + nk, a0 + na
end
return res
`)

// eventsPerCall bounds the events of one applyEvents call: Redis runs a
// script alone, so a long one would hold up every read behind it.
const eventsPerCall = 32

var scripts = []*redis.Script{replaceFields, applyPart, applyEvents}

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
	return upsert(ctx, s, "users", users, ValidateUser, func(u *userfeaturesv1.UserProfile, now string) (string, []any) {
		args := []any{profileTag, profileTag + "ts", now,
			profileTag + "age", u.GetAge(), profileTag + "gender", u.GetGender(),
			profileTag + "occupation", u.GetOccupation(), profileTag + "zip_code", u.GetZipCode()}
		for name, v := range u.GetAttributes() {
			args = append(args, profileTag+"attr:"+name, v)
		}
		return k.userKey(u.GetUserId()), args
	})
}

// UpsertItems replaces the attributes of the given items, with the same
// guarantees as UpsertUsers.
func (s *Store) UpsertItems(ctx context.Context, items []*itemfeaturesv1.ItemAttributes) error {
	k := s.keys()
	return upsert(ctx, s, "items", items, ValidateItem, func(it *itemfeaturesv1.ItemAttributes, now string) (string, []any) {
		args := []any{attrTag, attrTag + "ts", now,
			attrTag + "title", it.GetTitle(), attrTag + "categories", strings.Join(it.GetCategories(), categorySep), attrTag + "year", it.GetYear()}
		for name, v := range it.GetAttributes() {
			args = append(args, attrTag+"attr:"+name, v)
		}
		return k.itemKey(it.GetItemId()), args
	})
}

// upsert is what UpsertUsers and UpsertItems share: it validates the whole
// batch, then replaces each entity's static fields in one pipeline. fields
// gives an entity's hash key and the arguments of replaceFields (the tag,
// then field, value pairs), stamped with now.
func upsert[T any](ctx context.Context, s *Store, what string, batch []T, validate func(T) error, fields func(v T, now string) (string, []any)) error {
	if err := checkBatch(what, len(batch)); err != nil {
		return err
	}
	for i, v := range batch {
		if err := validate(v); err != nil {
			return fmt.Errorf("%s[%d]: %w", what, i, err)
		}
	}
	now := strconv.FormatInt(s.now().UnixMilli(), 10)
	_, err := s.runScripts(ctx, func(p redis.Pipeliner) {
		for _, v := range batch {
			key, args := fields(v, now)
			replaceFields.EvalSha(ctx, p, []string{key}, args...)
		}
	})
	if err != nil {
		return fmt.Errorf("upsert %d %s: %w", len(batch), what, err)
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
	// Consumed says an impression is a consumption of the item, which
	// goes into the user's history (every click does): a rating or a
	// purchase imported in a batch is one; an impression a client sends
	// through the API is only a display and is not.
	Consumed bool
	// The experiment arm that produced the ranking, when there was one.
	ExperimentID string
	Arm          string
	ModelVersion string
	// How the ranking was served, for the experiment's guardrails:
	// ServerLatency 0 means unknown (the event counts in no guardrail).
	FeaturesDegraded bool
	ModelFallback    bool
	ServerLatency    time.Duration
}

// ApplyResult counts what ApplyEvents did.
type ApplyResult struct {
	Applied    int // events applied for the first time (to at least one entity)
	Duplicates int // events every part of which had been applied before
}

// ApplyEvents folds events into the real-time features: the user's and the
// item's decayed counts, the user's category affinity, recent clicks and
// history (clicks and consumed impressions), and the trending scores. Each
// part (on a single Redis, each whole event) is applied atomically together
// with its de-duplication marker, so applying the same events again — after
// a crash, a rebalance or a retry — changes nothing. It takes two round
// trips: one to read the items' categories, one to apply (and a third
// when events are in an experiment: the users' counters before it).
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
	pre, err := s.preExposure(ctx, k, events)
	if err != nil {
		return ApplyResult{}, err
	}
	ttl := int64(DedupWindow.Seconds())
	if s.oneNode() {
		return s.applyWhole(ctx, k, events, cats, pre, ttl)
	}
	// Redis Cluster: one call per part, its keys in one slot.
	calls := make([]int, len(events))
	cmds, err := s.runScripts(ctx, func(p redis.Pipeliner) {
		for i, e := range events {
			parts := eventParts(k, e, cats[e.ItemID], pre[e.UserID])
			for _, pt := range parts {
				applyPart.EvalSha(ctx, p, append([]string{pt.marker}, pt.keys...), append([]any{ttl, pt.name}, pt.args...)...)
			}
			calls[i] = len(parts)
		}
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply %d events: %w", len(events), err)
	}
	var res ApplyResult
	for _, n := range calls {
		fresh := false
		for _, c := range cmds[:n] {
			if v, _ := c.(*redis.Cmd).Int(); v == 1 {
				fresh = true
			}
		}
		cmds = cmds[n:]
		res.count(fresh)
	}
	return res, nil
}

func (r *ApplyResult) count(fresh bool) {
	if fresh {
		r.Applied++
	} else {
		r.Duplicates++
	}
}

// applyWhole applies events on a single Redis: each whole event with one
// marker (the user part's), up to eventsPerCall events a script call.
func (s *Store) applyWhole(ctx context.Context, k keyspace, events []Event, cats map[string][]string, pre map[string]preCounts, ttl int64) (ApplyResult, error) {
	cmds, err := s.runScripts(ctx, func(p redis.Pipeliner) {
		for lo := 0; lo < len(events); lo += eventsPerCall {
			batch := events[lo:min(lo+eventsPerCall, len(events))]
			var keys []string
			args := []any{len(batch)}
			for _, e := range batch {
				parts := eventParts(k, e, cats[e.ItemID], pre[e.UserID])
				ek, ea := []string{parts[1].marker}, []any{ttl}
				for _, pt := range parts {
					ek, ea = append(ek, pt.keys...), append(ea, pt.args...)
				}
				exp := "0"
				if len(parts) > 3 {
					exp = "1"
				}
				keys, args = append(keys, ek...), append(append(args, len(ek), len(ea), exp), ea...)
			}
			applyEvents.EvalSha(ctx, p, keys, args...)
		}
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply %d events: %w", len(events), err)
	}
	var res ApplyResult
	for _, c := range cmds {
		got, err := c.(*redis.Cmd).Int64Slice()
		if err != nil {
			return ApplyResult{}, fmt.Errorf("apply %d events: %w", len(events), err)
		}
		for _, v := range got {
			res.count(v == 1)
		}
	}
	return res, nil
}

// part is one piece of an event whose keys share a Redis Cluster slot, as
// a function of luaApply takes it.
type part struct {
	name   string // the function: "entity", "trending" or "experiment"
	marker string // the part's de-duplication marker, in the same slot
	keys   []string
	args   []any
}

// eventParts splits an event into the parts applyEvents takes, in its
// order: the item, the user, trending, and the experiment when there is
// one. cats are the item's categories; pre the user's counters before the
// batch (preExposure), for an experiment event.
func eventParts(k keyspace, e Event, cats []string, pre preCounts) []part {
	t := e.Time.UnixMilli()
	kind, trendW := "impressions", ImpressionTrendingWeight
	if e.Kind == Click {
		kind, trendW = "clicks", 1
	}
	w := strconv.FormatFloat(trendingLogWeight(trendW, e.Time), 'g', 17, 64)
	counters := make([]any, 0, 3*(len(horizons)+len(cats)))
	for _, h := range horizons {
		counters = append(counters, counterTag+kind+"_"+h.suffix, 1, h.halfLife.Milliseconds())
	}
	// entity's args; keeps are the caps of the sorted sets the item goes
	// into, whose keys follow the hash's in the part's keys.
	entity := func(keeps []any, trend string) []any {
		args := append([]any{t, e.ItemID, len(keeps)}, keeps...)
		return append(append(args, trend, len(counters)/3), counters...)
	}
	item := part{"entity", k.itemKey(e.ItemID) + ":seen:" + e.ID, []string{k.itemKey(e.ItemID)}, entity(nil, w)}

	if e.Kind == Click {
		for _, c := range cats {
			counters = append(counters, affinityTag+c, 1, AffinityHalfLife.Milliseconds())
		}
	}
	userKeys, keeps := []string{k.userKey(e.UserID)}, []any(nil)
	if e.Kind == Click {
		userKeys, keeps = append(userKeys, k.recentKey(e.UserID)), append(keeps, HistoryLength)
	}
	if e.Kind == Click || e.Consumed {
		userKeys, keeps = append(userKeys, k.historyKey(e.UserID)), append(keeps, HistoryLength)
	}
	user := part{"entity", k.userKey(e.UserID) + ":seen:" + e.ID, userKeys, entity(keeps, "")}

	trend := part{name: "trending", marker: k.trendingKey("") + ":seen:" + e.ID, keys: []string{k.trendingKey("")}}
	for _, c := range cats {
		trend.keys = append(trend.keys, k.trendingKey(c))
	}
	trend.args = []any{len(trend.keys), e.ItemID, w}

	parts := []part{item, user, trend}
	if e.ExperimentID != "" {
		parts = append(parts, experimentPart(k, e, kind, pre))
	}
	return parts
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
