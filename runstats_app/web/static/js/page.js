// What every part of the homepage shares: the settings the server put on <body>, the
// filters in force, who "me" is, and the page's error line.

import { ApiError } from "./api.js";
import { $, show } from "./dom.js";
import { stateFromUrl } from "./filters.js";

const body = document.body;
export const API = body.dataset.api;
export const STATUSES = body.dataset.statuses.split(" ");
export const TTL = Number(body.dataset.statsTtl) || 30;
export const READS_NEED_TOKEN = body.dataset.readsNeedToken === "1";

/**
 * The filters in force and the load they started: a response for an older `generation`
 * is dropped, and `controller` aborts the requests of a load that was superseded.
 */
export const view = {
  state: stateFromUrl(location.search, STATUSES),
  generation: 0,
  controller: null,
};

/** The "You are" field: sent as current_user when the filter is "created by me". */
export function user() {
  return ($("#user-input").value || "").trim();
}

export function pageError(error) {
  if (error && error.name === "AbortError") return;
  show($("#page-error"), error ? (error instanceof ApiError ? error.plain : String(error)) : "");
}
