// Partnerships: the list, and one partnership's life: accept or decline, the timeline, the
// agreement's versions (terms, the diff between two, drafting, approving a hash), the KPI table.
import { api } from "../api.js";
import { h, mount, field, formError, onSubmit, announce, humanize, formatDateTime } from "../dom.js";
import { go } from "../app.js";

const stages = ["invited", "negotiating", "active", "declined", "withdrawn", "terminated", "expired"];

export async function partnershipsView(main, { query, me }) {
  const stage = query.get("stage") ?? "";
  const page = await api("GET", "/v1/partnerships", { query: { stage, limit: 100 } });
  const select = h("select", { name: "stage", onchange: (e) => go(`/partnerships${e.target.value ? `?stage=${e.target.value}` : ""}`) },
    h("option", { value: "" }, "All stages"), stages.map((s) => h("option", { value: s }, humanize(s))));
  select.value = stage;
  const other = (p) => (p.initiator.id === me.institution?.id ? p.partner : p.initiator);
  mount(main,
    h("h1", {}, "Partnerships"),
    field("Stage", select),
    page.items.length
      ? h("table", { class: "table", "data-testid": "partnerships" },
          h("caption", { class: "visually-hidden" }, "Your institution's partnerships"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Partner"), h("th", { scope: "col" }, "Stage"), h("th", { scope: "col" }, "Updated"))),
          h("tbody", {}, page.items.map((p) => h("tr", {},
            h("td", {}, h("a", { href: `#/partnerships/${p.id}` }, other(p).name), p.initiator.id === me.institution?.id ? " (you proposed)" : ""),
            h("td", {}, h("span", { class: `badge stage-${p.stage}` }, humanize(p.stage))),
            h("td", {}, formatDateTime(p.updatedAt))))))
      : h("p", { class: "muted" }, "No partnerships yet. Find a partner in the ", h("a", { href: "#/directory" }, "directory"), "."));
}

export async function partnershipView(main, { params: [id], me }) {
  const partnership = await api("GET", `/v1/partnerships/${id}`);
  const mine = me.institution?.id;
  const isInitiator = partnership.initiator.id === mine;
  const isAdmin = me.user.role === "admin";
  const names = { [partnership.initiator.id]: partnership.initiator.name, [partnership.partner.id]: partnership.partner.name };
  const refresh = () => partnershipView(main, { params: [id], me });

  const actions = h("div", { class: "actions" });
  const actionForm = h("form", { class: "inline" }, formError(), actions);
  if (partnership.stage === "invited" && !isInitiator) {
    actions.append(
      h("button", { type: "submit", value: "accept", "data-testid": "accept" }, "Accept"),
      h("button", { type: "submit", value: "decline", class: "secondary" }, "Decline"));
  } else if (partnership.stage === "invited" && isInitiator) {
    actions.append(h("button", { type: "submit", value: "withdraw", class: "secondary" }, "Withdraw"));
  }
  if (partnership.roomId) {
    actions.append(h("button", { type: "submit", value: "room", "data-testid": "open-room" }, "Open the partnership's room"));
  }
  onSubmit(actionForm, async (_, submitter) => {
    const action = submitter?.value;
    if (action === "room") {
      const { roomId } = await api("POST", `/v1/partnerships/${id}/room`);
      return go(`/rooms/${roomId}`);
    }
    await api("POST", `/v1/partnerships/${id}/${action}`);
    announce(`Partnership ${action === "accept" ? "accepted" : action === "decline" ? "declined" : "withdrawn"}.`);
    await refresh();
  });

  const [versions, timeline, assessment] = await Promise.all([
    api("GET", `/v1/partnerships/${id}/agreement/versions`).then((r) => r.items).catch(() => []),
    api("GET", `/v1/partnerships/${id}/timeline`, { query: { limit: 100 } }).then((r) => r.items).catch(() => []),
    partnership.inEffectVersion ? api("GET", `/v1/partnerships/${id}/assessment`).catch(() => null) : Promise.resolve(null),
  ]);

  mount(main,
    h("p", {}, h("a", { href: "#/partnerships" }, "← Partnerships")),
    h("h1", {}, `${partnership.initiator.name} → ${partnership.partner.name}`),
    h("p", {}, "Stage: ", h("span", { class: `badge stage-${partnership.stage}`, "data-testid": "stage" }, humanize(partnership.stage)),
      partnership.inEffectVersion ? ` · agreement version ${partnership.inEffectVersion} in effect` : "",
      partnership.endsOn ? ` until ${partnership.endsOn}` : ""),
    h("blockquote", {}, partnership.message),
    h("p", {}, "Activities: ", partnership.activities.map(humanize).join(", ")),
    actionForm,
    ["negotiating", "active"].includes(partnership.stage) || versions.length
      ? agreementSection(partnership, versions, { mine, isAdmin, names, refresh }) : null,
    assessment ? kpiSection(partnership, assessment, names, refresh) : null,
    timelineSection(timeline, names));
}

function agreementSection(partnership, versions, context) {
  const section = h("section", { class: "card", "aria-labelledby": "agreement-title" }, h("h2", { id: "agreement-title" }, "Agreement"));
  const latest = versions.at(-1);
  if (!latest) {
    section.append(h("p", { class: "muted" }, "No version drafted yet."));
  } else {
    const approvedByMe = latest.approvals.some((a) => a.institution === context.mine);
    section.append(
      h("h3", {}, `Version ${latest.version}${latest.inEffect ? " (in effect)" : ""}`),
      h("p", { class: "hash" }, "Hash ", h("code", { "data-testid": "hash" }, latest.hash)),
      h("p", {}, "Approved by: ", latest.approvals.length
        ? latest.approvals.map((a) => `${context.names[a.institution] ?? a.institution} (${formatDateTime(a.approvedAt)})`).join("; ")
        : "nobody yet"),
      termsTable(latest.terms, context.names));
    if (context.isAdmin && !approvedByMe && ["negotiating", "active"].includes(partnership.stage)) {
      const approve = h("form", { class: "inline" }, formError(),
        h("button", { type: "submit", "data-testid": "approve" }, `Approve version ${latest.version}`));
      onSubmit(approve, async () => {
        await api("POST", `/v1/partnerships/${partnership.id}/agreement/approvals`, { body: { hash: latest.hash } });
        announce(`Version ${latest.version} approved.`);
        await context.refresh();
      });
      section.append(approve);
    }
  }
  if (versions.length > 1) section.append(diffForm(partnership, versions));
  if (["negotiating", "active"].includes(partnership.stage)) section.append(draftForm(partnership, latest, context));
  return section;
}

function termsTable(terms, names) {
  const rows = [
    ["Start", terms.startDate], ["End", terms.endDate],
    ...(terms.cooperationConditions ?? []).map((c, i) => [`Mobility ${i + 1}`,
      `${humanize(c.kind)}: ${names[c.sending] ?? c.sending} → ${names[c.receiving] ?? c.receiving}, `
      + `${c.mobilitiesPerYear} a year, ${c.academicYears.first}–${c.academicYears.last}`
      + (c.totalMonthsPerYear ? `, ${c.totalMonthsPerYear} months a year` : "") + (c.totalDaysPerYear ? `, ${c.totalDaysPerYear} days a year` : "")]),
    ...(terms.kpis ?? []).map((k) => [`KPI ${k.key}`, `${k.label}: ${k.target} per ${k.period === "academicYear" ? "academic year" : "calendar year"}`]),
    ...(terms.financial ? [["Financial model", humanize(terms.financial.model)]] : []),
  ];
  return h("table", { class: "table terms", "data-testid": "terms" },
    h("caption", { class: "visually-hidden" }, "Terms"),
    h("tbody", {}, rows.map(([key, value]) => h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, value)))));
}

