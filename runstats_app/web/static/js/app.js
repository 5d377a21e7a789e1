// The homepage: stats cards, filters in the URL, the runs table, admin actions, the chart.

import {
  ApiError,
  annotationPath,
  getToken,
  maxAgeSeconds,
  readsCarryToken,
  request,
  setToken,
} from "./api.js";
import { renderChart, renderLegend } from "./chart.js";
import { apiParams, chartRange, filterQuery, stateFromUrl, urlFromState } from "./filters.js";

const body = document.body;
const API = body.dataset.api;
const STATUSES = body.dataset.statuses.split(" ");
const TTL = Number(body.dataset.statsTtl) || 30;
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "SYSTEM_ERROR", "CANCELLED", "SKIPPED"]);
const PAGE_SIZE = 25;
const USER_KEY = "runstats.user";

const CARDS = {
  active: ["RUNNING", "PENDING", "QUEUED"],
  succeeded: ["SUCCEEDED"],
  failed: ["FAILED", "SYSTEM_ERROR"],
  cancelled: ["CANCELLED"],
};
const CHART_GROUPS = [
  { id: "succeeded", label: "Succeeded", statuses: CARDS.succeeded },
  { id: "failed", label: "Failed", statuses: CARDS.failed },
  { id: "cancelled", label: "Cancelled", statuses: CARDS.cancelled },
  { id: "active", label: "Active", statuses: CARDS.active },
  { id: "other", label: "Cancelling, skipped", statuses: ["CANCELLING", "SKIPPED"] },
];

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

const view = {
  state: stateFromUrl(location.search, STATUSES),
  generation: 0,
  cachedAt: null,
  refreshTimer: null,
  controller: null,
  nextPageToken: null,
  rows: new Map(),
  openRun: null,
  lastHistory: null,
};

// --- small helpers -------------------------------------------------------------------------

