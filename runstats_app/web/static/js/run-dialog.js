// The run dialog: a run's fields, annotations and status history, and the admin
// actions on it (cancel, set or remove an annotation), which need a token.

import { ApiError, annotationPath, getToken, request } from "./api.js";
import { annotationChips, badge, cell } from "./cells.js";
import { $, show } from "./dom.js";
import { durationOf, formatDuration, formatTime } from "./format.js";
import { API, pageError } from "./page.js";
import { updateRow } from "./runs-table.js";

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "SYSTEM_ERROR", "CANCELLED", "SKIPPED"]);

let openRun = null;

function fillDialog(run) {
  openRun = run;
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
    if (!openRun || openRun.id !== run.id) return;
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

function openDialog(run) {
  show($("#run-error"), "");
  show($("#run-notice"), "");
  fillDialog(run);
  const dialog = $("#run-dialog");
  if (!dialog.open) dialog.showModal();
  loadHistory(run);
}

async function fetchRun(id) {
  const { body: run } = await request(`${API}/${encodeURIComponent(id)}`);
  return run;
}

/** Fetch the run `id` and open its dialog. */
export function showRun(id) {
  return fetchRun(id).then(openDialog, pageError);
}

async function runAction(action, notice) {
  const run = openRun;
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
    updateRow(changed);
    if (openRun && openRun.id === changed.id) fillDialog(changed);
    show($("#run-notice"), notice(changed));
    loadHistory(changed);
  } catch (error) {
    show($("#run-error"), error instanceof ApiError ? error.plain : String(error));
  }
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

export function initRunDialog() {
  $("#run-cancel").addEventListener("click", cancelRun);
  $("#annotation-form").addEventListener("submit", setAnnotation);
  $("#run-annotations").addEventListener("click", removeAnnotation);
  $("#run-dialog").addEventListener("close", () => {
    openRun = null;
  });
}
