// Operations pages: shelf inventory, alerts (with Acknowledge) and fleet health.

import { ApiError, getAll, getBlob, getJson, postJson } from "./api.js";
import { badge, card, choice, controls, empty, errorBox, fmt, h, storeChoice, table } from "./dom.js";
import { option, pickStore } from "./scope.js";
import { ago, formatInstant } from "./time.js";

const ALERTS_PER_PAGE = 100;
const SILENT_AFTER_S = 15 * 60; // a device quiet this long is flagged on the fleet page

function zoneOf(stores, storeId) {
  const s = stores.find((x) => x.store_id === storeId);
  return s ? s.timezone : "UTC";
}

function scopeNote(note) {
  return note ? errorBox(note) : null;
}

// -- inventory ---------------------------------------------------------------------------------

const SLOT_STATES = ["stocked", "low", "empty", "unknown"];

export const inventory = {
  title: "Inventory",
  async render({ params, stores, navigate }) {
    const { store, note } = pickStore(params, stores, true);
    const items = await getAll("/inventory/status", { store_id: store ? store.store_id : "" });
    const counts = Object.fromEntries(SLOT_STATES.map((s) => [s, items.filter((i) => i.state === s).length]));
    const rows = items.map((i) => {
      const tz = zoneOf(stores, i.store_id);
      return h(
        "tr",
        { "data-slot": `${i.store_id}/${i.camera_id}/${i.shelf_id}/${i.slot_id}`, "data-state": i.state },
        h("td", {}, i.store_id),
        h("td", {}, i.camera_id),
        h("td", {}, i.shelf_id),
        h("td", {}, i.slot_id),
        h("td", {}, badge(i.state)),
        h("td", {}, i.product ?? "—"),
        h("td", {}, i.empty_since ? `${formatInstant(i.empty_since, tz)} (${ago(Date.parse(i.empty_since))})` : "—"),
        h("td", {}, formatInstant(i.updated_at, tz)),
      );
    });
    return [
      controls(storeChoice(stores, store ? store.store_id : "", (v) => navigate({ store: v }), true)),
      scopeNote(note),
      h(
        "div",
        { class: "tiles" },
        SLOT_STATES.map((s) => h("div", { class: `tile tile-${s}`, "data-key": s }, h("span", {}, `${s} slots`), h("strong", {}, fmt(counts[s], 0)))),
      ),
      card(
        "Shelf slots (times in each store's zone)",
        items.length
          ? table(["Store", "Camera", "Shelf", "Slot", "State", "Product", "Empty since", "Updated"], rows, { class: "inventory" })
          : empty("No shelf slots reported yet: shelf monitoring fills this list."),
      ),
    ];
  },
};

// -- alerts ------------------------------------------------------------------------------------

const ALERT_STATES = [
  ["", "Any state"],
  ["open", "Open"],
  ["acknowledged", "Acknowledged"],
  ["resolved", "Resolved"],
];

function alertRow(alert, stores, onAck, onSnapshot) {
  const tz = zoneOf(stores, alert.store_id);
  const who = [];
  if (alert.acknowledged_at) who.push(`acknowledged by ${alert.acknowledged_by ?? "?"}, ${formatInstant(alert.acknowledged_at, tz)}`);
  if (alert.resolved_at) who.push(`resolved by ${alert.resolved_by ?? "?"}, ${formatInstant(alert.resolved_at, tz)}`);
  if (alert.cleared_at && !alert.resolved_at) who.push(`condition ended ${formatInstant(alert.cleared_at, tz)}`);
  const value =
    alert.value !== null && alert.value !== undefined
      ? `${fmt(alert.value, 2)}${alert.op && alert.threshold !== null ? ` (${alert.op} ${fmt(alert.threshold, 2)})` : ""}`
      : "—";
  const actions = h("td", { class: "actions" });
  if (alert.state === "open") {
    actions.append(h("button", { type: "button", class: "ack", "data-alert": alert.id, onclick: (e) => onAck(alert, e.target) }, "Acknowledge"));
  }
  if (alert.snapshot_url) {
    actions.append(h("button", { type: "button", class: "quiet", onclick: (e) => onSnapshot(alert, e.target) }, "Snapshot"));
  }
  return h(
    "tr",
    { "data-alert": alert.id, "data-state": alert.state },
    h("td", {}, formatInstant(alert.raised_at, tz)),
    h("td", {}, alert.store_id, alert.camera_id ? h("div", { class: "muted" }, alert.camera_id) : null),
    h("td", {}, alert.kind.replaceAll("_", " "), h("div", { class: "muted" }, alert.rule_id)),
    h("td", {}, alert.message),
    h("td", { class: "num" }, value),
    h("td", {}, badge(alert.state), who.length ? h("div", { class: "muted" }, who.join("; ")) : null),
    actions,
  );
}

