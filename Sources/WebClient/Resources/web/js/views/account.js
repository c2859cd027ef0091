// Pages without a session — registering an institution, forgotten passwords, the mailed links
// (verify an address, choose a password, accept an invitation) — and, for institution admins,
// members and invitations; for everyone, invitations to rooms.
import { api, session } from "../api.js";
import { h, mount, field, formError, onSubmit, announce, humanize, formatDateTime } from "../dom.js";
import { go, home } from "../app.js";

const types = ["university", "university_of_applied_sciences", "college", "research_institute", "other"];
const roles = ["faculty", "staff", "admin"];

function page(title, ...children) {
  return h("section", { class: "card narrow", "aria-labelledby": "page-title" }, h("h1", { id: "page-title" }, title), children);
}

/** The end of a visitor's flow: what happened, with the heading focused so that it is read out.
 *  A mailed token leaves the address (and the history) once it is used. */
function done(place, title, ...text) {
  if (/^#\/(reset-password|verify-email|invitations)\//.test(location.hash)) history.replaceState(null, "", "#/");
  // The address may be `#/` already, where a plain link would change nothing.
  const signIn = h("a", { href: "#/", onclick: (event) => { event.preventDefault(); home(); } }, "Sign in");
  mount(place, page(title, h("p", {}, text), h("p", {}, signIn)));
  const heading = place.querySelector("h1");
  heading.tabIndex = -1;
  heading.focus();
}

export function registerView(place) {
  const input = (name, props = {}) => h("input", { name, required: true, ...props });
  const type = h("select", { name: "type" }, types.map((t) => h("option", { value: t }, humanize(t))));
  const form = h("form", {},
    formError(),
    h("fieldset", {}, h("legend", {}, "Institution"),
      field("Official name", input("name", { maxlength: 300 }), { pointer: "/institution/names/0/value" }),
      field("Language of the name (ISO 639-1, e.g. en)", input("lang", { maxlength: 2, value: "en" }), { pointer: "/institution/names/0/lang" }),
      field("Internet domain (SCHAC code)", input("schac", { placeholder: "ulb.be", maxlength: 253 }), { pointer: "/institution/schac" }),
      field("Country (ISO 3166 code, e.g. BE)", input("country", { maxlength: 2 }), { pointer: "/institution/country" }),
      field("City", h("input", { name: "city", maxlength: 200 }), { pointer: "/institution/city" }),
      field("Type", type, { pointer: "/institution/type" })),
    h("fieldset", {}, h("legend", {}, "You, its first administrator"),
      field("Your name", input("adminName", { maxlength: 200, autocomplete: "name" }), { pointer: "/admin/name" }),
      field("E-mail at the institution's domain", input("email", { type: "email", autocomplete: "email" }), { pointer: "/admin/email" }),
      field("Password", input("password", { type: "password", autocomplete: "new-password", minlength: 10 }), { pointer: "/admin/password", hint: "At least 10 characters; not a common password." })),
    h("button", { type: "submit" }, "Register"));
  onSubmit(form, async (data) => {
    const city = String(data.get("city")).trim();
    await api("POST", "/v1/registrations", {
      anonymous: true,
      body: {
        institution: {
          names: [{ lang: String(data.get("lang")).trim().toLowerCase(), value: data.get("name") }],
          schac: String(data.get("schac")).trim().toLowerCase(), country: String(data.get("country")).trim().toUpperCase(),
          ...(city ? { city } : {}), type: data.get("type"),
        },
        admin: { name: data.get("adminName"), email: data.get("email"), password: data.get("password") },
      },
    });
    done(place, "Registration received", `We sent a link to ${data.get("email")}: open it to confirm your address. A network administrator then reviews the registration, and you hear from us by mail.`);
  });
  mount(place, page("Register your institution", h("p", {}, "Join the network: your institution's profile is reviewed by its administrators."), form));
}

export function forgotView(place) {
  const form = h("form", {}, formError(),
    field("E-mail", h("input", { name: "email", type: "email", required: true, autocomplete: "username" }), { pointer: "/email" }),
    h("button", { type: "submit" }, "Send me a link"));
  onSubmit(form, async (data) => {
    await api("POST", "/v1/password-resets", { body: { email: data.get("email") }, anonymous: true });
    done(place, "Check your mail", `If ${data.get("email")} has an account, a link to choose a new password is on its way. It works for an hour.`);
  });
  mount(place, page("Forgotten password", form));
}

export function resetView(place, { params: [token] }) {
  const form = h("form", {}, formError(),
    field("New password", h("input", { name: "password", type: "password", required: true, minlength: 10, autocomplete: "new-password" }),
      { pointer: "/password", hint: "At least 10 characters; not a common password." }),
    h("button", { type: "submit" }, "Set the password"));
  onSubmit(form, async (data) => {
    await api("POST", `/v1/password-resets/${encodeURIComponent(token)}`, { body: { password: data.get("password") }, anonymous: true });
    done(place, "Password changed", "Your new password is set, and every session of your account has ended. Sign in with it.");
  });
  mount(place, page("Choose a new password", form));
}

export async function verifyView(place, { params: [token] }) {
  try {
    const result = await api("POST", `/v1/email-verifications/${encodeURIComponent(token)}`, { anonymous: true });
    done(place, "Address confirmed", `${result.email} is confirmed. A network administrator reviews your institution's registration; you hear from us by mail.`);
  } catch (error) {
    mount(place, page("This link does not work", h("p", { class: "error", role: "alert" }, error.message)));
  }
}

export function acceptInvitationView(place, { params: [token] }) {
  const form = h("form", {}, formError(),
    field("Your name", h("input", { name: "name", required: true, maxlength: 200, autocomplete: "name" }), { pointer: "/name" }),
    field("Choose a password", h("input", { name: "password", type: "password", required: true, minlength: 10, autocomplete: "new-password" }),
      { pointer: "/password", hint: "At least 10 characters; not a common password." }),
    h("button", { type: "submit" }, "Join"));
  onSubmit(form, async (data) => {
    const grant = await api("POST", `/v1/invitations/${encodeURIComponent(token)}/accept`, {
      body: { name: data.get("name"), password: data.get("password") }, anonymous: true,
    });
    // The tab's earlier session (someone else's, perhaps) is signed out, not just forgotten.
    if (session.token) await api("DELETE", "/v1/sessions/current").catch(() => {});
    session.set(grant.token);
    announce("Welcome to Accord.");
    window.dispatchEvent(new CustomEvent("accord:signed-in"));
  });
  mount(place, page("Join your colleagues on Accord", h("p", {}, "You were invited to your institution's account."), form));
}

export async function roomInvitationsView(place) {
  const list = await api("GET", "/v1/room-invitations");
  mount(place,
    h("p", {}, h("a", { href: "#/rooms" }, "← Rooms")),
    h("h1", {}, "Invitations to rooms"),
    list.items.length
      ? h("ul", { class: "cards", "data-testid": "room-invitations" }, list.items.map((invitation) => {
          const form = h("form", { class: "inline" }, formError(), h("button", { type: "submit" }, "Join"));
          onSubmit(form, async () => {
            const room = await api("POST", `/v1/room-invitations/${invitation.id}/accept`);
            go(`/rooms/${room.id}`);
          });
          return h("li", { class: "card" }, h("h2", {}, invitation.roomTitle), h("p", { class: "muted" }, `Until ${formatDateTime(invitation.expiresAt)}`), form);
        }))
      : h("p", { class: "muted" }, "No open invitation."));
}

export async function membersView(place, { me }) {
  if (me.user.role !== "admin" || !me.institution) {
    mount(place, h("h1", {}, "Not found"), h("p", {}, "Only your institution's administrators manage its members."));
    return;
  }
  const id = me.institution.id;
  const [members, invitations] = await Promise.all([
    api("GET", `/v1/institutions/${id}/members`),
    api("GET", `/v1/institutions/${id}/invitations`),
  ]);
  const refresh = () => membersView(place, { me });
  const role = h("select", { name: "role" }, roles.map((r) => h("option", { value: r }, humanize(r))));
  const invite = h("form", { class: "card", "aria-labelledby": "invite-title" },
    h("h2", { id: "invite-title" }, "Invite a colleague"), formError(),
    field("E-mail", h("input", { name: "email", type: "email", required: true }), { pointer: "/email" }),
    field("Role", role, { pointer: "/role" }),
    h("button", { type: "submit" }, "Send the invitation"));
  onSubmit(invite, async (data) => {
    await api("POST", `/v1/institutions/${id}/invitations`, { body: { email: data.get("email"), role: data.get("role") } });
    announce(`Invitation sent to ${data.get("email")}.`);
    await refresh();
    place.querySelector("input[name=email]")?.focus();
  });
  const open = invitations.items.filter((i) => i.status === "open");
  mount(place,
    h("h1", {}, "Members"),
    h("table", { class: "table", "data-testid": "members" },
      h("caption", { class: "visually-hidden" }, "Your institution's users"),
      h("thead", {}, h("tr", {}, ["Name", "E-mail", "Role"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, members.items.map((m) => h("tr", {}, h("td", {}, m.name), h("td", {}, m.email), h("td", {}, humanize(m.role)))))),
    open.length
      ? h("section", { class: "card", "aria-labelledby": "open-title" }, h("h2", { id: "open-title" }, "Open invitations"),
          h("ul", { "data-testid": "invitations" }, open.map((invitation) => {
            const revoke = h("form", { class: "inline" }, formError(), h("button", { type: "submit", class: "secondary" }, `Revoke ${invitation.email}`));
            onSubmit(revoke, async () => {
              await api("DELETE", `/v1/institutions/${id}/invitations/${invitation.id}`);
              announce(`Invitation to ${invitation.email} revoked.`);
              await refresh();
            });
            return h("li", {}, `${invitation.email} (${humanize(invitation.role)}), until ${formatDateTime(invitation.expiresAt)}`, revoke);
          })))
      : null,
    invite);
}
