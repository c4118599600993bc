// Charts drawn as inline SVG: a line chart (one point per bucket), horizontal bars for the
// store ranking, and a heatmap grid with its numbers. No library, no inline styles (colours
// are SVG attributes or CSS classes, which the Content-Security-Policy allows).

import { fmt, svg } from "./dom.js";

const W = 880;

/** A round axis maximum at or above `v` (1, 2, 2.5 or 5 times a power of ten). */
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}

/**
 * A line chart over buckets.
 * @param {string[]} labels one per bucket (x axis)
 * @param {{name: string, key: string, values: (number|null)[]}[]} series null = no data
 * @param {string} title what the chart shows, with its unit
 */
export function lineChart(labels, series, title) {
  const H = 260;
  const m = { l: 52, r: 14, t: 14, b: 40 };
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const top = niceMax(Math.max(0, ...all));
  const n = labels.length;
  const plotW = W - m.l - m.r;
  const x = (i) => m.l + (n <= 1 ? plotW / 2 : (i * plotW) / (n - 1));
  const y = (v) => H - m.b - (v / top) * (H - m.t - m.b);

  const root = svg("svg", {
    class: "chart line-chart",
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": title,
    "data-buckets": n,
  });
  root.append(svg("title", {}, title));
  for (let k = 0; k <= 4; k += 1) {
    const v = (top * k) / 4;
    root.append(
      svg("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }),
      svg("text", { class: "tick", x: m.l - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v, 2)),
    );
  }
  const step = Math.max(1, Math.ceil(n / 8));
  // the end labels stay inside the frame
  const anchor = (i) => (n > 1 && i === 0 ? "start" : n > 1 && i === n - 1 ? "end" : "middle");
  for (let i = 0; i < n; i += step) {
    root.append(
      svg("line", { class: "axis", x1: x(i), x2: x(i), y1: H - m.b, y2: H - m.b + 4 }),
      svg("text", { class: "tick", x: x(i), y: H - m.b + 18, "text-anchor": anchor(i) }, labels[i]),
    );
  }
  series.forEach((s, si) => {
    const g = svg("g", { class: `series series-${si}`, "data-series": s.key });
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    g.append(svg("path", { class: "line", d }));
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      g.append(
        svg(
          "circle",
          { class: "point", cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: n > 120 ? 1.5 : 3, "data-index": i, "data-value": v },
          svg("title", {}, `${labels[i]} · ${s.name}: ${fmt(v, 2)}`),
        ),
      );
    });
    root.append(g);
  });
  const legend = svg("g", { class: "legend" });
  series.forEach((s, si) => {
    const lx = m.l + si * 170;
    legend.append(
      svg("rect", { class: `swatch series-${si}`, x: lx, y: H - 12, width: 12, height: 8 }),
      svg("text", { class: "tick", x: lx + 16, y: H - 4 }, s.name),
    );
  });
  root.append(legend);
  return root;
}

/**
 * Stores ranked: this period's bar over the previous period's, highest first.
 * @param {{store_id: string, name: string, current: number|null, previous: number|null}[]} items
 */