function show(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

function formatTime(iso) {
  return iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "").slice(0, 19) : "—";
}

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h >= 24) return `${Math.floor(h / 24)}d ${h % 24}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

function durationOf(run) {
  if (run.duration_seconds !== null && run.duration_seconds !== undefined) {
    return { text: formatDuration(run.duration_seconds), running: false };
  }
  if (run.started_at && !run.ended_at) {
    return { text: `${formatDuration((Date.now() - Date.parse(run.started_at)) / 1000)}+`, running: true };
  }
  return { text: "—", running: false };
}

function badge(status) {
  const span = document.createElement("span");
  span.className = `badge s-${status}`;
  span.textContent = status.replace("_", " ").toLowerCase();
  return span;
}

function annotationChips(annotations, removable) {
  return Object.entries(annotations || {}).map(([key, value]) => {
    const item = document.createElement(removable ? "li" : "span");
    item.className = "ann";
    const text = document.createElement("span");
    text.textContent = value === "" ? key : `${key}=${value}`;
    item.append(text);
    if (removable) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "icon remove";
      remove.dataset.key = key;
      remove.setAttribute("aria-label", `Remove annotation ${key}`);
      remove.textContent = "×";
      item.append(remove);
    }
    return item;
  });
}

function user() {
  return ($("#user-input").value || "").trim();
}

function pageError(error) {
  if (error && error.name === "AbortError") return;
  show($("#page-error"), error ? (error instanceof ApiError ? error.plain : String(error)) : "");
}

// --- filters <-> controls <-> URL ----------------------------------------------------------

function controlsFromState() {
  const form = $("#filters");
  const state = view.state;
  for (const radio of $$("input[name=by]", form)) radio.checked = radio.value === state.by;
  for (const name of ["name", "from", "to", "akey", "aval"]) form.elements[name].value = state[name];
  for (const chip of $$("#status-chips .chip")) {
    chip.setAttribute("aria-pressed", String(state.statuses.includes(chip.dataset.status)));
  }
  for (const button of $$(".bucket-toggle button")) {
    button.setAttribute("aria-pressed", String(button.dataset.bucket === state.bucket));
  }
}

function stateFromControls() {
  const form = $("#filters");
  return {
    by: form.elements.by.value === "me" ? "me" : "anyone",
    name: form.elements.name.value.trim(),
    from: form.elements.from.value,
    to: form.elements.to.value,
    akey: form.elements.akey.value.trim(),
    aval: form.elements.aval.value,
    statuses: $$("#status-chips .chip")
      .filter((chip) => chip.getAttribute("aria-pressed") === "true")
      .map((chip) => chip.dataset.status),
    bucket: view.state.bucket,
  };
}

function apply() {
  view.state = stateFromControls();
  const url = `${location.pathname}${urlFromState(view.state)}`;
  if (url !== `${location.pathname}${location.search}`) history.replaceState(null, "", url);
  reload();
}

let debounce = null;
function applySoon() {
  clearTimeout(debounce);
  debounce = setTimeout(apply, 350);
}

// --- loading -------------------------------------------------------------------------------

function needsUser() {
  return view.state.by === "me" && !user() && !readsCarryToken();
}

function reload() {
  view.generation += 1;
  if (view.controller) view.controller.abort();
  view.controller = new AbortController();
  clearTimeout(view.refreshTimer);
  const query = filterQuery(view.state);
  $("#filter-query-text").textContent = query ? JSON.stringify(query, null, 1) : "(none: every run)";
  pageError(null);
  if (needsUser()) {
    show($("#filter-hint"), "Enter who you are (or set a token) to see the runs created by “me”.");
    clearResults();
    return;
  }
  show($("#filter-hint"), "");
  refreshAggregates();
  loadRuns(true);
}

function clearResults() {
  for (const card of $$(".card .num")) card.textContent = "–";
  $("#runs-body").replaceChildren();
  $("#chart").replaceChildren();
  $("#load-more").hidden = true;
  $("#runs-count").textContent = "";
  $("#updated").textContent = "";
}

function scheduleRefresh(maxAge) {
  clearTimeout(view.refreshTimer);
  // A fresh result is good for max-age seconds; a stale or bypass one (max-age 0) is
  // being recomputed, so ask again soon but not in a loop.
  const seconds = maxAge && maxAge > 0 ? maxAge : Math.min(TTL, 5);
  const jitter = Math.random() * 0.5;
  view.refreshTimer = setTimeout(refreshAggregates, (seconds + jitter) * 1000);
}

async function refreshAggregates() {
  const generation = view.generation;
  const signal = view.controller.signal;
  const params = apiParams(view.state, user());
  const range = chartRange(view.state);
  const historyParams = new URLSearchParams(params);
  historyParams.set("bucket", range.bucket);
  if (range.start) historyParams.set("start_time", range.start);
  if (range.end) historyParams.set("end_time", range.end);
  const [stats, chart] = await Promise.allSettled([
    request(`${API}/stats?${params}`, { signal }),
    request(`${API}/stats/history?${historyParams}`, { signal }),
  ]);
  if (generation !== view.generation) return;
  if (stats.status === "fulfilled") {
    renderCards(stats.value.body);
    view.cachedAt = Date.parse(stats.value.body.cached_at);
    view.serverSkew = serverSkew(stats.value.response);
    $("#cache-state").textContent = `· cache ${stats.value.response.headers.get("X-Cache") || "?"}`;
    tickUpdated();
    scheduleRefresh(maxAgeSeconds(stats.value.response));
  } else {
    pageError(stats.reason);
    scheduleRefresh(0);
  }
  if (chart.status === "fulfilled") {
    view.lastHistory = chart.value.body;
    view.chartClipped = range.clipped;
    drawChart();
  } else {
    pageError(chart.reason);
  }
}

function serverSkew(response) {
  const date = Date.parse(response.headers.get("Date") || "");
  return Number.isNaN(date) ? 0 : date - Date.now();
}

function renderCards(stats) {
  const counts = stats.counts_by_status;
  for (const [card, statuses] of Object.entries(CARDS)) {
    const value = statuses.reduce((n, status) => n + (counts[status] || 0), 0);
    $(`.card[data-card=${card}] .num`).textContent = formatCount(value);
  }
  $(".card[data-card=total] .num").textContent = formatCount(stats.total_runs);
}

function tickUpdated() {
  if (view.cachedAt === null || Number.isNaN(view.cachedAt)) return;
  const now = Date.now() + (view.serverSkew || 0);
  // The Date header has one-second resolution: never show a time in the future.
  const seconds = Math.max(0, Math.floor((now - view.cachedAt) / 1000));
  $("#updated").textContent = `updated ${seconds} s ago`;
  $("#updated").dataset.cachedAt = new Date(view.cachedAt).toISOString();
}

function drawChart() {
  const history = view.lastHistory;
  if (!history) return;
  const total = renderChart($("#chart"), history, CHART_GROUPS);
  $("#chart-title").textContent = history.bucket === "day" ? "Runs per day" : "Runs per hour";
  const from = history.start_time.slice(0, history.bucket === "day" ? 10 : 16).replace("T", " ");
  const last = new Date(Date.parse(history.end_time) - (history.bucket === "day" ? 86_400_000 : 3_600_000));
  const to = last.toISOString().slice(0, history.bucket === "day" ? 10 : 16).replace("T", " ");
  $("#chart-caption").textContent =
    `${formatCount(total)} ${total === 1 ? "run" : "runs"} created ${from} – ${to} UTC` +
    (view.chartClipped ? " (the last 400 buckets of the date range)" : "");
}

async function loadRuns(reset) {
  const generation = view.generation;
  const params = apiParams(view.state, user());
  params.set("page_size", String(PAGE_SIZE));
  if (!reset && view.nextPageToken) params.set("page_token", view.nextPageToken);
  const button = $("#load-more");
  button.disabled = true;
  try {
    const { body: page } = await request(`${API}/?${params}`, { signal: view.controller.signal });
    if (generation !== view.generation) return;
    if (reset) {
      $("#runs-body").replaceChildren();
      view.rows.clear();
    }
    for (const run of page.pipeline_runs) $("#runs-body").append(runRow(run));
    view.nextPageToken = page.next_page_token;
    button.hidden = !page.next_page_token;
    $("#runs-empty").hidden = view.rows.size > 0;
    $("#runs-count").textContent = `${formatCount(view.rows.size)} shown`;
  } catch (error) {
    if (generation === view.generation) pageError(error);
  } finally {
    button.disabled = false;
  }
}

// --- the runs table ------------------------------------------------------------------------

function cell(label, ...content) {
  const td = document.createElement("td");
  td.dataset.label = label;
  td.append(...content);
  return td;
}

function runRow(run) {
  const tr = document.createElement("tr");
  tr.dataset.id = run.id;
  tr.dataset.status = run.status;
  const open = document.createElement("button");
  open.type = "button";
  open.className = "linklike run-name";
  open.textContent = run.name;
  const id = document.createElement("span");
  id.className = "run-id";
  id.textContent = run.id;
  const duration = durationOf(run);
  const durationText = document.createElement("span");
  durationText.textContent = duration.text;
  if (duration.running) durationText.className = "muted";
  const chips = document.createElement("div");
  chips.className = "annotations";
  chips.append(...annotationChips(run.annotations, false));
  tr.append(
    cell("Name", open, id),
    cell("Status", badge(run.status)),
    cell("Created by", run.created_by ?? "—"),
    cell("Created", formatTime(run.created_at)),
    cell("Duration", durationText),
    cell("Annotations", chips),
  );
  const previous = view.rows.get(run.id);
  view.rows.set(run.id, tr);
  if (previous && previous.isConnected) previous.replaceWith(tr);
  return tr;
}

function updateRun(run) {
  if (view.rows.has(run.id)) runRow(run);
  if (view.openRun && view.openRun.id === run.id) fillDialog(run);
}

// --- the run dialog and admin actions -------------------------------------------------------

function fillDialog(run) {
  view.openRun = run;
  $("#run-title").textContent = run.name;
  $("#run-meta").textContent = run.id;
  const fields = [
    ["Status", badge(run.status)],
    ["Created by", run.created_by ?? "—"],
    ["Created", `${formatTime(run.created_at)} UTC`],
    ["Started", run.started_at ? `${formatTime(run.started_at)} UTC` : "—"],
    ["Ended", run.ended_at ? `${formatTime(run.ended_at)} UTC` : "—"],
    ["Duration", durationOf(run).text],
    ["Attempt", `${run.attempt} of ${run.max_attempts}`],
  ];
  $("#run-fields").replaceChildren(
    ...fields.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.append(value);
      return [dt, dd];
    }),
  );
  // Cancelling a CANCELLING run changes nothing, so it is not offered.
  $("#run-cancel").hidden = TERMINAL.has(run.status) || run.status === "CANCELLING";
  $("#run-annotations").replaceChildren(...annotationChips(run.annotations, true));
  if (!Object.keys(run.annotations || {}).length) {
    const none = document.createElement("li");
    none.className = "muted";
    none.textContent = "none";
    $("#run-annotations").append(none);
  }
}

async function loadHistory(run) {
  const tbody = $("#run-history");
  tbody.replaceChildren();
  try {
    const { body: changes } = await request(`${API}/${encodeURIComponent(run.id)}/history`);
    if (!view.openRun || view.openRun.id !== run.id) return;
    if (!changes.length) {
      const tr = document.createElement("tr");
      tr.append(cell("", "No status change since creation."));
      tr.firstChild.colSpan = 4;
      tbody.append(tr);
    }
    for (const change of changes) {
      const tr = document.createElement("tr");
      tr.append(
        cell("At", formatTime(change.at)),
        cell("From", badge(change.from_status)),
        cell("To", badge(change.to_status)),
        cell("Time in previous", formatDuration(change.seconds_in_previous_status)),
      );
      tbody.append(tr);
    }
  } catch (error) {
    show($("#run-error"), error instanceof ApiError ? error.plain : String(error));
  }
}

function openRun(run) {
  show($("#run-error"), "");
  show($("#run-notice"), "");
  fillDialog(run);
  const dialog = $("#run-dialog");
  if (!dialog.open) dialog.showModal();
  loadHistory(run);
}

async function runAction(action, notice) {
  const run = view.openRun;
  if (!run) return;
  show($("#run-error"), "");
  show($("#run-notice"), "");
  if (!getToken()) {
    show($("#run-error"), "Enter a token (writer or admin) first.");
    $("#dialog-token-input").focus();
    return;
  }
  try {
    const changed = await action(run);
    updateRun(changed);
    show($("#run-notice"), notice(changed));
    loadHistory(changed);
  } catch (error) {
    show($("#run-error"), error instanceof ApiError ? error.plain : String(error));
  }
}

async function fetchRun(id) {
  const { body: run } = await request(`${API}/${encodeURIComponent(id)}`);
  return run;
}

function cancelRun() {
  return runAction(
    async (run) => (await request(`${API}/${encodeURIComponent(run.id)}/cancel`, { method: "POST", write: true })).body,
    (run) => `Status is now ${run.status}.`,
  );
}

function setAnnotation(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const key = form.elements.key.value.trim();
  const value = form.elements.value.value;
  if (!key) return;
  return runAction(
    async (run) => {
      const { body: changed } = await request(annotationPath(API, run.id, key), {
        method: "PUT",
        json: { value },
        write: true,
      });
      form.reset();
      return changed;
    },
    () => `Annotation ${key} set.`,
  );
}

function removeAnnotation(event) {
  const button = event.target.closest("button.remove");
  if (!button) return;
  const key = button.dataset.key;
  return runAction(
    async (run) => {
      await request(annotationPath(API, run.id, key), { method: "DELETE", write: true });
      return fetchRun(run.id);
    },
    () => `Annotation ${key} removed.`,
  );
}

// --- the token -----------------------------------------------------------------------------

function showTokenState() {
  const set = Boolean(getToken());
  $("#token-state").hidden = !set;
  $("#token-input").hidden = set;
  $("#token-save").hidden = set;
  $("label[for=token-input]").hidden = set;
  $("#dialog-token-form").hidden = set;
}

function useToken(event) {
  event.preventDefault();
  const input = event.currentTarget.elements.token;
  const token = input.value.trim();
  if (!token) return;
  setToken(token);
  input.value = "";
  showTokenState();
  show($("#run-error"), "");
  if (body.dataset.readsNeedToken === "1") reload();
}

// --- wiring --------------------------------------------------------------------------------

function init() {
  try {
    $("#user-input").value = localStorage.getItem(USER_KEY) || "";
  } catch {
    // No storage: the field simply starts empty.
  }
  controlsFromState();
  renderLegend($("#chart-legend"), CHART_GROUPS);
  showTokenState();

  const form = $("#filters");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
  form.addEventListener("input", (event) => {
    if (event.target.id === "user-input") return;
    if (event.target.type === "text" || event.target.type === "search") applySoon();
  });
  form.addEventListener("change", (event) => {
    if (event.target.id === "user-input") return;
    if (event.target.type !== "text" && event.target.type !== "search") apply();
  });
  form.addEventListener("reset", () => {
    const who = user();
    setTimeout(() => {
      // "You are" stands in for a login: clearing the filters keeps it.
      $("#user-input").value = who;
      for (const chip of $$("#status-chips .chip")) chip.setAttribute("aria-pressed", "false");
      apply();
    }, 0);
  });
  $("#status-chips").addEventListener("click", (event) => {
    const chip = event.target.closest(".chip");
    if (!chip) return;
    chip.setAttribute("aria-pressed", String(chip.getAttribute("aria-pressed") !== "true"));
    apply();
  });
  $("#user-input").addEventListener("input", () => {
    try {
      localStorage.setItem(USER_KEY, user());
    } catch {
      // Not kept across visits without storage.
    }
    if (view.state.by === "me") applySoon();
  });
  for (const button of $$(".bucket-toggle button")) {
    button.addEventListener("click", () => {
      view.state = { ...stateFromControls(), bucket: button.dataset.bucket };
      controlsFromState();
      history.replaceState(null, "", `${location.pathname}${urlFromState(view.state)}`);
      view.lastHistory = null;
      clearTimeout(view.refreshTimer);
      refreshAggregates();
    });
  }

  $("#load-more").addEventListener("click", () => loadRuns(false));
  $("#runs-body").addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-id]");
    if (!tr || event.target.closest("a")) return;
    const id = tr.dataset.id;
    fetchRun(id).then(openRun, pageError);
  });
  $("#run-cancel").addEventListener("click", cancelRun);
  $("#annotation-form").addEventListener("submit", setAnnotation);
  $("#run-annotations").addEventListener("click", removeAnnotation);
  $("#run-dialog").addEventListener("close", () => {
    view.openRun = null;
  });

  $("#token-form").addEventListener("submit", useToken);
  $("#dialog-token-form").addEventListener("submit", useToken);
  $("#token-forget").addEventListener("click", () => {
    setToken("");
    showTokenState();
    if (body.dataset.readsNeedToken === "1") reload();
  });

  window.addEventListener("popstate", () => {
    view.state = stateFromUrl(location.search, STATUSES);
    controlsFromState();
    reload();
  });
  let width = $("#chart").clientWidth;
  window.addEventListener("resize", () => {
    if ($("#chart").clientWidth !== width) {
      width = $("#chart").clientWidth;
      drawChart();
    }
  });
  setInterval(tickUpdated, 1000);
  reload();
}

init();
