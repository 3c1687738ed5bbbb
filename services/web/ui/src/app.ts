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
      li.innerHTML = `<span class="pos">${it.position + 1}</span><span class="title"></span><span class="cat"></span><span class="score">${it.score.toFixed(3)}</span>`;
      li.querySelector(".title")!.textContent = it.title || it.itemId;
      li.querySelector(".cat")!.textContent = it.categories[0] ?? "";
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
      row.innerHTML = `<span></span><div><div class="fill" style="width:${(100 * w / top).toFixed(1)}%"></div></div><span>${w.toFixed(2)}</span>`;
      row.querySelector("span")!.textContent = cat;
      box.appendChild(row);
    }
    const recent = f["recent_clicks"]?.value.case === "list" ? f["recent_clicks"].value.value.values : [];
    $("recent").replaceChildren(...recent.slice(0, 8).map((id) => { const li = document.createElement("li"); li.textContent = id; return li; }));
  } catch (err) {
    showError("GetUserFeature", err);
  }
}

async function refreshExperiment() {
  $("exp-id").textContent = experimentId;
  const box = $("experiment");
  try {
    const r = await feedback.getExperimentReport({ experimentId });
    box.replaceChildren();
    const max = Math.max(0.05, ...r.arms.map((a) => a.ctrHigh));
    for (const a of r.arms) {
      const div = document.createElement("div");
      div.className = "arm";
      const pct = (x: number) => `${(100 * x / max).toFixed(1)}%`;
      div.innerHTML = `<strong></strong> <span class="meta"></span>
        <div class="ci"><div class="range" style="left:${pct(a.ctrLow)};width:${pct(a.ctrHigh - a.ctrLow)}"></div><div class="point" style="left:${pct(a.ctr)}"></div></div>`;
      div.querySelector("strong")!.textContent = `${a.arm} (${a.modelVersion})`;
      div.querySelector(".meta")!.textContent = `CTR ${(100 * a.ctr).toFixed(2)}% [${(100 * a.ctrLow).toFixed(2)}, ${(100 * a.ctrHigh).toFixed(2)}] · ${a.impressions} impressions · ${a.clicks} clicks` +
        (a.arm !== r.controlArm ? ` · lift ${(100 * a.lift).toFixed(1)}% · p ${a.pValue.toPrecision(2)}` : "");
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
      for (const cell of [m.version, ModelState[m.state].replace("MODEL_STATE_", "").toLowerCase(), m.provider, m.metrics["auc"]?.toFixed(3) ?? ""]) {
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
