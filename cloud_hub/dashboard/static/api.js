// The hub's public API as the dashboard calls it: every request carries the user's API key in
// the Authorization header. The key lives in sessionStorage (this tab only), never in a URL.

const KEY_SLOT = "retail-cv.api-key";

// Relative to the page (/dashboard/), so the dashboard also works behind a path prefix.
const API_BASE = new URL("../api/v1/", document.baseURI);

/** An answer from the hub other than 2xx (status 0: no answer at all). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_SLOT),
  set: (key) => sessionStorage.setItem(KEY_SLOT, key),
  clear: () => sessionStorage.removeItem(KEY_SLOT),
};

/** The URL of an API path ("/stores" or "/api/v1/stores") with its query parameters (empty
 * values left out). */
export function apiUrl(path, params = {}) {
  const url = new URL(path.replace(/^\/api\/v1\//, "").replace(/^\//, ""), API_BASE);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(name, String(value));
    }
  }
  return url;
}

function detailOf(status, body) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    // FastAPI's 422 list: name the parameter and say what is wrong with it.
    return body.detail
      .map((e) => `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}`)
      .join("; ");
  }
  return `the hub answered ${status}`;
}

async function call(path, { params, method = "GET", accept = "application/json" } = {}) {
  const key = apiKey.get();
  if (!key) throw new ApiError(401, "an API key is required");
  let response;
  try {
    response = await fetch(apiUrl(path, params), {
      method,
      headers: { Authorization: `Bearer ${key}`, Accept: accept },
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    throw new ApiError(0, `the hub did not answer (${err.message})`);
  }
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      // not JSON: the status says enough
    }
    if (response.status === 401) apiKey.clear();
    throw new ApiError(response.status, detailOf(response.status, body));
  }
  return response;
}

/** GET a JSON answer. */
export async function getJson(path, params) {
  return (await call(path, { params })).json();
}

/** POST without a body; the JSON answer. */
export async function postJson(path) {
  return (await call(path, { method: "POST" })).json();
}

/** GET an image as a Blob (shown through an object URL: an <img src> could not send the key). */
export async function getBlob(path) {
  return (await call(path, { accept: "image/*" })).blob();
}

/** Every item of a paged list (limit/offset/next_offset), following the pages. */
export async function getAll(path, params = {}) {
  const items = [];
  let offset = 0;
  for (;;) {
    const page = await getJson(path, { ...params, limit: 1000, offset });
    items.push(...page.items);
    if (page.next_offset === null || page.next_offset === undefined) return items;
    offset = page.next_offset;
  }
}
