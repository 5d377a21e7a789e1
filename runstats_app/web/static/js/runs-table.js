// The runs table: the list endpoint a page at a time ("Load more"), one row per run,
// and a row redrawn in place when its run changes.

import { request } from "./api.js";
import { annotationChips, badge, cell } from "./cells.js";
import { $ } from "./dom.js";
import { apiParams } from "./filters.js";
import { durationOf, formatCount, formatTime } from "./format.js";
import { API, pageError, user, view } from "./page.js";

const PAGE_SIZE = 25;
const rows = new Map();
let nextPageToken = null;

/** The first page for the filters in force (`reset`), or the page after the last one. */
export async function loadRuns(reset) {
  const generation = view.generation;
  const params = apiParams(view.state, user());
  params.set("page_size", String(PAGE_SIZE));
  if (!reset && nextPageToken) params.set("page_token", nextPageToken);
  const button = $("#load-more");
  button.disabled = true;
  try {
    const { body: page } = await request(`${API}/?${params}`, { signal: view.controller.signal });
    if (generation !== view.generation) return;
    if (reset) {
      $("#runs-body").replaceChildren();
      rows.clear();
    }
    for (const run of page.pipeline_runs) $("#runs-body").append(runRow(run));
    nextPageToken = page.next_page_token;
    button.hidden = !page.next_page_token;
    $("#runs-empty").hidden = rows.size > 0;
    $("#runs-count").textContent = `${formatCount(rows.size)} shown`;
  } catch (error) {
    if (generation === view.generation) pageError(error);
  } finally {
    button.disabled = false;
  }
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
  const previous = rows.get(run.id);
  rows.set(run.id, tr);
  if (previous && previous.isConnected) previous.replaceWith(tr);
  return tr;
}

/** Redraw the row of `run` if the table has one. */
export function updateRow(run) {
  if (rows.has(run.id)) runRow(run);
}

export function clearRuns() {
  $("#runs-body").replaceChildren();
  $("#load-more").hidden = true;
  $("#runs-count").textContent = "";
}

/** `openRun(id)` is called when a run in the table is clicked. */
export function initRunsTable(openRun) {
  $("#load-more").addEventListener("click", () => loadRuns(false));
  $("#runs-body").addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-id]");
    if (!tr || event.target.closest("a")) return;
    openRun(tr.dataset.id);
  });
}
