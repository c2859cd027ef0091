// Network administration: pending registrations to approve or reject, members to suspend or
// reinstate, and the network's statistics.
import { api } from "../api.js";
import { h, mount, field, formError, onSubmit, announce, displayName, humanize, regionName, formatDateTime } from "../dom.js";

export async function adminView(main, context) {
  const status = context.query.get("status") ?? "pending";
  const [page, stats] = await Promise.all([
    api("GET", "/v1/admin/institutions", { query: { status, limit: 100 } }),
    api("GET", "/v1/admin/stats"),
  ]);
  const refresh = () => adminView(main, context);
  const tabs = h("nav", { class: "tabs", "aria-label": "Institutions by status" },
    ["pending", "active", "suspended", "rejected"].map((s) =>
      h("a", { href: `#/admin?status=${s}`, "aria-current": s === status ? "page" : false }, humanize(s))));
  mount(main,
    h("h1", {}, "Network administration"),
    tabs,
    page.items.length
      ? h("ul", { class: "cards", "data-testid": "admin-institutions" }, page.items.map((institution) => h("li", { class: "card" },
          h("h2", {}, displayName(institution.names)),
          h("p", { class: "muted" }, [institution.schac, regionName(institution.country), humanize(institution.type), `registered ${formatDateTime(institution.createdAt)}`].join(" · ")),
          institution.domainProof ? h("p", {}, "Domain proof: ", humanize(String(institution.domainProof))) : null,
          decisionForm(institution, refresh))))
      : h("p", { class: "muted" }, `No ${status} institution.`),
    statsSection(stats));
}

function decisionForm(institution, refresh) {
  // Enter in the reason box must not pick the first button (approve) for the admin.
  const reason = h("input", { name: "reason", maxlength: 2000, onkeydown: (event) => { if (event.key === "Enter") event.preventDefault(); } });
  const actions = {
    pending: [["approve", "Approve"], ["reject", "Reject"]],
    active: [["suspend", "Suspend"]],
    suspended: [["reinstate", "Reinstate"]],
    rejected: [],
  }[institution.status] ?? [];
  if (!actions.length) return null;
  const form = h("form", { class: "inline" }, formError(),
    field("Reason (required to reject or suspend)", reason, { pointer: "/reason" }),
    actions.map(([action, label]) => h("button", { type: "submit", value: action, class: action === "approve" || action === "reinstate" ? "" : "secondary" }, label)));
  onSubmit(form, async (data, submitter) => {
    const text = String(data.get("reason") ?? "").trim();
    await api("POST", `/v1/admin/institutions/${institution.id}/${submitter.value}`, { body: text ? { reason: text } : {} });
    const done = { approve: "approved", reject: "rejected", suspend: "suspended", reinstate: "reinstated" }[submitter.value];
    announce(`${displayName(institution.names)} ${done}.`);
    await refresh();
  });
  return form;
}

function statsSection(stats) {
  const table = (caption, entries, format = (k) => k) => h("table", { class: "table" },
    h("caption", {}, caption),
    h("tbody", {}, Object.entries(entries).sort((a, b) => b[1] - a[1]).map(([key, count]) => h("tr", {}, h("th", { scope: "row" }, format(key)), h("td", {}, String(count))))));
  const active = stats.perMonth.filter((m) => m.registrations || m.admissions || m.agreementsApproved).reverse();
  return h("section", { class: "card", "aria-labelledby": "stats-title", "data-testid": "stats" },
    h("h2", { id: "stats-title" }, "Statistics"),
    h("p", {}, `${stats.institutions.total} institutions · ${stats.rooms.total} rooms (${stats.rooms.activeLast30Days} active in 30 days) · ${stats.directory.entries} directory entries`),
    h("div", { class: "grid" },
      table("By status", stats.institutions.byStatus, humanize),
      table("By tier", stats.institutions.byTier, humanize),
      table("By country", stats.institutions.byCountry, regionName),
      table("Partnerships by stage", stats.partnerships.byStage, humanize)),
    active.length ? h("table", { class: "table" },
      h("caption", {}, "Months with activity, newest first"),
      h("thead", {}, h("tr", {}, ["Month", "Registrations", "Admissions", "Agreements approved"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, active.map((m) => h("tr", {}, h("th", { scope: "row" }, m.month), h("td", {}, String(m.registrations)), h("td", {}, String(m.admissions)), h("td", {}, String(m.agreementsApproved)))))) : null);
}
