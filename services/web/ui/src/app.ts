// The recsys web UI: recommendations for a user, clicks sent back as
// events, the user's real-time features, the experiment report and the
// models. Every call goes over gRPC-Web to the same origin (the edge).
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { RankingService, ModelService, ModelState, type RecommendResponse } from "../../../../gen/ts/recsys/ranking/v1/ranking_pb";
import { FeedbackService, EventSchema, EventType } from "../../../../gen/ts/recsys/feedback/v1/feedback_pb";
import { UserFeatureService } from "../../../../gen/ts/recsys/userfeatures/v1/userfeatures_pb";

const transport = createGrpcWebTransport({ baseUrl: window.location.origin });
const ranking = createClient(RankingService, transport);
const models = createClient(ModelService, transport);
const feedback = createClient(FeedbackService, transport);
const users = createClient(UserFeatureService, transport);

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let current: RecommendResponse | undefined;
let currentUser = "user-1";
let experimentId = "default";
let retry: number | undefined;

// While the platform is still starting (no model, empty catalogue), try
// again shortly.
function retryLater() {
  clearTimeout(retry);
  retry = window.setTimeout(recommend, 2000);
}

function showError(where: string, err: unknown) {
  const el = $("error");
  const msg = err instanceof ConnectError ? `${Code[err.code]}: ${err.rawMessage}` : String(err);
  el.textContent = `${where} failed (${msg}). Retrying…`;
  el.hidden = false;
}
function clearError() { $("error").hidden = true; }

