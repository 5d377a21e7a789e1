// The stats cards: the /stats request for the filters, a number per card, and
// "updated N s ago" counted from the result's cached_at. When the server is busy (a
// 503: too many stats computations at once) the cards keep their numbers, say
// "busy, retrying" and ask again after the answer's Retry-After.

import { ApiError, maxAgeSeconds, request } from "./api.js";
import { $, $$ } from "./dom.js";
import { formatCount } from "./format.js";
import { API, pageError } from "./page.js";

export const CARDS = {
  active: ["RUNNING", "PENDING", "QUEUED"],
  succeeded: ["SUCCEEDED"],
  failed: ["FAILED", "SYSTEM_ERROR"],
  cancelled: ["CANCELLED"],
};

const BUSY_RETRY_DEFAULT_SECONDS = 5;

let cachedAt = null;
let serverSkew = 0;
let busyUntil = null;

export function statsRequest(params, signal) {
  return request(`${API}/stats?${params}`, { signal });
}

/**
 * Show a settled statsRequest. Returns the seconds the result stays fresh, the
 * response's max-age (null when it has none); after a failure 0, to ask again soon.
 */
export function showStats(outcome) {
  if (outcome.status !== "fulfilled") {
    if (outcome.reason instanceof ApiError && outcome.reason.busy) {
      return showBusy(outcome.reason.retryAfter || BUSY_RETRY_DEFAULT_SECONDS);
    }
    pageError(outcome.reason);
    return 0;
  }
  busyUntil = null;
  $(".cards").classList.remove("busy");
  const { body: stats, response } = outcome.value;
  renderCards(stats);
  cachedAt = Date.parse(stats.cached_at);
  serverSkew = skewOf(response);
  $("#cache-state").textContent = `· cache ${response.headers.get("X-Cache") || "?"}`;
  tickUpdated();
  return maxAgeSeconds(response);
}

/** Keep the numbers, say so, and ask again after `seconds` (the caller schedules it). */
function showBusy(seconds) {
  busyUntil = Date.now() + seconds * 1000;
  $(".cards").classList.add("busy");
  $("#cache-state").textContent = "";
  tickUpdated();
  return seconds;
}

function skewOf(response) {
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
  if (busyUntil !== null) {
    const seconds = Math.max(0, Math.ceil((busyUntil - Date.now()) / 1000));
    $("#updated").textContent = `busy, retrying in ${seconds} s`;
    return;
  }
  if (cachedAt === null || Number.isNaN(cachedAt)) return;
  const now = Date.now() + serverSkew;
  // The Date header has one-second resolution: never show a time in the future.
  const seconds = Math.max(0, Math.floor((now - cachedAt) / 1000));
  $("#updated").textContent = `updated ${seconds} s ago`;
  $("#updated").dataset.cachedAt = new Date(cachedAt).toISOString();
}

export function clearCards() {
  for (const card of $$(".card .num")) card.textContent = "–";
  busyUntil = null;
  $(".cards").classList.remove("busy");
  $("#updated").textContent = "";
}

export function initCards() {
  setInterval(tickUpdated, 1000);
}
