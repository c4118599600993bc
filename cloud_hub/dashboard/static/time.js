// Dates and times in a store's time zone. The API writes bucket bounds in the store's local
// time already ("2026-10-25T02:00:00+01:00"); instants it gives as UTC (ISO or UNIX seconds)
// are shown here in the store's zone with Intl, whatever zone the browser runs in.

const formatters = new Map();

function partsIn(timeZone, date) {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      timeZoneName: "short",
    });
    formatters.set(timeZone, f);
  }
  return Object.fromEntries(f.formatToParts(date).map((p) => [p.type, p.value]));
}

/** Minutes east of UTC of `timeZone` at the instant `ms` (milliseconds since the epoch). */
export function offsetMinutes(timeZone, ms) {
  const p = partsIn(timeZone, new Date(ms));
  const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((wall - Math.floor(ms / 1000) * 1000) / 60000);
}

const pad = (n) => String(n).padStart(2, "0");

/** "YYYY-MM-DD" plus `n` days. */
export function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d) + n * 86400000).toISOString().slice(0, 10);
}

/** Local midnight of `day` ("YYYY-MM-DD") in `timeZone`, as ISO 8601 with its UTC offset
 * (what the API's start and end expect). */
export function localMidnight(day, timeZone) {
  const [y, m, d] = day.split("-").map(Number);
  const wall = Date.UTC(y, m - 1, d);
  // The offset at the instant itself: guess with the offset at the wall time, then refine.
  let off = offsetMinutes(timeZone, wall);
  off = offsetMinutes(timeZone, wall - off * 60000);
  const sign = off < 0 ? "-" : "+";
  const a = Math.abs(off);
  return `${day}T00:00:00${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** Today's date ("YYYY-MM-DD") in `timeZone`. */
export function todayIn(timeZone) {
  const p = partsIn(timeZone, new Date());
  return `${p.year}-${p.month}-${p.day}`;
}

/** An instant (UNIX seconds, or an ISO string with an offset) as "YYYY-MM-DD HH:MM TZ" in
 * `timeZone`; "—" for none. */
export function formatInstant(value, timeZone) {
  if (value === null || value === undefined) return "—";
  const ms = typeof value === "number" ? value * 1000 : Date.parse(value);
  if (Number.isNaN(ms)) return String(value);
  const p = partsIn(timeZone, new Date(ms));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName}`;
}

/** The local wall time the API wrote ("2026-10-25T02:00:00+01:00" -> "2026-10-25 02:00"). */
export function wallTime(iso) {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

/** A bucket's short label from its local start: the date for day and week buckets, else
 * "MM-DD HH:MM". */
export function bucketLabel(iso, bucket) {
  if (bucket === "day" || bucket === "week") return iso.slice(0, 10);
  return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

/** How long ago `ms` was, in words ("5 min ago"). */
export function ago(ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

/** A browser-local "YYYY-MM-DDTHH:MM" (a datetime-local input's value) for an ISO instant. */
export function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
