// The KPI series as a bar chart drawn in inline SVG: y axis with gridlines and tick labels,
// x axis with bucket labels, one bar per bucket holding events, a <title> on every bar, and
// role="img" with a title and description summarising the whole picture.

import { bucketLabel, count, tickLabel } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const DEFAULT_WIDTH = 800; // drawn at the container's width, so labels keep their size
const MIN_WIDTH = 280;
const HEIGHT = 300;
const MARGIN = { top: 24, right: 44, bottom: 40, left: 52 };
const MIN_TICK_SPACING = 110; // px between x labels

function s(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

/** Round y-axis ticks: 0 to a "nice" top (1, 2 or 5 times a power of ten, integer steps). */
export function yTicks(max) {
  if (max <= 0) return [0, 1];
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(1, [1, 2, 5, 10].find((m) => m * power >= rough) * power);
  const top = Math.ceil(max / step) * step;
  return Array.from({ length: top / step + 1 }, (_, i) => i * step);
}

const NICE_HOURS = [1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 672];

/**
 * Bucket indices to label: evenly spaced, at least MIN_TICK_SPACING apart. Days and weeks
 * end on the latest bucket (today); hours land on round local hours (midnight, 06:00, ...):
 * bucket starts are in the series' zone, so their hour is read straight from the ISO text.
 */
export function xTickIndices(buckets, interval, plotWidth) {
  const n = buckets.length;
  if (n === 0) return [];
  let every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotWidth / MIN_TICK_SPACING))));
  let first = (n - 1) % every; // days and weeks: the latest bucket (today) gets a label
  if (interval === "HOUR") {
    every = NICE_HOURS.find((h) => h >= every) ?? every;
    const hourOf = (b) => Number(b.start.slice(11, 13));
    const aligned = buckets.findIndex((b) => hourOf(b) % Math.min(every, 24) === 0);
    first = aligned === -1 ? 0 : aligned;
  }
  const indices = [];
  for (let i = first; i < n; i += every) indices.push(i);
  return indices;
}

const PER = { HOUR: "hour", DAY: "day", WEEK: "week" };

/** One sentence saying what the picture shows, for its accessible description. */
export function summarise(series, kpiName, span) {
  const { buckets, interval, timeZone, totalEvents, totalUniqueUsers } = series;
  const events = `${count(totalEvents, "event")} from ${count(totalUniqueUsers, "user")}`;
  const head = `${kpiName}: ${events}, ${span} (${timeZone}), per ${PER[interval]}.`;
  if (totalEvents === 0) return `${head} No events in this range.`;
  const peak = buckets.reduce((best, b) => (b.events > best.events ? b : best));
  const busy = buckets.filter((b) => b.events > 0).length;
  const when = bucketLabel(peak.start, peak.end, interval, timeZone);
  const spread = `${count(busy, PER[interval])} of ${buckets.length} had events`;
  return `${head} ${spread}; the most, ${peak.events}, in ${when}.`;
}

/**
 * The chart as an <svg> element; `idPrefix` names its <title> and <desc> for ARIA, and
 * `range` ({from, to} Dates), when given, marks buckets only partly inside it; `width` is in
 * CSS pixels (the SVG scales, but drawing it at its real width keeps the text readable).
 */
export function seriesChart(
  series,
  { title, description, range = null, width = DEFAULT_WIDTH, idPrefix = "chart" },
) {
  const { buckets, interval, timeZone } = series;
  const chartWidth = Math.max(MIN_WIDTH, Math.round(width));
  const plot = {
    left: MARGIN.left,
    top: MARGIN.top,
    width: chartWidth - MARGIN.left - MARGIN.right,
    height: HEIGHT - MARGIN.top - MARGIN.bottom,
  };
  const bottom = plot.top + plot.height;
  const ticks = yTicks(Math.max(0, ...buckets.map((b) => b.events)));
  const top = ticks.at(-1);
  const y = (value) => bottom - (value / top) * plot.height;
  const slot = plot.width / Math.max(1, buckets.length);
  const barWidth = slot >= 4 ? slot * 0.8 : slot; // thin buckets touch, wide ones get gaps

  const svg = s("svg", {
    viewBox: `0 0 ${chartWidth} ${HEIGHT}`,
    class: "chart",
    role: "img",
    "aria-labelledby": `${idPrefix}-title`,
    "aria-describedby": `${idPrefix}-desc`,
    "data-buckets": buckets.length,
  });
  svg.append(
    s("title", { id: `${idPrefix}-title` }, title),
    s("desc", { id: `${idPrefix}-desc` }, description),
  );

  const grid = s("g", { class: "grid", "aria-hidden": "true" });
  const yAxis = s("g", { class: "axis y-axis", "aria-hidden": "true" });
  for (const tick of ticks) {
    grid.append(s("line", { x1: plot.left, x2: plot.left + plot.width, y1: y(tick), y2: y(tick) }));
    yAxis.append(
      s("text", { x: plot.left - 8, y: y(tick), dy: "0.32em", "text-anchor": "end" }, String(tick)),
    );
  }
  yAxis.append(
    s("line", { x1: plot.left, x2: plot.left, y1: plot.top, y2: bottom }),
    s(
      "text",
      { x: plot.left - 8, y: plot.top - 10, "text-anchor": "start", class: "axis-title" },
      "Events",
    ),
  );

  const xAxis = s("g", { class: "axis x-axis", "aria-hidden": "true" });
  xAxis.append(s("line", { x1: plot.left, x2: plot.left + plot.width, y1: bottom, y2: bottom }));
  const xTicks = xTickIndices(buckets, interval, plot.width);
  // Hourly ticks a day or more apart fall on midnights: the date alone says it.
  const labelAs = interval === "HOUR" && xTicks[1] - xTicks[0] >= 24 ? "DAY" : interval;
  for (const i of xTicks) {
    const x = plot.left + (i + 0.5) * slot;
    xAxis.append(
      s("line", { x1: x, x2: x, y1: bottom, y2: bottom + 5 }),
      s(
        "text",
        { x, y: bottom + 20, "text-anchor": "middle" },
        tickLabel(buckets[i].start, labelAs, timeZone),
      ),
    );
  }

  const bars = s("g", { class: "bars" });
  buckets.forEach((bucket, i) => {
    if (bucket.events <= 0) return;
    const height = Math.max(1, bottom - y(bucket.events)); // one event is never invisible
    // The first and last buckets may stick out of the range: only their part inside counts.
    const partial =
      range && (new Date(bucket.start) < range.from || new Date(bucket.end) > range.to);
    const when = bucketLabel(bucket.start, bucket.end, interval, timeZone);
    const what = `${count(bucket.events, "event")}, ${count(bucket.uniqueUsers, "user")}`;
    const label = `${when}: ${what}${partial ? " (only the part inside the range)" : ""}`;
    bars.append(
      s(
        "rect",
        {
          class: partial ? "bar partial" : "bar",
          x: plot.left + i * slot + (slot - barWidth) / 2,
          y: bottom - height,
          width: barWidth,
          height,
          "data-start": bucket.start,
          "data-events": bucket.events,
        },
        s("title", {}, label),
      ),
    );
  });
  svg.append(grid, bars, yAxis, xAxis);

  if (series.totalEvents === 0) {
    svg.append(
      s(
        "text",
        {
          x: plot.left + plot.width / 2,
          y: plot.top + plot.height / 2,
          "text-anchor": "middle",
          class: "empty",
        },
        "No events in this range",
      ),
    );
  }
  return svg;
}