export const alerts = {
  title: "Alerts",
  async render({ params, stores, navigate, fail }) {
    const { store, note } = pickStore(params, stores, true);
    const state = option(params, "state", ALERT_STATES, "");
    const offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
    const page = await getJson("/alerts", { store_id: store ? store.store_id : "", state, limit: ALERTS_PER_PAGE, offset });
    const message = h("div", { class: "action-result", role: "status" });

    const onAck = async (alert, button) => {
      button.disabled = true;
      message.replaceChildren();
      try {
        const done = await postJson(`/alerts/${alert.id}/ack`);
        button.closest("tr").replaceWith(alertRow(done, stores, onAck, onSnapshot));
        message.replaceChildren(h("p", { class: "ok" }, `Alert ${done.id} acknowledged.`));
      } catch (err) {
        button.disabled = false;
        if (err instanceof ApiError && err.status === 401) return fail(err);
        message.replaceChildren(errorBox(`Alert ${alert.id} could not be acknowledged: ${err.message}`));
      }
    };
    const onSnapshot = async (alert, button) => {
      button.disabled = true;
      try {
        const url = URL.createObjectURL(await getBlob(alert.snapshot_url));
        const img = h("img", { src: url, alt: `Snapshot of alert ${alert.id}`, class: "snapshot" });
        img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
        const row = button.closest("tr");
        row.after(h("tr", { class: "snapshot-row" }, h("td", { colspan: 7 }, img)));
      } catch (err) {
        button.disabled = false;
        if (err instanceof ApiError && err.status === 401) return fail(err);
        message.replaceChildren(errorBox(`The snapshot could not be loaded: ${err.message}`));
      }
    };

    const rows = page.items.map((a) => alertRow(a, stores, onAck, onSnapshot));
    const pager = h(
      "div",
      { class: "pager" },
      h("span", { class: "muted" }, page.total ? `Alerts ${offset + 1}–${offset + page.items.length} of ${page.total}, newest first` : ""),
      offset > 0 ? h("button", { type: "button", class: "quiet", onclick: () => navigate({ offset: Math.max(0, offset - ALERTS_PER_PAGE) || "" }) }, "Newer") : null,
      page.next_offset !== null ? h("button", { type: "button", class: "quiet", onclick: () => navigate({ offset: page.next_offset }) }, "Older") : null,
    );
    return [
      controls(
        storeChoice(stores, store ? store.store_id : "", (v) => navigate({ store: v, offset: "" }), true),
        choice("State", ALERT_STATES, state, (v) => navigate({ state: v, offset: "" }), "state"),
      ),
      scopeNote(note),
      message,
      card(
        "Alerts (times in each store's zone)",
        rows.length ? [table(["Raised", "Store", "Kind / rule", "Message", "Value", "State", ""], rows, { class: "alerts" }), pager] : empty("No alerts match."),
      ),
    ];
  },
};

// -- fleet -------------------------------------------------------------------------------------

function health(device, offline) {
  if (device.revoked_at) return ["revoked", "revoked"];
  if (offline.has(device.device_id)) return ["offline", "offline"];
  if (device.last_seen === null || device.last_seen === undefined) return ["never seen", "unknown"];
  const ms = typeof device.last_seen === "number" ? device.last_seen * 1000 : Date.parse(device.last_seen);
  if ((Date.now() - ms) / 1000 > SILENT_AFTER_S) return ["silent", "low"];
  return ["reporting", "stocked"];
}

function modelLabel(name, version) {
  return name ? `${name} ${version}` : "config's model";
}

