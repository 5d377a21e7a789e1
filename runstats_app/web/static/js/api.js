// The runstats API as the page uses it: JSON in and out, the token kept per tab,
// errors turned into one readable line.

const TOKEN_KEY = "runstats.token";

export class ApiError extends Error {
  constructor(status, reason, message, body, retryAfter = null) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.body = body;
    this.retryAfter = retryAfter;
  }

  /** The server is busy (503): worth asking again after `retryAfter` seconds. */
  get busy() {
    return this.status === 503;
  }

  /** "409 Conflict: Only a non-terminal run can be cancelled." */
  get plain() {
    return `${this.status} ${this.reason}: ${this.message}`;
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage may be disabled; the token then lasts until the page is left.
  }
}

const readsNeedToken = document.body.dataset.readsNeedToken === "1";

/** Whether reads carry the token (and so whether "me" is the token's user on reads). */
export function readsCarryToken() {
  return readsNeedToken && Boolean(getToken());
}

/**
 * One request; resolves to {body, response} or throws ApiError.
 * `write` requests always carry the token; reads only when the deployment requires it.
 */
export async function request(path, { method = "GET", json, write = false, signal } = {}) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token && (write || readsNeedToken)) headers.Authorization = `Bearer ${token}`;
  if (write && !token) {
    throw new ApiError(401, "Unauthorized", "Enter a token (writer or admin) first.", null);
  }
  const init = { method, headers, signal, cache: "no-store", credentials: "same-origin" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "Network error", "Could not reach the server.", null);
  }
  const text = await response.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    const reason = (body && body.status) || response.statusText || "Error";
    const message = (body && body.message) || "The server answered without details.";
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    throw new ApiError(
      response.status,
      reason,
      message,
      body,
      Number.isNaN(retryAfter) ? null : retryAfter,
    );
  }
  return { body, response };
}

export function maxAgeSeconds(response) {
  const match = /max-age=(\d+)/.exec(response.headers.get("Cache-Control") || "");
  return match ? Number(match[1]) : null;
}

/** Path of one annotation; keys may contain "/" (they are the rest of the URL path). */
export function annotationPath(base, runId, key) {
  const encodedKey = key.split("/").map(encodeURIComponent).join("/");
  return `${base}/${encodeURIComponent(runId)}/annotations/${encodedKey}`;
}