function eventId(kind: string, item: string) {
  return `ui-${kind}-${item}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
}

async function recommend() {
  const meta = $("recs-meta");
  meta.textContent = "Loading…";
  try {
    const t0 = performance.now();
    const resp = await ranking.recommend({ userId: currentUser, limit: 10 });
    const rtt = performance.now() - t0;
    current = resp;
    experimentId = resp.experimentId || experimentId;
    const server = resp.serverLatency ? Number(resp.serverLatency.seconds) * 1000 + resp.serverLatency.nanos / 1e6 : 0;
    const flags = [resp.featuresDegraded ? "features degraded" : "", resp.modelFallback ? "trending fallback (no model)" : ""].filter(Boolean).join(", ");
    meta.textContent = `arm ${resp.arm} · model ${resp.modelVersion || "none"} · server ${server.toFixed(1)} ms · round trip ${rtt.toFixed(0)} ms` + (flags ? ` · ${flags}` : "");
    const list = $("recs");
    list.replaceChildren();
    if (resp.items.length === 0) {
      list.innerHTML = `<li class="meta">No recommendations yet: the catalogue is empty or still loading. Retrying…</li>`;
      retryLater();
    }
    for (const it of resp.items) {
      const li = document.createElement("li");
      li.dataset.item = it.itemId;
      li.innerHTML = `<span class="pos">${it.position + 1}</span><span class="title"></span><span class="cat"></span><span class="source"></span><span class="score">${it.score.toFixed(3)}</span>`;
      li.querySelector(".title")!.textContent = it.title || it.itemId;
      li.querySelector(".cat")!.textContent = it.categories[0] ?? "";
      li.querySelector(".source")!.textContent = it.source;
      li.addEventListener("click", () => click(it.itemId, it.position, li));
      list.appendChild(li);
    }
    clearError();
    // What the user saw: impressions, tied to this ranking.
    if (resp.items.length > 0) {
      await feedback.recordEvents({ events: resp.items.map((it) => event(EventType.IMPRESSION, it.itemId, it.position)) });
    }
  } catch (err) {
    meta.textContent = "Could not load recommendations.";
    showError("Recommend", err);
    retryLater();
  }
}

function event(type: EventType, itemId: string, position: number) {
  return create(EventSchema, {
    eventId: eventId(type === EventType.CLICK ? "c" : "i", itemId), type, userId: currentUser, itemId, position,
    requestId: current?.requestId ?? "", modelVersion: current?.modelVersion ?? "", experimentId: current?.experimentId ?? "",
    arm: current?.arm ?? "", eventTime: timestampNow(),
    // The serving flags go back with the event for the report's guardrails.
    featuresDegraded: current?.featuresDegraded ?? false, modelFallback: current?.modelFallback ?? false,
    serverLatency: current?.serverLatency,
  });
}

async function click(itemId: string, position: number, li: HTMLElement) {
  li.classList.add("clicked");
  try {
    await feedback.recordEvents({ events: [event(EventType.CLICK, itemId, position)] });
    clearError();
  } catch (err) {
    showError("RecordEvents", err);
  }
}

async function refreshFeatures() {
  try {
    const resp = await users.getUserFeature({ userId: currentUser, featureNames: ["category_affinity", "recent_clicks"] });
    const f = resp.user?.features ?? {};
    const aff = f["category_affinity"]?.value.case === "weights" ? f["category_affinity"].value.value.weights : {};
    const entries = Object.entries(aff).sort((a, b) => b[1] - a[1]).slice(0, 12);
    const top = entries.length ? entries[0][1] : 1;
    const box = $("affinity");
    box.replaceChildren();
    if (entries.length === 0) box.innerHTML = `<p class="meta">No clicks yet.</p>`;
    for (const [cat, w] of entries) {
      const row = document.createElement("div");
      row.className = "bar";
      row.dataset.category = cat;
      // Sizes are set through the CSSOM, never as style attributes: the
      // Content-Security-Policy allows no inline styles.
      row.innerHTML = `<span></span><div><div class="fill"></div></div><span>${w.toFixed(2)}</span>`;
      row.querySelector("span")!.textContent = cat;
      row.querySelector<HTMLElement>(".fill")!.style.width = `${(100 * w / top).toFixed(1)}%`;
      box.appendChild(row);
    }
    const recent = f["recent_clicks"]?.value.case === "list" ? f["recent_clicks"].value.value.values : [];
    $("recent").replaceChildren(...recent.slice(0, 8).map((id) => { const li = document.createElement("li"); li.textContent = id; return li; }));
  } catch (err) {
    showError("GetUserFeature", err);
  }
}

// The experiment report, read as an experimenter would: the split check
// and every warning first, then per arm its CTR with the 95% interval
// and, against the control, the fixed-horizon result (valid when read once
// at a planned size), the always-valid sequential one (valid however often
// this panel refreshes), the CUPED-adjusted one, and the guardrails.
async function refreshExperiment() {
  $("exp-id").textContent = experimentId;
  const box = $("experiment");
  try {
    const r = await feedback.getExperimentReport({ experimentId });
    box.replaceChildren();
    const line = (text: string, cls = "") => {
      const p = document.createElement("p");
      p.className = cls ? `meta ${cls}` : "meta";
      p.textContent = text;
      box.appendChild(p);
      return p;
    };
    const alarm = "alarm"; // classes in style.css (no inline styles under the CSP)
    const pct = (x: number, digits = 1) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(digits)}%`;
    const pv = (p: number) => p < 1e-4 ? "< 0.0001" : p.toPrecision(2);
    if (r.srmChecked) {
      line(r.srm ? `Sample-ratio mismatch (p ${pv(r.srmPValue)}): do not trust this report.` : `Split as configured (sample-ratio check p ${pv(r.srmPValue)}).`, r.srm ? alarm : "");
    }
    for (const w of r.warnings) line(w, "warning");
    const max = Math.max(0.05, ...r.arms.map((a) => a.ctrHigh));
    for (const a of r.arms) {
      const div = document.createElement("div");
      div.className = "arm";
      const bar = (x: number) => `${(100 * x / max).toFixed(1)}%`;
      div.innerHTML = `<strong></strong> <span class="meta"></span>
        <div class="ci"><div class="range"></div><div class="point"></div></div>`;
      const range = div.querySelector<HTMLElement>(".range")!, point = div.querySelector<HTMLElement>(".point")!;
      range.style.left = bar(a.ctrLow);
      range.style.width = bar(a.ctrHigh - a.ctrLow);
      point.style.left = bar(a.ctr);
      div.querySelector("strong")!.textContent = `${a.arm} (${a.modelVersion})`;
      const share = a.expectedUserShare > 0 ? ` (${(100 * a.userShare).toFixed(1)}% of users, ${(100 * a.expectedUserShare).toFixed(1)}% configured)` : "";
      div.querySelector(".meta")!.textContent = `CTR ${(100 * a.ctr).toFixed(2)}% [${(100 * a.ctrLow).toFixed(2)}, ${(100 * a.ctrHigh).toFixed(2)}] · ${a.uniqueUsers} users${share} · ${a.impressions} impressions · ${a.clicks} clicks`;
      const sub = (text: string, cls = "") => {
        const p = document.createElement("p");
        p.className = cls ? `meta ${cls}` : "meta";
        p.textContent = text;
        div.appendChild(p);
      };
      if (a.arm !== r.controlArm) {
        sub(`Fixed horizon (read once, at the planned size): lift ${pct(a.lift)} [${pct(a.liftLow)}, ${pct(a.liftHigh)}] · p ${pv(a.pValue)}`);
        sub(`Always valid (read any time): lift in [${pct(a.sequentialLiftLow)}, ${pct(a.sequentialLiftHigh)}] · p ${pv(a.sequentialPValue)}`);
        sub(`CUPED: lift ${pct(a.cupedLift)} [${pct(a.cupedLiftLow)}, ${pct(a.cupedLiftHigh)}] · p ${pv(a.cupedPValue)} · variance ${pct(-a.cupedVarianceReduction, 0)}`);
      }
      const g = a.guardrails;
      if (g && g.impressions > 0n) {
        const ms = g.latencyP99 ? Number(g.latencyP99.seconds) * 1000 + g.latencyP99.nanos / 1e6 : 0;
        sub(`Guardrails: p99 ${ms.toFixed(1)} ms · feature fallback ${(100 * g.featureFallbackRate).toFixed(1)}% · model fallback ${(100 * g.modelFallbackRate).toFixed(1)}%`);
        for (const b of g.breaches) sub(`Guardrail breached: ${b}`, alarm);
      }
      box.appendChild(div);
    }
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.NotFound) {
      box.innerHTML = `<p class="meta">No events in this experiment yet.</p>`;
    } else {
      showError("GetExperimentReport", err);
    }
  }
}

