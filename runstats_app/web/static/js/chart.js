// A stacked bar chart drawn as plain SVG: one bar per bucket, one segment per status group.
// Colours come from CSS classes (seg-<group>), so the page needs no inline style.

const SVG = "http://www.w3.org/2000/svg";
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function el(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceStep(rough) {
  const power = 10 ** Math.floor(Math.log10(rough));
  for (const factor of [1, 2, 5, 10]) {
    if (factor * power >= rough) return factor * power;
  }
  return 10 * power;
}

function label(iso, bucket) {
  const moment = new Date(iso);
  const day = `${MONTHS[moment.getUTCMonth()]} ${moment.getUTCDate()}`;
  if (bucket === "day") return day;
  const hour = `${String(moment.getUTCHours()).padStart(2, "0")}:00`;
  return moment.getUTCHours() === 0 ? day : hour;
}

/**
 * Draw `history` (the /stats/history body) into `container`.
 * `groups`: [{id, label, statuses}] stacked bottom to top.
 */
export function renderChart(container, history, groups) {
  const width = Math.max(280, Math.floor(container.clientWidth || 600));
  const height = width < 500 ? 200 : 240;
  const margin = { top: 10, right: 8, bottom: 26, left: 36 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const buckets = history.buckets;
  const totals = buckets.map((bucket) => bucket.total_runs);
  const peak = Math.max(0, ...totals);
  const step = Math.max(1, niceStep(Math.max(peak, 1) / 4));
  const top = Math.max(step, Math.ceil(peak / step) * step);
  const y = (value) => margin.top + plotHeight - (value / top) * plotHeight;
  const slot = plotWidth / Math.max(1, buckets.length);
  const barWidth = Math.max(1, Math.min(28, slot * 0.78));

  const sum = totals.reduce((a, b) => a + b, 0);
  const svg = el("svg", {
    class: "chart-svg",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${sum} runs in ${buckets.length} ${history.bucket} buckets`,
  });
  svg.dataset.total = String(sum);

  const axis = el("g", { class: "axis" });
  for (let value = 0; value <= top; value += step) {
    axis.append(
      el("line", {
        x1: margin.left,
        x2: width - margin.right,
        y1: y(value),
        y2: y(value),
        class: value === 0 ? "baseline" : "grid",
      }),
      el("text", { x: margin.left - 6, y: y(value) + 4, class: "tick-y" }, String(value)),
    );
  }
  const every = Math.max(1, Math.ceil(buckets.length / Math.max(1, Math.floor(plotWidth / 52))));
  buckets.forEach((bucket, index) => {
    if ((buckets.length - 1 - index) % every !== 0) return;
    const last = index === buckets.length - 1 && slot < 40;
    // The last label ends at the plot's edge rather than overflowing it.
    const x = last ? width - margin.right : margin.left + slot * index + slot / 2;
    const text = label(bucket.start_time, history.bucket);
    axis.append(el("text", { x, y: height - 8, class: last ? "tick-x end" : "tick-x" }, text));
  });
  svg.append(axis);

  const bars = el("g", { class: "bars" });
  buckets.forEach((bucket, index) => {
    const x = margin.left + slot * index + (slot - barWidth) / 2;
    const bar = el("g", { class: "bar" });
    bar.dataset.start = bucket.start_time;
    bar.dataset.total = String(bucket.total_runs);
    const parts = [];
    let base = 0;
    for (const group of groups) {
      const count = group.statuses.reduce((n, s) => n + (bucket.counts_by_status[s] || 0), 0);
      if (count > 0) {
        bar.append(
          el("rect", {
            x,
            y: y(base + count),
            width: barWidth,
            height: Math.max(0.5, y(base) - y(base + count)),
            class: `seg seg-${group.id}`,
          }),
        );
        parts.push(`${group.label} ${count}`);
      }
      base += count;
    }
    // A transparent full-height target so that the tooltip works on empty and thin bars.
    bar.append(
      el("rect", { x: margin.left + slot * index, y: margin.top, width: slot, height: plotHeight, class: "hit" }),
    );
    const when = bucket.start_time.replace("T", " ").replace(":00:00Z", ":00 UTC");
    const title = `${history.bucket === "day" ? when.slice(0, 10) : when}: ${bucket.total_runs} runs`;
    bar.append(el("title", {}, parts.length ? `${title} (${parts.join(", ")})` : title));
    bars.append(bar);
  });
  svg.append(bars);
  container.replaceChildren(svg);
  return sum;
}

export function renderLegend(list, groups) {
  list.replaceChildren(
    ...groups.map((group) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = `swatch seg-${group.id}`;
      item.append(swatch, document.createTextNode(group.label));
      return item;
    }),
  );
}
