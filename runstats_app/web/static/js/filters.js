// The filter controls' state: read from and written to the page URL (so a view can be
// shared), and turned into the API's filter_query / current_user / status parameters.

const CREATED_BY = "system/pipeline_run.created_by";
const NAME = "system/pipeline_run.name";
const CREATED_AT = "system/pipeline_run.date.created_at";
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export const EMPTY_STATE = Object.freeze({
  by: "anyone",
  name: "",
  from: "",
  to: "",
  akey: "",
  aval: "",
  statuses: [],
  bucket: "day",
});

/** The state a page URL describes; unknown or malformed values fall back to the defaults. */
export function stateFromUrl(search, knownStatuses) {
  const params = new URLSearchParams(search);
  const text = (name) => (params.get(name) || "").trim();
  const date = (name) => (DATE.test(text(name)) ? text(name) : "");
  return {
    by: text("by") === "me" ? "me" : "anyone",
    name: text("name"),
    from: date("from"),
    to: date("to"),
    akey: text("akey"),
    aval: params.get("aval") || "",
    statuses: knownStatuses.filter((status) => params.getAll("status").includes(status)),
    bucket: text("bucket") === "hour" ? "hour" : "day",
  };
}

/** The page URL's query string for a state (defaults left out). */
export function urlFromState(state) {
  const params = new URLSearchParams();
  if (state.by === "me") params.set("by", "me");
  for (const name of ["name", "from", "to", "akey"]) {
    if (state[name]) params.set(name, state[name]);
  }
  if (state.akey && state.aval) params.set("aval", state.aval);
  for (const status of state.statuses) params.append("status", status);
  if (state.bucket !== "day") params.set("bucket", state.bucket);
  const query = params.toString();
  return query ? `?${query}` : "";
}

function nextDay(isoDate) {
  const day = new Date(`${isoDate}T00:00:00Z`);
  day.setUTCDate(day.getUTCDate() + 1);
  return day.toISOString().slice(0, 10);
}

/** The predicates of filter_query for a state, or null when it has none. */
export function filterQuery(state) {
  const predicates = [];
  if (state.by === "me") {
    predicates.push({ value_equals: { key: CREATED_BY, value: "me" } });
  }
  if (state.name) {
    predicates.push({ value_contains: { key: NAME, value_substring: state.name } });
  }
  if (state.from || state.to) {
    const range = { key: CREATED_AT };
    if (state.from) range.start_time = `${state.from}T00:00:00Z`;
    if (state.to) range.end_time = `${nextDay(state.to)}T00:00:00Z`;
    predicates.push({ time_range: range });
  }
  if (state.akey) {
    predicates.push(
      state.aval
        ? { value_equals: { key: state.akey, value: state.aval } }
        : { key_exists: { key: state.akey } },
    );
  }
  return predicates.length ? { and: predicates } : null;
}

/** The API parameters shared by the list, stats and history endpoints. */
export function apiParams(state, user) {
  const params = new URLSearchParams();
  const query = filterQuery(state);
  if (query) params.set("filter_query", JSON.stringify(query));
  if (state.by === "me" && user) params.set("current_user", user);
  for (const status of state.statuses) params.append("status", status);
  return params;
}

const STEP_MS = { day: 86_400_000, hour: 3_600_000 };
const DEFAULT_BUCKETS = { day: 30, hour: 48 };
export const MAX_BUCKETS = 400;

function floorTo(ms, bucket) {
  return Math.floor(ms / STEP_MS[bucket]) * STEP_MS[bucket];
}

/**
 * The chart's range: the date filter's when one is set (its last MAX_BUCKETS buckets at
 * most), else none, so that the server's default range (shared by every page) is used.
 */
export function chartRange(state, now = Date.now()) {
  const bucket = state.bucket;
  if (!state.from && !state.to) return { bucket, start: null, end: null, clipped: false };
  const step = STEP_MS[bucket];
  const end = state.to
    ? Date.parse(`${nextDay(state.to)}T00:00:00Z`)
    : floorTo(now, bucket) + step;
  let start = state.from
    ? Date.parse(`${state.from}T00:00:00Z`)
    : end - DEFAULT_BUCKETS[bucket] * step;
  let clipped = false;
  if ((end - start) / step > MAX_BUCKETS) {
    start = end - MAX_BUCKETS * step;
    clipped = true;
  }
  if (start >= end) start = end - step;
  const iso = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");
  return { bucket, start: iso(start), end: iso(end), clipped };
}