async function refreshModels() {
  try {
    const r = await models.listModels({});
    const body = document.querySelector("#models tbody")!;
    body.replaceChildren(...r.models.map((m) => {
      const tr = document.createElement("tr");
      for (const cell of [m.version, ModelState[m.state].replace("MODEL_STATE_", "").toLowerCase(), m.provider, m.metrics["ndcg_at_10"]?.toFixed(3) ?? "", m.metrics["ease_ndcg_at_10"]?.toFixed(3) ?? ""]) {
        const td = document.createElement("td");
        td.textContent = cell;
        tr.appendChild(td);
      }
      return tr;
    }));
  } catch (err) {
    showError("ListModels", err);
  }
}

function init() {
  const list = $("users");
  for (let i = 0; i < 50; i++) {
    const o = document.createElement("option");
    o.value = `user-${i}`;
    list.appendChild(o);
  }
  const params = new URLSearchParams(window.location.search);
  currentUser = params.get("user") ?? currentUser;
  ($("user") as HTMLInputElement).value = currentUser;
  $("user-form").addEventListener("submit", (e) => {
    e.preventDefault();
    currentUser = ($("user") as HTMLInputElement).value.trim() || currentUser;
    recommend();
    refreshFeatures();
  });
  $("random").addEventListener("click", () => {
    currentUser = `user-${Math.floor(Math.random() * 1000)}`;
    ($("user") as HTMLInputElement).value = currentUser;
    recommend();
    refreshFeatures();
  });
  recommend();
  refreshFeatures();
  refreshModels();
  refreshExperiment();
  setInterval(refreshFeatures, 500);
  setInterval(refreshExperiment, 2000);
  setInterval(refreshModels, 5000);
}

init();
