// Accord's web client: a hash router over views that use only the public API.
import { api, session } from "./api.js";
import { h, mount, field, formError, onSubmit, announce, displayName } from "./dom.js";
import { directoryView, profileView } from "./views/directory.js";
import { partnershipsView, partnershipView } from "./views/partnerships.js";
import { roomsView, roomView } from "./views/rooms.js";
import { adminView } from "./views/admin.js";
import { registerView, forgotView, resetView, verifyView, acceptInvitationView, roomInvitationsView, membersView } from "./views/account.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

/** The signed-in caller (GET /v1/me), or null. */
export const state = { me: null };

const token = "([A-Za-z0-9_-]{20,200})";

/** Pages for visitors without a session: registering, and the links the server mails. */
const publicRoutes = [
  [/^\/register$/, registerView],
  [/^\/forgot-password$/, forgotView],
  [new RegExp(`^/reset-password/${token}$`), resetView],
  [new RegExp(`^/verify-email/${token}$`), verifyView],
  [new RegExp(`^/invitations/${token}$`), acceptInvitationView],
];

const routes = [
  [/^\/directory$/, directoryView],
  [/^\/members$/, membersView],
  [/^\/rooms\/invitations$/, roomInvitationsView],
  [/^\/institutions\/([0-9a-f-]{36})$/, profileView],
  [/^\/partnerships$/, partnershipsView],
  [/^\/partnerships\/([0-9a-f-]{36})$/, partnershipView],
  [/^\/rooms$/, roomsView],
  [/^\/rooms\/([0-9a-f-]{36})$/, roomView],
  [/^\/admin$/, adminView],
];

/** Navigates to a route of the client, e.g. `/partnerships/…`. */
export function go(path) { location.hash = `#${path}`; }

let cleanup = null;

async function render() {
  cleanup?.();
  cleanup = null;
  const [path, queryText] = (location.hash.startsWith("#/") ? location.hash.slice(1) : "/").split("?");
  const query = new URLSearchParams(queryText ?? "");
  const visitorPage = publicRoutes.find(([pattern]) => pattern.test(path));
  if (visitorPage) {
    // A mailed link is for whoever opens it: no session needed (the chrome shows one if there is).
    if (session.token && !state.me) state.me = await api("GET", "/v1/me").catch(() => null);
    renderChrome();
    return show(visitorPage[1], visitorPage[0].exec(path), query);
  }
  if (!session.token) {
    state.me = null;
    renderChrome();
    return signInView();
  }
  if (!state.me) {
    try {
      state.me = await api("GET", "/v1/me");
    } catch (error) {
      if (!session.token) return; // the signed-out event renders the sign-in page
      mount(main, h("h1", {}, "Accord cannot be reached"), h("p", { class: "error", role: "alert" }, error.message),
        h("p", { class: "actions" }, h("button", { type: "button", onclick: render }, "Try again"),
          h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out")));
      return;
    }
  }
  renderChrome();
  const isAdmin = state.me.roles.includes("network_admin");
  if (path === "/" || path === "") return go(isAdmin ? "/admin" : "/directory");
  for (const [pattern, view] of routes) {
    const match = pattern.exec(path);
    if (match) return show(view, match, query);
  }
  mount(main, h("h1", {}, "Not found"), h("p", {}, "There is no such page. ", h("a", { href: "#/" }, "Start again")));
}

/** Renders a view into a place of its own: one that a later navigation replaced while it was
 *  loading stays detached, and its cleanup runs at once. */
async function show(view, match, query) {
  const place = h("div", { class: "view" }, h("p", { class: "muted" }, "Loading…"));
  mount(main, place);
  let done = null;
  try {
    done = (await view(place, { params: match.slice(1), query, me: state.me })) ?? null;
  } catch (error) {
    mount(place, h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, error.message));
  }
  if (!place.isConnected) return done?.();
  cleanup = done;
  main.focus({ preventScroll: true });
}

function renderChrome() {
  const me = state.me;
  if (!me) {
    mount(nav);
    mount(who);
    return;
  }
  const current = location.hash.split("?")[0];
  const link = (href, text) => h("a", { href, "aria-current": current.startsWith(href) ? "page" : false }, text);
  const isAdmin = me.roles.includes("network_admin");
  mount(nav, isAdmin
    ? [link("#/admin", "Network")]
    : [link("#/directory", "Directory"), link("#/partnerships", "Partnerships"), link("#/rooms", "Rooms"),
        me.user.role === "admin" ? link("#/members", "Members") : null]);
  const place = isAdmin ? "Network administrator" : `${displayName(me.institution?.names)} · ${me.user.role}`;
  mount(who,
    h("span", { class: "who-name", "data-testid": "who" }, me.user.name), " ",
    h("span", { class: "muted" }, place), " ",
    h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
}

async function signOut() {
  try { await api("DELETE", "/v1/sessions/current"); } catch { /* the session may be gone already */ }
  session.clear();
  state.me = null;
  announce("Signed out.");
  home();
}

/** Shows the start page, without a second render from the address change. */
export function home() {
  history.replaceState(null, "", "#/");
  render();
}

function signInView() {
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const totp = h("input", { name: "totp", inputmode: "numeric", autocomplete: "one-time-code" });
  const second = field("Authenticator code (network administrators with a second factor)", totp, { pointer: "/totp" });
  second.hidden = true;
  const form = h("form", { class: "card narrow", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in to Accord"),
    formError(),
    field("E-mail", email, { pointer: "/email" }),
    field("Password", password, { pointer: "/password" }),
    second,
    h("button", { type: "submit" }, "Sign in"),
    h("p", {}, h("a", { href: "#/forgot-password" }, "Forgot your password?")),
    h("p", {}, "New to the network? ", h("a", { href: "#/register" }, "Register your institution")));
  onSubmit(form, async (data) => {
    const body = { email: data.get("email"), password: data.get("password") };
    if (data.get("totp")) body.totp = data.get("totp");
    try {
      const grant = await api("POST", "/v1/sessions", { body });
      session.set(grant.token);
    } catch (error) {
      if (error.fields.some((f) => f.field === "/totp")) second.hidden = false;
      throw error;
    }
    state.me = null;
    announce("Signed in.");
    render();
  });
  mount(main, form);
  email.focus();
}

// Only `#/…` addresses are pages; another fragment (the skip link's) changes nothing.
window.addEventListener("hashchange", () => { if (location.hash === "" || location.hash.startsWith("#/")) render(); });
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("accord:signed-out", () => { state.me = null; render(); });
window.addEventListener("accord:signed-in", () => { state.me = null; home(); });
render();