function diffForm(partnership, versions) {
  const options = () => versions.map((v) => h("option", { value: v.version }, `Version ${v.version}`));
  const from = h("select", { name: "from" }, options());
  const to = h("select", { name: "to" }, options());
  from.value = String(versions.at(-2).version);
  to.value = String(versions.at(-1).version);
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "inline", "aria-label": "Compare versions" }, formError(),
    field("From", from), field("To", to), h("button", { type: "submit", class: "secondary" }, "Compare"), result);
  onSubmit(form, async (data) => {
    const diff = await api("GET", `/v1/partnerships/${partnership.id}/agreement/versions/${data.get("from")}/diff/${data.get("to")}`);
    const show = (value) => (value === undefined ? "—" : typeof value === "object" ? JSON.stringify(value) : String(value));
    mount(result, diff.changes.length
      ? h("div", { class: "wide" }, h("table", { class: "table", "data-testid": "diff" },
          h("caption", {}, `Changes from version ${diff.from} to ${diff.to}`),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Before"), h("th", { scope: "col" }, "After"))),
          h("tbody", {}, diff.changes.map((c) => h("tr", {}, h("td", {}, h("code", {}, c.path)), h("td", { class: "before" }, show(c.before)), h("td", { class: "after" }, show(c.after)))))))
      : h("p", {}, "The two versions have the same terms."));
  });
  return form;
}

