// The "Runs per day" (or hour) panel: /stats/history for the filters and their date
// range, drawn by chart.js with its title and caption, redrawn when its width changes.

import { ApiError, request } from "./api.js";
import { CARDS } from "./cards.js";
import { renderChart, renderLegend } from "./chart.js";
import { $ } from "./dom.js";
import { chartRange } from "./filters.js";
import { formatCount } from "./format.js";
import { API, pageError } from "./page.js";

const CHART_GROUPS = [
  { id: "succeeded", label: "Succeeded", statuses: CARDS.succeeded },
  { id: "failed", label: "Failed", statuses: CARDS.failed },
  { id: "cancelled", label: "Cancelled", statuses: CARDS.cancelled },
  { id: "active", label: "Active", statuses: CARDS.active },
  { id: "other", label: "Cancelling, skipped", statuses: ["CANCELLING", "SKIPPED"] },
];

let lastHistory = null;
let clipped = false;

/** The history for `params` over the range of `state`; resolves to {history, clipped}. */
export async function historyRequest(params, state, signal) {
  const range = chartRange(state);
  const query = new URLSearchParams(params);
  query.set("bucket", range.bucket);
  if (range.start) query.set("start_time", range.start);
  if (range.end) query.set("end_time", range.end);
  const { body } = await request(`${API}/stats/history?${query}`, { signal });
  return { history: body, clipped: range.clipped };
}

/** Draw a settled historyRequest. */
export function showHistory(outcome) {
  if (outcome.status !== "fulfilled") {
    // Busy: the chart keeps what it shows; the cards say so and the retry redraws it.
    if (!(outcome.reason instanceof ApiError && outcome.reason.busy)) pageError(outcome.reason);
    return;
  }
  lastHistory = outcome.value.history;
  clipped = outcome.value.clipped;
  drawChart();
}

/** Drop the history drawn last, so that a resize does not redraw it (the bucket changed). */
export function forgetChart() {
  lastHistory = null;
}

export function clearChart() {
  $("#chart").replaceChildren();
}

function drawChart() {
  const history = lastHistory;
  if (!history) return;
  const total = renderChart($("#chart"), history, CHART_GROUPS);
  $("#chart-title").textContent = history.bucket === "day" ? "Runs per day" : "Runs per hour";
  const from = history.start_time.slice(0, history.bucket === "day" ? 10 : 16).replace("T", " ");
  const last = new Date(Date.parse(history.end_time) - (history.bucket === "day" ? 86_400_000 : 3_600_000));
  const to = last.toISOString().slice(0, history.bucket === "day" ? 10 : 16).replace("T", " ");
  $("#chart-caption").textContent =
    `${formatCount(total)} ${total === 1 ? "run" : "runs"} created ${from} – ${to} UTC` +
    (clipped ? " (the last 400 buckets of the date range)" : "");
}

export function initChart() {
  renderLegend($("#chart-legend"), CHART_GROUPS);
  let width = $("#chart").clientWidth;
  window.addEventListener("resize", () => {
    if ($("#chart").clientWidth !== width) {
      width = $("#chart").clientWidth;
      drawChart();
    }
  });
}
