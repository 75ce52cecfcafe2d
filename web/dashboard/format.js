// Calendar dates in an IANA time zone, and numbers, times and durations as words (no DOM).

const LOCALE = globalThis.document?.documentElement.lang || undefined;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const wallClocks = new Map();

/** The browser's own time zone, e.g. "Europe/Berlin". */
export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export function isZone(zone) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return typeof zone === "string" && zone !== "";
  } catch {
    return false;
  }
}

/** Every zone the browser knows, sorted, always holding UTC and the given ones. */
export function zoneNames(...always) {
  const known = Intl.supportedValuesOf?.("timeZone") ?? [];
  return [...new Set([...known, "UTC", ...always])].sort();
}

function wallClock(ms, zone) {
  let format = wallClocks.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    wallClocks.set(zone, format);
  }
  const parts = Object.fromEntries(
    format.formatToParts(new Date(ms)).map((p) => [p.type, p.value]),
  );
  const n = (type) => Number(parts[type]);
  return {
    year: n("year"),
    month: n("month"),
    day: n("day"),
    hour: n("hour"),
    minute: n("minute"),
    second: n("second"),
  };
}

/** How far the zone's wall clock is ahead of UTC at this instant, in milliseconds. */
function offsetMs(ms, zone) {
  const w = wallClock(ms, zone);
  return (
    Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(ms / 1000) * 1000
  );
}

function isoDate(year, month, day) {
  const pad = (v, width) => String(v).padStart(width, "0");
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

/** "YYYY-MM-DD" as three numbers, or null when it is not a real calendar date. */
export function parseDate(text) {
  const match = DATE.exec(text ?? "");
  if (!match) return null;
  const [year, month, day] = match.slice(1).map(Number);
  const check = new Date(Date.UTC(year, month - 1, day));
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || year < 1) return null;
  return { year, month, day };
}

/** Today's date on the zone's wall clock. */
export function todayIn(zone, now = Date.now()) {
  const w = wallClock(now, zone);
  return isoDate(w.year, w.month, w.day);
}

export function addDays(text, days) {
  const { year, month, day } = parseDate(text);
  const moved = new Date(Date.UTC(year, month - 1, day + days));
  return isoDate(moved.getUTCFullYear(), moved.getUTCMonth() + 1, moved.getUTCDate());
}

/** The instant the date begins in the zone (a midnight skipped by DST: the first moment after). */
export function startOfDay(text, zone) {
  const { year, month, day } = parseDate(text);
  const wall = Date.UTC(year, month - 1, day);
  let instant = wall - offsetMs(wall, zone);
  instant = wall - offsetMs(instant, zone);
  return new Date(instant);
}

/** The half-open range [from, to) covering the dates `first` to `last`, both included. */
export function rangeOf(first, last, zone) {
  return { from: startOfDay(first, zone), to: startOfDay(addDays(last, 1), zone) };
}

const formats = new Map();
function format(zone, options) {
  const key = JSON.stringify([zone, options]);
  if (!formats.has(key)) {
    formats.set(key, new Intl.DateTimeFormat(LOCALE, { timeZone: zone, ...options }));
  }
  return formats.get(key);
}

const DAY = { month: "short", day: "numeric" };
const DAY_YEAR = { month: "short", day: "numeric", year: "numeric" };
const HOUR = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };

/** A short axis label for a bucket starting at `iso`. */
export function tickLabel(iso, interval, zone) {
  const at = new Date(iso);
  const day = format(zone, DAY).format(at);
  return interval === "HOUR" ? `${day}, ${format(zone, HOUR).format(at)}` : day;
}

/** A full label for a bucket [start, end), for tooltips and the table. */
export function bucketLabel(startIso, endIso, interval, zone) {
  const start = new Date(startIso);
  const day = format(zone, { weekday: "short", ...DAY_YEAR }).format(start);
  if (interval === "HOUR") {
    const hours = format(zone, HOUR);
    return `${day}, ${hours.format(start)}–${hours.format(new Date(endIso))}`;
  }
  if (interval === "WEEK") return `Week of ${format(zone, DAY_YEAR).format(start)}`;
  return day;
}

/** "Oct 30 – Nov 28, 2025" for the dates `first` to `last` (YYYY-MM-DD, both included). */
export function dateSpan(first, last) {
  const asUtc = (text) => {
    const { year, month, day } = parseDate(text);
    return new Date(Date.UTC(year, month - 1, day));
  };
  return format("UTC", DAY_YEAR).formatRange(asUtc(first), asUtc(last));
}

export function count(value, one, many = `${one}s`) {
  return `${new Intl.NumberFormat(LOCALE).format(value)} ${value === 1 ? one : many}`;
}

export function percent(ratio) {
  if (ratio == null) return "–";
  return new Intl.NumberFormat(LOCALE, { style: "percent", maximumFractionDigits: 1 }).format(
    ratio,
  );
}

/** Seconds in the largest unit that keeps the number readable: "42 seconds", "2.5 hours". */
export function duration(seconds) {
  if (seconds == null) return null;
  if (seconds < 1) return "less than a second";
  const [unit, value] =
    seconds < 60
      ? ["second", seconds]
      : seconds < 3600
        ? ["minute", seconds / 60]
        : seconds < 86400
          ? ["hour", seconds / 3600]
          : ["day", seconds / 86400];
  return new Intl.NumberFormat(LOCALE, {
    style: "unit",
    unit,
    unitDisplay: "long",
    maximumFractionDigits: value < 10 ? 1 : 0,
  }).format(value);
}