function academicYear(date) {
  const d = new Date(`${date}T00:00:00Z`);
  const first = d.getUTCMonth() >= 8 ? d.getUTCFullYear() : d.getUTCFullYear() - 1;
  return `${first}/${first + 1}`;
}

/** A new version: dates, one mobility each way and the KPIs (pre-filled from the latest version). */
function draftForm(partnership, latest, context) {
  const terms = latest?.terms;
  const ids = [partnership.initiator.id, partnership.partner.id];
  const outgoing = terms?.cooperationConditions?.find((c) => c.sending === ids[0]);
  const incoming = terms?.cooperationConditions?.find((c) => c.sending === ids[1]);
  const year = new Date().getUTCFullYear() + 1;
  const start = h("input", { type: "date", name: "startDate", required: true, value: terms?.startDate ?? `${year}-09-01` });
  const end = h("input", { type: "date", name: "endDate", required: true, value: terms?.endDate ?? `${year + 2}-08-31` });
  const count = (name, condition) => h("input", { type: "number", name, min: 0, max: 10000, value: condition?.mobilitiesPerYear ?? 2 });
  const language = outgoing?.languages?.[0] ?? incoming?.languages?.[0] ?? { language: "en", cefr: "B2" };
  const languageInput = h("input", { name: "language", required: true, maxlength: 2, size: 3, value: language.language });
  const levelSelect = h("select", { name: "cefr" }, ["A1", "A2", "B1", "B2", "C1", "C2"].map((level) => h("option", { value: level }, level)));
  levelSelect.value = language.cefr ?? "B2";
  const kpi = terms?.kpis?.[0];
  const kpiLabel = h("input", { name: "kpiLabel", maxlength: 200, value: kpi?.label ?? "Outgoing students" });
  const kpiTarget = h("input", { type: "number", name: "kpiTarget", min: 0, step: "any", value: kpi?.target ?? 4 });
  const form = h("form", { class: "draft", "aria-labelledby": "draft-title" },
    h("h3", { id: "draft-title" }, latest ? `Draft version ${latest.version + 1}` : "Draft the agreement"),
    formError(),
    h("div", { class: "row" }, field("Start", start, { pointer: "/startDate" }), field("End", end, { pointer: "/endDate" })),
    h("div", { class: "row" },
      field(`Students a year, ${context.names[ids[0]]} → ${context.names[ids[1]]}`, count("out", outgoing), { pointer: "/cooperationConditions/0/mobilitiesPerYear" }),
      field(`Students a year, ${context.names[ids[1]]} → ${context.names[ids[0]]}`, count("in", incoming), { pointer: "/cooperationConditions/1/mobilitiesPerYear" })),
    h("div", { class: "row" },
      field("Language of instruction (ISO 639-1)", languageInput, { pointer: "/cooperationConditions/0/languages/0/language" }),
      field("Level", levelSelect, { pointer: "/cooperationConditions/0/languages/0/cefr" })),
    h("div", { class: "row" },
      field("KPI", kpiLabel, { pointer: "/kpis/0/label" }), field("Target a year", kpiTarget, { pointer: "/kpis/0/target" })),
    h("button", { type: "submit", "data-testid": "draft" }, "Save as a new version"));
  onSubmit(form, async (data) => {
    const startDate = data.get("startDate");
    const endDate = data.get("endDate");
    const years = { first: academicYear(startDate), last: academicYear(endDate) };
    const condition = (sending, receiving, count, previous) => ({
      ...(previous ?? {}), kind: previous?.kind ?? "studentStudies", sending, receiving, academicYears: years,
      mobilitiesPerYear: Number(count), ...(previous ? {} : { totalMonthsPerYear: Number(count) * 5, eqfLevels: [6, 7] }),
      languages: [{ language: String(data.get("language")).trim().toLowerCase(), cefr: data.get("cefr") }, ...(previous?.languages ?? []).slice(1)],
    });
    // The two mobilities and the KPI this form shows are replaced; every other term stays.
    const others = (terms?.cooperationConditions ?? []).filter((c) => c !== outgoing && c !== incoming);
    const conditions = [["out", ids[0], ids[1], outgoing], ["in", ids[1], ids[0], incoming]]
      .filter(([name]) => Number(data.get(name)) > 0)
      .map(([name, sending, receiving, previous]) => condition(sending, receiving, data.get(name), previous));
    const shownKPI = data.get("kpiLabel")
      ? [{ key: kpi?.key ?? "outgoing_students", label: data.get("kpiLabel"), target: Number(data.get("kpiTarget")), period: kpi?.period ?? "academicYear" }]
      : [];
    const body = {
      ...(terms ?? {}), startDate, endDate, cooperationConditions: [...conditions, ...others],
      kpis: [...shownKPI, ...(terms?.kpis ?? []).slice(1)],
    };
    const version = await api("PUT", `/v1/partnerships/${partnership.id}/agreement`, { body });
    announce(`Version ${version.version} saved.`);
    await context.refresh();
  });
  return form;
}