// The model a device runs, and the one the hub wants when they differ (a rollout under way).
function modelCell(d) {
  const running = d.model_name === null || d.model_name === undefined ? null : modelLabel(d.model_name, d.model_version);
  // A desired model of null means "the config's own", which the hub cannot name: no arrow.
  const desired = d.desired_model_name ? modelLabel(d.desired_model_name, d.desired_model_version) : null;
  const wanted = desired !== null && running !== desired;
  return h(
    "td",
    { class: "model", "data-model": running || "" },
    running || h("span", { class: "muted" }, "not reported"),
    wanted ? h("div", { class: "muted" }, `→ ${desired}${d.twin_step ? ` (${d.twin_step})` : ""}`) : null,
  );
}

// The store layout version a device runs (hub config rollouts), and the one wanted if another.
function layoutCell(d) {
  const running = d.config_version === null || d.config_version === undefined ? "file's" : `v${d.config_version}`;
  const wanted = d.desired_config_version !== null && d.desired_config_version !== undefined && d.desired_config_version !== d.config_version;
  return h(
    "td",
    { class: "layout", "data-layout": d.config_version ?? "" },
    running,
    wanted ? h("div", { class: "muted" }, `→ v${d.desired_config_version}${d.config_step ? ` (${d.config_step})` : ""}`) : null,
  );
}

export const fleet = {
  title: "Fleet health",
  async render({ params, stores, navigate }) {
    const { store, note } = pickStore(params, stores, true);
    let devices;
    try {
      devices = await getAll("/devices", { store_id: store ? store.store_id : "" });
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) {
        return card("Fleet health", h("p", { class: "not-available" }, "Fleet health is not available on this hub: GET /api/v1/devices did not answer."));
      }
      throw err;
    }
    if (store) devices = devices.filter((d) => d.store_id === store.store_id);
    const offlineAlerts = await getAll("/alerts", { kind: "device_offline", state: "open", store_id: store ? store.store_id : "" });
    const offline = new Set(offlineAlerts.map((a) => a.device_id));
    const rows = devices.map((d) => {
      const tz = zoneOf(stores, d.store_id);
      const [word, cls] = health(d, offline);
      const seen = d.last_seen === null || d.last_seen === undefined ? null : typeof d.last_seen === "number" ? d.last_seen * 1000 : Date.parse(d.last_seen);
      return h(
        "tr",
        { "data-device": d.device_id },
        h("td", {}, d.device_id),
        h("td", {}, d.store_id),
        h("td", {}, badge(word, cls)),
        h("td", {}, formatInstant(d.last_seen, tz), seen ? h("div", { class: "muted" }, ago(seen)) : null),
        h("td", {}, d.enrolled_at ? formatInstant(d.enrolled_at, tz) : "not enrolled"),
        modelCell(d),
        layoutCell(d),
        h("td", { class: "num" }, fmt(d.max_seq, 0)),
        h("td", { class: "num" }, fmt(d.records_received, 0)),
        h("td", { class: d.dead_lettered ? "num warn" : "num" }, fmt(d.dead_lettered, 0)),
        h("td", { class: d.dropped_at_edge ? "num warn" : "num" }, fmt(d.dropped_at_edge, 0)),
      );
    });
    const total = (k) => devices.reduce((a, d) => a + (d[k] || 0), 0);
    const models = new Set(devices.filter((d) => d.model_name).map((d) => modelLabel(d.model_name, d.model_version)));
    return [
      controls(storeChoice(stores, store ? store.store_id : "", (v) => navigate({ store: v }), true)),
      scopeNote(note),
      h(
        "div",
        { class: "tiles" },
        [
          ["Devices", devices.length, "devices"],
          ["Offline (open alert)", devices.filter((d) => offline.has(d.device_id)).length, "offline"],
          ["Model versions reported", models.size, "models"],
          ["Records received", total("records_received"), "records"],
          ["Dead-lettered", total("dead_lettered"), "dead"],
          ["Dropped at the edge", total("dropped_at_edge"), "dropped"],
        ].map(([label, v, key]) => h("div", { class: "tile", "data-key": key }, h("span", {}, label), h("strong", {}, fmt(v, 0)))),
      ),
      card(
        `Devices (times in each store's zone; "silent" after ${SILENT_AFTER_S / 60} min without a batch)`,
        rows.length
          ? table(["Device", "Store", "Health", "Last seen", "Enrolled", "Model", "Layout", "Max seq", "Records", "Dead-lettered", "Dropped at edge"], rows, { class: "fleet" })
          : empty("No devices."),
      ),
    ];
  },
};
