// How counts, times and durations read on the page.

export function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

export function formatTime(iso) {
  return iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "").slice(0, 19) : "—";
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h >= 24) return `${Math.floor(h / 24)}d ${h % 24}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** A run's duration; a run still going counts up from its start ("running": shown muted). */
export function durationOf(run) {
  if (run.duration_seconds !== null && run.duration_seconds !== undefined) {
    return { text: formatDuration(run.duration_seconds), running: false };
  }
  if (run.started_at && !run.ended_at) {
    return { text: `${formatDuration((Date.now() - Date.parse(run.started_at)) / 1000)}+`, running: true };
  }
  return { text: "—", running: false };
}
