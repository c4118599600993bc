// The dashboard's shell: sign-in with an API key, the page router (#/page?param=...), and the
// rendering of a page with its errors. Pages live in analytics-pages.js and
// operations-pages.js; they read the hub's public API only.

import { alerts, fleet, inventory } from "./operations-pages.js";
import { dwell, footfall, heatmap, overview } from "./analytics-pages.js";
import { ApiError, apiKey, getAll } from "./api.js";
import { empty, errorBox, h } from "./dom.js";

const PAGES = { overview, footfall, dwell, heatmap, inventory, alerts, fleet };

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const login = document.getElementById("login");
const loginForm = document.getElementById("login-form");
const loginError = document.getElementById("login-error");
const signOut = document.getElementById("sign-out");

let stores = null; // the key's stores, loaded once per sign-in
let renderSeq = 0; // a newer render makes an older one's late answers void

function route() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [name, query = ""] = raw.split("?");
  return { name: PAGES[name] ? name : "overview", params: new URLSearchParams(query) };
}

/** Go to `name` with the current parameters changed by `patch` ("" removes one). */
function navigate(name, params, patch) {
  const next = new URLSearchParams(params);
  for (const [k, v] of Object.entries(patch)) {
    if (v === "" || v === null || v === undefined) next.delete(k);
    else next.set(k, String(v));
  }
  const query = next.toString();
  location.hash = `#/${name}${query ? `?${query}` : ""}`;
}

function showLogin(message) {
  stores = null;
  view.replaceChildren();
  view.dataset.state = "login";
  nav.hidden = true;
  signOut.hidden = true;
  login.hidden = false;
  loginError.hidden = !message;
  loginError.textContent = message || "";
  document.getElementById("api-key").focus();
}

function fail(err) {
  if (err instanceof ApiError && err.status === 401) {
    showLogin(`The hub refused the key (${err.message}). Paste a valid API key.`);
    return;
  }
  view.replaceChildren(errorBox(err instanceof ApiError ? `The hub answered ${err.status}: ${err.message}` : `Error: ${err.message}`));
  view.dataset.state = "error";
}

async function render() {
  const seq = ++renderSeq;
  const { name, params } = route();
  if (!apiKey.get()) {
    showLogin("");
    return;
  }
  login.hidden = true;
  nav.hidden = false;
  signOut.hidden = false;
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const page = PAGES[name];
  document.title = `${page.title} · Retail CV`;
  view.dataset.page = name;
  view.dataset.state = "loading";
  try {
    if (stores === null) stores = await getAll("/stores");
    if (seq !== renderSeq) return;
    let content;
    if (page.perStore && !stores.length) {
      content = empty("This key sees no stores yet.");
    } else {
      content = await page.render({ params, stores, navigate: (patch) => navigate(name, params, patch), fail });
    }
    if (seq !== renderSeq) return;
    view.replaceChildren(h("div", { class: "page" }, h("h2", { class: "page-title" }, page.title), content));
    view.dataset.state = "ready";
  } catch (err) {
    if (seq !== renderSeq) return;
    fail(err);
  }
}

loginForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("api-key");
  const key = input.value.trim();
  input.value = "";
  if (!key) return;
  apiKey.set(key);
  render();
});

signOut.addEventListener("click", () => {
  apiKey.clear();
  showLogin("Signed out.");
});

window.addEventListener("hashchange", render);
render();
