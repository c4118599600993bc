// What a page shows: which store (only those the key sees) and which dates, read from the
// page's hash parameters, with the controls that change them.

import { choice, controls, dateInput, storeChoice } from "./dom.js";
import { addDays, localMidnight, todayIn } from "./time.js";

export const BUCKETS = [
  ["minute", "Minute"],
  ["hour", "Hour"],
  ["day", "Day"],
  ["week", "Week"],
];

/** The value of hash parameter `name` if it is one of `options` ([value, text] pairs). */
export function option(params, name, options, fallback) {
  const v = params.get(name);
  return options.some(([value]) => value === v) ? v : fallback;
}

/** The store named by the `store` parameter; the first store when it names none of the key's
 * stores (with a note saying so); null for "all stores" where `allowAll`. */
export function pickStore(params, stores, allowAll = false) {
  const id = params.get("store") || "";
  const found = stores.find((s) => s.store_id === id);
  if (found) return { store: found, note: null };
  if (allowAll && !id) return { store: null, note: null };
  const note = id ? `Store ${id} is not one of this key's stores; showing ${stores[0].store_id}.` : null;
  return { store: allowAll ? null : stores[0], note };
}

/**
 * A store and a range of its local dates (`from` to `to`, both included; default the last
 * `days` days up to today in the store's zone), with the API's start and end (local midnights
 * with their UTC offsets) and the controls that change them.
 */
export function storeRange(ctx, { days = 7, withBucket = true } = {}) {
  const { params, stores, navigate } = ctx;
  const { store, note } = pickStore(params, stores);
  const tz = store.timezone;
  const today = todayIn(tz);
  const to = /^\d{4}-\d{2}-\d{2}$/.test(params.get("to") || "") ? params.get("to") : today;
  const from = /^\d{4}-\d{2}-\d{2}$/.test(params.get("from") || "") ? params.get("from") : addDays(to, 1 - days);
  const bucket = option(params, "bucket", BUCKETS, "hour");
  const bar = controls(
    storeChoice(stores, store.store_id, (v) => navigate({ store: v })),
    dateInput("From", from, (v) => navigate({ from: v }), "from"),
    dateInput("To", to, (v) => navigate({ to: v }), "to"),
    withBucket ? choice("Bucket", BUCKETS, bucket, (v) => navigate({ bucket: v }), "bucket") : null,
  );
  return {
    store,
    note,
    from,
    to,
    bucket,
    start: localMidnight(from, tz),
    end: localMidnight(addDays(to, 1), tz),
    controls: bar,
  };
}
