// The API's one client: fetch with the session's bearer token, problem+json turned into ApiError.
//
// The session token lives in sessionStorage: it survives a reload of the tab, and is gone when
// the tab is closed, so an injected script cannot find it afterwards (see docs/web-client.md).

const tokenKey = "accord.session";

export const session = {
  get token() { return sessionStorage.getItem(tokenKey); },
  set(token) { sessionStorage.setItem(tokenKey, token); },
  clear() { sessionStorage.removeItem(tokenKey); },
};

/** A refused request: its status and the problem's detail and fields ({field, message}). */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = typeof problem === "object" && problem ? (problem.detail || problem.title) : "";
    super(detail || `The server answered ${status}.`);
    this.status = status;
    this.problem = typeof problem === "object" ? problem : null;
    this.fields = Array.isArray(problem?.errors) ? problem.errors : [];
  }
}

/** Calls the API; `query` values that are arrays repeat the parameter. `anonymous` leaves the
 *  session out (the public operations of mailed links and registration). */
export async function api(method, path, { body, query, headers = {}, anonymous = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(item));
  }
  const request = { method, headers: { Accept: "application/json", ...headers } };
  const token = anonymous ? null : session.token;
  if (token) request.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    request.headers["Content-Type"] = "application/json";
    request.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, request);
  } catch {
    throw new ApiError(0, { detail: "The server cannot be reached. Check the connection and try again." });
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") ?? "";
  const data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    if (response.status === 401 && token) {
      session.clear();
      window.dispatchEvent(new CustomEvent("accord:signed-out"));
    }
    throw new ApiError(response.status, data);
  }
  return data;
}
