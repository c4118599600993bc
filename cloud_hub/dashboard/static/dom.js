// Building DOM without innerHTML: every value from the API goes in as text, never as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("td", {class: "num"}, "12"). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element: svg("circle", {cx: 1, cy: 2, r: 3}). */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** A number for people: thousands grouped, at most `digits` decimals; "—" for none. */
export function fmt(value, digits = 1) {
  if (value === null || value === undefined) return "—";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** A change in percent with its sign ("+12.5 %"); "—" for none. */
export function fmtChange(pct) {
  if (pct === null || pct === undefined) return "—";
  return `${pct > 0 ? "+" : ""}${fmt(pct, 1)} %`;
}

/** A titled card around `content`. */
export function card(title, ...content) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...content);
}

/** A state badge ("open", "stocked", ...), coloured by its class. */
export function badge(text, kind = text) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

/** A table with a header row; `rows` are arrays of cells (nodes or text) or <tr> elements. */
export function table(headers, rows, attrs = {}) {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h(
      "tbody",
      {},
      rows.map((r) => (r instanceof Node ? r : h("tr", {}, r.map((c) => h("td", {}, c))))),
    ),
  );
}

/** A paragraph saying there is nothing to show. */
export function empty(text) {
  return h("p", { class: "empty" }, text);
}

/** A message box for an error the user should read. */
export function errorBox(message) {
  return h("p", { class: "error", role: "alert" }, message);
}

// -- form controls: each calls `onChange(value)` when the user changes it --------------------

/** A labelled <select> of [value, text] options. */
export function choice(label, options, selected, onChange, name = label) {
  const select = h(
    "select",
    { name, onchange: (e) => onChange(e.target.value) },
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
  );
  return h("label", { class: "control" }, h("span", {}, label), select);
}

/** A labelled date input ("YYYY-MM-DD"). */
export function dateInput(label, value, onChange, name = label) {
  const input = h("input", { type: "date", name, value, required: true });
  input.addEventListener("change", (e) => e.target.value && onChange(e.target.value));
  return h("label", { class: "control" }, h("span", {}, label), input);
}

/** The store selector: only the stores the key sees (and "All stores" where a page allows). */
export function storeChoice(stores, selected, onChange, allowAll = false) {
  const options = stores.map((s) => [s.store_id, s.name === s.store_id ? s.name : `${s.name} (${s.store_id})`]);
  if (allowAll) options.unshift(["", "All stores"]);
  return choice("Store", options, selected, onChange, "store");
}

/** A row of controls above a page. */
export function controls(...items) {
  return h("form", { class: "controls", onsubmit: (e) => e.preventDefault() }, ...items);
}
