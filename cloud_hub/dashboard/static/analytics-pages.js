// Analytics pages: the store ranking, footfall, dwell and queues, heatmaps. Each reads the
// public API only and returns the page's content; errors propagate to app.js, which shows them.

import { ApiError, getBlob, getJson } from "./api.js";
import { heatGrid, heatLegend, lineChart, rankingChart } from "./charts.js";
import { card, choice, controls, empty, errorBox, fmt, fmtChange, h, table } from "./dom.js";
import { option, storeRange } from "./scope.js";
import { bucketLabel, formatInstant, toLocalInput, wallTime } from "./time.js";

const MAX_POINTS = 10000; // the API's largest page: a whole range in one answer

const METRICS = [
  ["footfall_in", "Footfall in"],
  ["footfall_out", "Footfall out"],
  ["visits", "Visits"],
  ["engaged", "Engaged visitors"],
  ["pass_bys", "Pass-bys"],
  ["served", "Served at queues"],
  ["mean_dwell_s", "Mean dwell (s)"],
  ["mean_queue_length", "Mean queue length"],
  ["mean_wait_s", "Mean queue wait (s)"],
  ["mean_occupancy", "Mean occupancy"],
];
const PERIODS = [
  ["day", "Today vs yesterday"],
  ["week", "This week vs last"],
  ["month", "This month vs last"],
];

const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

function tiles(...pairs) {
  return h(
    "div",
    { class: "tiles" },
    pairs.map(([label, value, key]) => h("div", { class: "tile", "data-key": key }, h("span", {}, label), h("strong", {}, value))),
  );
}

