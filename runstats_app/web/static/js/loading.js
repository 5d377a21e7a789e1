// A load of the page's data for the filters in force: the cards and the chart, refreshed
// as the stats result goes stale, and the first page of runs. A new load supersedes the
// one before it: its requests are aborted and its answers dropped.

import { readsCarryToken } from "./api.js";
import { clearCards, showStats, statsRequest } from "./cards.js";
import { clearChart, historyRequest, showHistory } from "./chart-panel.js";
import { $, show } from "./dom.js";
import { apiParams, filterQuery } from "./filters.js";
import { TTL, pageError, user, view } from "./page.js";
import { clearRuns, loadRuns } from "./runs-table.js";

let refreshTimer = null;

function needsUser() {
  return view.state.by === "me" && !user() && !readsCarryToken();
}

export function reload() {
  view.generation += 1;
  if (view.controller) view.controller.abort();
  view.controller = new AbortController();
  clearTimeout(refreshTimer);
  const query = filterQuery(view.state);
  $("#filter-query-text").textContent = query ? JSON.stringify(query, null, 1) : "(none: every run)";
  pageError(null);
  if (needsUser()) {
    show($("#filter-hint"), "Enter who you are (or set a token) to see the runs created by “me”.");
    clearCards();
    clearRuns();
    clearChart();
    return;
  }
  show($("#filter-hint"), "");
  refreshAggregates();
  loadRuns(true);
}

function scheduleRefresh(maxAge) {
  clearTimeout(refreshTimer);
  // A fresh result is good for max-age seconds; a stale or bypass one (max-age 0) is
  // being recomputed, so ask again soon but not in a loop.
  const seconds = maxAge && maxAge > 0 ? maxAge : Math.min(TTL, 5);
  const jitter = Math.random() * 0.5;
  refreshTimer = setTimeout(refreshAggregates, (seconds + jitter) * 1000);
}

async function refreshAggregates() {
  const generation = view.generation;
  const signal = view.controller.signal;
  const params = apiParams(view.state, user());
  const [stats, history] = await Promise.allSettled([
    statsRequest(params, signal),
    historyRequest(params, view.state, signal),
  ]);
  if (generation !== view.generation) return;
  scheduleRefresh(showStats(stats));
  showHistory(history);
}

/** Fetch the cards and the chart again now, within the current load (the bucket changed). */
export function refreshAggregatesNow() {
  clearTimeout(refreshTimer);
  refreshAggregates();
}