function kpiSection(partnership, assessment, names, refresh) {
  const rows = assessment.kpis.flatMap((k) => (k.reports.length ? k.reports : [null]).map((r) => h("tr", { class: r?.belowTarget ? "below" : "" },
    h("th", { scope: "row" }, k.label), h("td", {}, String(k.target)),
    h("td", {}, r ? names[r.institution] ?? r.institution : "—"), h("td", {}, r?.period ?? "—"),
    h("td", {}, r ? String(r.actual) : "—"), h("td", {}, r ? (r.belowTarget ? "Below target" : "On target") : "Not reported"))));
  const period = h("input", { name: "period", required: true, placeholder: "2027/2028", pattern: "[0-9]{4}(/[0-9]{4})?" });
  const values = assessment.kpis.map((k) => field(`${k.label} (actual)`, h("input", { type: "number", min: 0, step: "any", name: `kpi:${k.key}` }), { pointer: `/values/${k.key}` }));
  const form = h("form", { class: "inline", "aria-label": "Report actuals" }, formError(),
    field("Period", period, { pointer: "/period" }), values, h("button", { type: "submit", class: "secondary" }, "Report"));
  onSubmit(form, async (data) => {
    const reported = {};
    for (const k of assessment.kpis) if (data.get(`kpi:${k.key}`) !== "") reported[k.key] = Number(data.get(`kpi:${k.key}`));
    await api("POST", `/v1/partnerships/${partnership.id}/kpi-reports`, { body: { period: data.get("period"), values: reported } });
    announce("Actuals reported.");
    await refresh();
  });
  return h("section", { class: "card", "aria-labelledby": "kpi-title" },
    h("h2", { id: "kpi-title" }, `KPIs of version ${assessment.version}`),
    h("table", { class: "table", "data-testid": "kpis" },
      h("caption", { class: "visually-hidden" }, "Targets against actuals"),
      h("thead", {}, h("tr", {}, ["KPI", "Target", "Reported by", "Period", "Actual", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)),
    assessment.kpis.length ? form : null);
}

function timelineSection(events, names) {
  return h("section", { class: "card", "aria-labelledby": "timeline-title" },
    h("h2", { id: "timeline-title" }, "Timeline"),
    events.length
      ? h("ol", { class: "timeline", "data-testid": "timeline" }, events.map((e) => h("li", {},
          h("time", { datetime: e.at }, formatDateTime(e.at)), " ",
          h("strong", {}, humanize(e.kind.replace(".", ": "))), " — ",
          `${e.actor.name} (${names[e.actor.institution] ?? "network"})`,
          Object.keys(e.detail ?? {}).length ? h("span", { class: "muted" }, ` ${Object.entries(e.detail).map(([k, v]) => `${k}: ${v}`).join(", ")}`) : null)))
      : h("p", { class: "muted" }, "Nothing yet."));
}

