// The filter controls: set from the state, read back into it, kept in the page's URL
// (so that a view can be shared) and applied, after a pause while typing.

import { forgetChart } from "./chart-panel.js";
import { $, $$ } from "./dom.js";
import { stateFromUrl, urlFromState } from "./filters.js";
import { refreshAggregatesNow, reload } from "./loading.js";
import { STATUSES, user, view } from "./page.js";

const USER_KEY = "runstats.user";

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

function watchFilterForm() {
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
}

function watchUser() {
  try {
    $("#user-input").value = localStorage.getItem(USER_KEY) || "";
  } catch {
    // No storage: the field simply starts empty.
  }
  $("#user-input").addEventListener("input", () => {
    try {
      localStorage.setItem(USER_KEY, user());
    } catch {
      // Not kept across visits without storage.
    }
    if (view.state.by === "me") applySoon();
  });
}

function watchBucket() {
  for (const button of $$(".bucket-toggle button")) {
    button.addEventListener("click", () => {
      view.state = { ...stateFromControls(), bucket: button.dataset.bucket };
      controlsFromState();
      history.replaceState(null, "", `${location.pathname}${urlFromState(view.state)}`);
      forgetChart();
      refreshAggregatesNow();
    });
  }
}

export function initControls() {
  watchUser();
  controlsFromState();
  watchFilterForm();
  watchBucket();
  window.addEventListener("popstate", () => {
    view.state = stateFromUrl(location.search, STATUSES);
    controlsFromState();
    reload();
  });
}