function storeNote(scope) {
  return [
    scope.note ? errorBox(scope.note) : null,
    h("p", { class: "muted" }, `Times in the store's time zone (${scope.store.timezone}).`),
  ];
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

// -- overview ----------------------------------------------------------------------------------

export const overview = {
  title: "Store overview and ranking",
  async render({ params, navigate }) {
    const metric = option(params, "metric", METRICS, "footfall_in");
    const period = option(params, "period", PERIODS, "week");
    const at = params.get("at") || "";
    const page = await getJson("/analytics/ranking", { metric, period, at, limit: 1000 });
    const metricName = METRICS.find(([v]) => v === metric)[1];

    const atInput = h("input", { type: "datetime-local", name: "at", value: at ? toLocalInput(at) : "" });
    atInput.addEventListener("change", (e) => e.target.value && navigate({ at: new Date(e.target.value).toISOString() }));
    const bar = controls(
      choice("Metric", METRICS, metric, (v) => navigate({ metric: v }), "metric"),
      choice("Period", PERIODS, period, (v) => navigate({ period: v }), "period"),
      h("label", { class: "control" }, h("span", {}, `Compare up to (${browserZone})`), atInput),
      h("button", { type: "button", class: "quiet", onclick: () => navigate({ at: "" }) }, "Now"),
    );
    const withData = page.items.filter((r) => r.current !== null);
    const rows = page.items.map((r) =>
      h(
        "tr",
        { "data-store": r.store_id },
        h("td", { class: "num" }, r.rank),
        h("td", {}, h("a", { href: `#/footfall?store=${encodeURIComponent(r.store_id)}` }, r.name), h("div", { class: "muted" }, r.store_id)),
        h("td", {}, r.group ?? "—"),
        h("td", {}, r.timezone),
        h("td", {}, `${wallTime(r.current_start)} → ${wallTime(r.current_end)}`),
        h("td", { class: "num current" }, fmt(r.current, 2)),
        h("td", { class: "num" }, fmt(r.previous, 2)),
        h("td", { class: r.change_pct > 0 ? "num up" : r.change_pct < 0 ? "num down" : "num" }, fmtChange(r.change_pct)),
      ),
    );
    return [
      bar,
      tiles(
        ["Stores", fmt(page.total, 0), "stores"],
        ["With data this period", fmt(withData.length, 0), "with-data"],
        ["Total this period", metric.startsWith("mean") ? "—" : fmt(sum(withData.map((r) => r.current)), 0), "total"],
        ["Compared up to", formatInstant(page.at, browserZone), "at"],
      ),
      card(
        `${metricName}: ${PERIODS.find(([v]) => v === period)[1].toLowerCase()}`,
        page.items.length ? rankingChart(page.items, `Stores ranked by ${metricName}`) : empty("This key sees no stores yet."),
      ),
      card(
        "Ranking",
        page.items.length
          ? table(["#", "Store", "Group", "Time zone", "This period (store time)", "This period", "Previous", "Change"], rows, { class: "ranking" })
          : empty("No stores."),
      ),
    ];
  },
};

// -- footfall ----------------------------------------------------------------------------------

export const footfall = {
  title: "Footfall",
  perStore: true,
  async render(ctx) {
    const scope = storeRange(ctx);
    const { store, start, end, bucket } = scope;
    const series = await getJson("/analytics/footfall", { store_id: store.store_id, start, end, bucket, limit: MAX_POINTS });
    const labels = series.items.map((b) => bucketLabel(b.start, bucket));
    const ins = series.items.map((b) => b.footfall_in);
    const outs = series.items.map((b) => b.footfall_out);
    const lines = new Map();
    for (const b of series.items) {
      for (const l of b.lines) {
        const key = `${l.camera_id}/${l.line_id}`;
        const t = lines.get(key) || { camera_id: l.camera_id, line_id: l.line_id, in: 0, out: 0 };
        t.in += l.footfall_in;
        t.out += l.footfall_out;
        lines.set(key, t);
      }
    }
    let busiest = null;
    series.items.forEach((b) => {
      if (!busiest || b.footfall_in > busiest.footfall_in) busiest = b;
    });
    return [
      scope.controls,
      storeNote(scope),
      tiles(
        ["People in", fmt(sum(ins), 0), "in"],
        ["People out", fmt(sum(outs), 0), "out"],
        ["Busiest " + bucket, busiest && busiest.footfall_in ? `${wallTime(busiest.start)} (${fmt(busiest.footfall_in, 0)} in)` : "—", "busiest"],
      ),
      card(
        `Footfall per ${bucket}: ${store.name}`,
        lineChart(labels, [{ name: "in", key: "in", values: ins }, { name: "out", key: "out", values: outs }], `People in and out per ${bucket}`),
      ),
      card(
        "By line",
        lines.size
          ? table(["Camera", "Line", "In", "Out"], [...lines.values()].map((l) => [l.camera_id, l.line_id, fmt(l.in, 0), fmt(l.out, 0)]))
          : empty("No line crossings in this range."),
      ),
    ];
  },
};

// -- dwell and queues --------------------------------------------------------------------------

function zonesOf(items, field) {
  const keys = new Map();
  for (const b of items) for (const z of b[field]) keys.set(`${z.camera_id}/${z.zone_id}`, z);
  return [...keys.keys()].sort();
}

function perZone(items, field, keys, value) {
  return keys.map((key) => ({
    name: key,
    key,
    values: items.map((b) => {
      const z = b[field].find((x) => `${x.camera_id}/${x.zone_id}` === key);
      return z ? value(z) : null;
    }),
  }));
}

export const dwell = {
  title: "Dwell and queues",
  perStore: true,
  async render(ctx) {
    const scope = storeRange(ctx);
    const { store, start, end, bucket } = scope;
    const q = { store_id: store.store_id, start, end, bucket, limit: MAX_POINTS };
    const [visits, queues] = await Promise.all([getJson("/analytics/visits", q), getJson("/analytics/queues", q)]);
    const labels = visits.items.map((b) => bucketLabel(b.start, bucket));
    const total = (b, k) => sum(b.zones.map((z) => z[k]));
    const zoneKeys = zonesOf(visits.items, "zones");
    const queueKeys = zonesOf(queues.items, "queues");

    const zoneRows = zoneKeys.map((key) => {
      const zs = visits.items.flatMap((b) => b.zones.filter((z) => `${z.camera_id}/${z.zone_id}` === key));
      const samples = sum(zs.map((z) => z.dwell_samples));
      // mean over every dwell sample = sum of (bucket mean x its samples) / all samples
      const meanDwell = samples ? sum(zs.map((z) => (z.mean_dwell_s ?? 0) * z.dwell_samples)) / samples : null;
      const maxDwell = Math.max(...zs.map((z) => z.max_dwell_s ?? -Infinity));
      return [key, fmt(sum(zs.map((z) => z.visits)), 0), fmt(sum(zs.map((z) => z.engaged)), 0), fmt(sum(zs.map((z) => z.pass_bys)), 0), fmt(meanDwell, 1), fmt(Number.isFinite(maxDwell) ? maxDwell : null, 1)];
    });
    const queueRows = queueKeys.map((key) => {
      const qs = queues.items.flatMap((b) => b.queues.filter((z) => `${z.camera_id}/${z.zone_id}` === key));
      const maxOf = (k) => {
        const m = Math.max(...qs.map((z) => z[k] ?? -Infinity));
        return Number.isFinite(m) ? m : null;
      };
      return [key, fmt(sum(qs.map((z) => z.served)), 0), fmt(maxOf("max_queue_length"), 0), fmt(maxOf("max_wait_s"), 0)];
    });
    return [
      scope.controls,
      storeNote(scope),
      card(
        `Visits per ${bucket}: ${store.name}`,
        lineChart(
          labels,
          [
            { name: "visits", key: "visits", values: visits.items.map((b) => total(b, "visits")) },
            { name: "engaged", key: "engaged", values: visits.items.map((b) => total(b, "engaged")) },
            { name: "pass-bys", key: "pass_bys", values: visits.items.map((b) => total(b, "pass_bys")) },
          ],
          `Visits, engaged visitors and pass-bys per ${bucket}`,
        ),
      ),
      card(
        "Mean dwell (seconds)",
        zoneKeys.length ? lineChart(labels, perZone(visits.items, "zones", zoneKeys, (z) => z.mean_dwell_s), "Mean dwell per zone, seconds") : empty("No zones reported dwell."),
        zoneKeys.length ? table(["Zone", "Visits", "Engaged", "Pass-bys", "Mean dwell (s)", "Max dwell (s)"], zoneRows) : null,
      ),
      card(
        "Queues",
        queueKeys.length
          ? [
              lineChart(labels, perZone(queues.items, "queues", queueKeys, (z) => z.mean_queue_length), "Mean queue length per queue zone, people"),
              lineChart(labels, perZone(queues.items, "queues", queueKeys, (z) => z.mean_wait_s), "Estimated wait per queue zone, seconds"),
              table(["Queue", "Served", "Longest queue", "Longest wait (s)"], queueRows),
            ]
          : empty("No queue zones reported."),
      ),
    ];
  },
};

// -- heatmap -----------------------------------------------------------------------------------

async function latestHeatmapImage(store) {
  const page = await getJson("/snapshots", { store_id: store.store_id, purpose: "heatmap", limit: 1 });
  if (!page.items.length) return empty("No heatmap image from this store yet.");
  const snap = page.items[0];
  const blob = await getBlob(snap.image_url);
  const url = URL.createObjectURL(blob);
  const img = h("img", { src: url, alt: `Heatmap of camera ${snap.camera_id}`, width: snap.width, height: snap.height, class: "snapshot" });
  img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
  return h(
    "figure",
    { class: "snapshot", "data-seq": snap.seq },
    img,
    h("figcaption", {}, `Camera ${snap.camera_id}, ${formatInstant(snap.taken_at, store.timezone)}; faces blurred: ${snap.faces_blurred}, heads: ${snap.heads_blurred}`),
  );
}

export const heatmap = {
  title: "Heatmap",
  perStore: true,
  async render(ctx) {
    const scope = storeRange(ctx, { withBucket: false });
    const { store, start, end } = scope;
    const [page, image] = await Promise.all([
      getJson("/analytics/heatmap", { store_id: store.store_id, start, end, limit: 100 }),
      latestHeatmapImage(store).catch((err) => {
        if (err instanceof ApiError && err.status === 401) throw err;
        return errorBox(`The heatmap image could not be loaded: ${err.message}`);
      }),
    ]);
    const grids = page.items.map((item) => {
      const max = Math.max(0, ...item.person_seconds);
      const min = Math.min(max, ...item.person_seconds);
      return h(
        "figure",
        { class: "heat" },
        heatGrid(item, `Person-seconds per cell, camera ${item.camera_id}`),
        h("figcaption", {}, `Camera ${item.camera_id}: ${item.grid_w} × ${item.grid_h} cells, ${fmt(item.buckets, 0)} stored heatmaps added, ${fmt(sum(item.person_seconds), 0)} person-seconds in all`),
        heatLegend(min, max),
      );
    });
    return [
      scope.controls,
      storeNote(scope),
      card(`Person-seconds per cell: ${store.name}`, grids.length ? grids : empty("No heatmaps in this range.")),
      card("Latest heatmap image (privacy-gated at the store)", image),
    ];
  },
};