export function rankingChart(items, title) {
  const row = 34;
  const m = { l: 200, r: 90, t: 8 };
  const H = m.t + row * items.length + 24;
  const top = niceMax(Math.max(0, ...items.flatMap((r) => [r.current ?? 0, r.previous ?? 0])));
  const bar = (v) => ((v ?? 0) / top) * (W - m.l - m.r);
  const root = svg("svg", { class: "chart ranking-chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  root.append(svg("title", {}, title));
  items.forEach((r, i) => {
    const y0 = m.t + i * row;
    root.append(
      svg(
        "g",
        { class: "bar-row", "data-store": r.store_id, "data-current": r.current ?? "" },
        svg("text", { class: "label", x: m.l - 8, y: y0 + 17, "text-anchor": "end" }, `${r.rank}. ${r.name}`),
        svg("rect", { class: "bar current", x: m.l, y: y0 + 3, width: bar(r.current), height: 14 }),
        svg("rect", { class: "bar previous", x: m.l, y: y0 + 19, width: bar(r.previous), height: 7 }),
        svg("text", { class: "value", x: m.l + bar(r.current) + 6, y: y0 + 15 }, fmt(r.current, 2)),
      ),
    );
  });
  const ly = H - 10;
  root.append(
    svg("rect", { class: "bar current", x: m.l, y: ly - 8, width: 12, height: 8 }),
    svg("text", { class: "tick", x: m.l + 16, y: ly }, "this period"),
    svg("rect", { class: "bar previous", x: m.l + 110, y: ly - 8, width: 12, height: 8 }),
    svg("text", { class: "tick", x: m.l + 126, y: ly }, "previous period"),
  );
  return root;
}

// OrRd colour stops: pale (few person-seconds) to dark red (many).
const STOPS = [
  [255, 247, 236],
  [253, 212, 158],
  [252, 141, 89],
  [215, 48, 31],
  [127, 0, 0],
];

/** The colour of `t` in [0, 1] on the heat scale, and whether text on it should be light. */
export function heatColour(t) {
  const u = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(u));
  const f = u - i;
  const c = STOPS[i].map((a, k) => Math.round(a + (STOPS[i + 1][k] - a) * f));
  const hex = `#${c.map((v) => v.toString(16).padStart(2, "0")).join("")}`;
  return { fill: hex, light: t > 0.55 };
}

/**
 * One camera's heatmap: a grid_w x grid_h grid of person-seconds (row-major, row 0 at the
 * top), each cell coloured on the heat scale from the grid's least to its most visited cell,
 * and labelled with its number when cells are big enough to read.
 */
export function heatGrid(item, title) {
  const { grid_w: gw, grid_h: gh, person_seconds: cells } = item;
  const cell = Math.max(8, Math.min(72, Math.floor(720 / Math.max(gw, gh))));
  const max = Math.max(0, ...cells);
  const min = Math.min(max, ...cells);
  const labelled = cell >= 36;
  const root = svg("svg", {
    class: "chart heat-grid",
    viewBox: `0 0 ${gw * cell} ${gh * cell}`,
    width: gw * cell,
    role: "img",
    "aria-label": title,
    "data-camera": item.camera_id,
  });
  root.append(svg("title", {}, title));
  cells.forEach((v, i) => {
    const cx = (i % gw) * cell;
    const cy = Math.floor(i / gw) * cell;
    const { fill, light } = heatColour(max > min ? (v - min) / (max - min) : 0);
    const g = svg("g", { class: "cell", "data-index": i, "data-value": v });
    g.append(
      svg("rect", { x: cx, y: cy, width: cell, height: cell, fill }),
      svg("title", {}, `row ${Math.floor(i / gw)}, column ${i % gw}: ${fmt(v, 1)} person-seconds`),
    );
    if (labelled) {
      g.append(
        svg(
          "text",
          { class: light ? "cell-label light" : "cell-label", x: cx + cell / 2, y: cy + cell / 2 + 4, "text-anchor": "middle" },
          fmt(v, v >= 100 ? 0 : 1),
        ),
      );
    }
    root.append(g);
  });
  return root;
}

/** The heat scale from `min` to `max` person-seconds, as a small SVG bar. */
export function heatLegend(min, max) {
  const root = svg("svg", { class: "heat-legend", viewBox: "0 0 260 34", width: 260, role: "img", "aria-label": "colour scale" });
  for (let k = 0; k < 20; k += 1) {
    root.append(svg("rect", { x: k * 12, y: 0, width: 12, height: 12, fill: heatColour(k / 19).fill }));
  }
  root.append(
    svg("text", { class: "tick", x: 0, y: 28 }, `${fmt(min, 0)} s`),
    svg("text", { class: "tick", x: 240, y: 28, "text-anchor": "end" }, `${fmt(max, 0)} s`),
  );
  return root;
}
