// The token for admin actions: entered at the top or in the run dialog, kept for the tab,
// forgotten on request. Where reads need a token, a change reloads the page's data.

import { getToken, setToken } from "./api.js";
import { $, show } from "./dom.js";
import { reload } from "./loading.js";
import { READS_NEED_TOKEN } from "./page.js";

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
  if (READS_NEED_TOKEN) reload();
}

export function initToken() {
  showTokenState();
  $("#token-form").addEventListener("submit", useToken);
  $("#dialog-token-form").addEventListener("submit", useToken);
  $("#token-forget").addEventListener("click", () => {
    setToken("");
    showTokenState();
    if (READS_NEED_TOKEN) reload();
  });
}
