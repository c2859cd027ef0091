// The directory: search as one types, facets as checkable counts, paging, profiles and
// recommendations; a message of intent from a profile.
import { api } from "../api.js";
import { h, mount, append, field, formError, onSubmit, showErrors, clearErrors, announce, displayName, humanize, regionName, languageName, fieldName, snippetNodes } from "../dom.js";
import { go } from "../app.js";

const facetTitles = { country: "Country", region: "Region", type: "Type", field: "Subject field", language: "Teaching language", offers: "Offers" };
const activities = ["student_exchange", "staff_exchange", "joint_degree", "double_degree", "collaborative_research", "coil_virtual_exchange", "summer_school", "traineeships"];

function facetLabel(facet, value) {
  if (facet === "country" || facet === "region") return regionName(value);
  if (facet === "language") return languageName(value);
  if (facet === "type" || facet === "offers") return humanize(value);
  if (facet === "field") return fieldName(value);
  return value;
}

export async function directoryView(main, { query: initial }) {
  const filters = Object.fromEntries(Object.keys(facetTitles).map((facet) => [facet, new Set(initial.getAll(facet))]));
  let q = initial.get("q") ?? "";
  let sort = initial.get("sort") ?? "";
  const requested = Number(initial.get("limit"));
  let limit = Number.isInteger(requested) && requested >= 1 && requested <= 100 ? requested : 20;
  let generation = 0;
  let timer = null;

  const search = h("input", { type: "search", name: "q", value: q, autocomplete: "off", placeholder: "Name, city, subject…", "data-testid": "directory-search" });
  const sortSelect = h("select", { name: "sort" },
    h("option", { value: "" }, "Best match"), h("option", { value: "name" }, "Name"), h("option", { value: "newest" }, "Newest"));
  sortSelect.value = sort;
  const sizes = [...new Set([10, 20, 50, limit])].sort((a, b) => a - b);
  const limitSelect = h("select", { name: "limit" }, sizes.map((size) => h("option", { value: size }, String(size))));
  limitSelect.value = String(limit);
  const form = h("form", { class: "search", role: "search" }, formError(),
    field("Search the network", search, { pointer: "q" }), field("Order", sortSelect, { pointer: "sort" }),
    field("Per page", limitSelect, { pointer: "limit" }));
  const facetsPlace = h("aside", { class: "facets", "aria-label": "Filters" });
  const summary = h("p", { class: "muted", "aria-live": "polite" });
  const results = h("ol", { class: "results", "data-testid": "directory-results" });
  const more = h("button", { type: "button", hidden: true }, "Show more");
  const recommendations = h("section", { class: "card", "aria-labelledby": "rec-title" }, h("h2", { id: "rec-title" }, "Recommended for you"), h("p", { class: "muted" }, "Loading…"));

  mount(main,
    h("h1", {}, "Directory"),
    form,
    h("div", { class: "with-sidebar" }, facetsPlace, h("section", { "aria-label": "Results" }, summary, results, more)),
    recommendations);

  function params(cursor) {
    const query = { limit };
    if (q.trim()) query.q = q.trim();
    if (sort) query.sort = sort;
    else if (!q.trim()) query.sort = "name";
    for (const [facet, values] of Object.entries(filters)) if (values.size) query[facet] = [...values];
    if (cursor) { query.cursor = cursor; query.facets = false; }
    return query;
  }

  function remember() {
    const query = new URLSearchParams();
    if (q.trim()) query.set("q", q.trim());
    if (sort) query.set("sort", sort);
    if (limit !== 20) query.set("limit", String(limit));
    for (const [facet, values] of Object.entries(filters)) for (const value of values) query.append(facet, value);
    const text = query.toString();
    history.replaceState(null, "", `#/directory${text ? `?${text}` : ""}`);
  }

  async function load(cursor) {
    const mine = ++generation;
    if (!cursor) more.hidden = true;
    let page;
    try {
      page = await api("GET", "/v1/directory", { query: params(cursor) });
    } catch (error) {
      if (mine !== generation) return;
      showErrors(form, error);
      summary.textContent = error.message;
      return;
    }
    if (mine !== generation) return;
    clearErrors(form);
    if (!cursor) {
      results.replaceChildren();
      summary.textContent = page.total === 1 ? "1 institution" : `${page.total ?? page.items.length} institutions`;
      renderFacets(page.facets ?? {});
    }
    append(results, page.items.map(item));
    more.hidden = !page.nextCursor;
    more.onclick = () => load(page.nextCursor);
  }

  function renderFacets(facets) {
    const groups = Object.keys(facetTitles).filter((facet) => facets[facet] && Object.keys(facets[facet]).length).map((facet) => {
      const counts = Object.entries(facets[facet]).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 12);
      for (const value of filters[facet]) if (!counts.some(([v]) => v === value)) counts.push([value, 0]);
      return h("fieldset", {},
        h("legend", {}, facetTitles[facet]),
        counts.map(([value, count]) => h("label", { class: "check" },
          h("input", {
            type: "checkbox", checked: filters[facet].has(value), dataset: { facet, value },
            onchange: (event) => {
              if (event.target.checked) filters[facet].add(value); else filters[facet].delete(value);
              remember();
              load();
            },
          }),
          ` ${facetLabel(facet, value)} `, h("span", { class: "count" }, `(${count})`))));
    });
    mount(facetsPlace, groups);
  }

  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { q = search.value; remember(); load(); }, 250);
  });
  sortSelect.addEventListener("change", () => { sort = sortSelect.value; remember(); load(); });
  limitSelect.addEventListener("change", () => { limit = Number(limitSelect.value); remember(); load(); });
  form.addEventListener("submit", (event) => { event.preventDefault(); clearTimeout(timer); q = search.value; remember(); load(); });

  load();
  api("GET", "/v1/directory/recommendations", { query: { limit: 5 } }).then((page) => {
    mount(recommendations, h("h2", { id: "rec-title" }, "Recommended for you"),
      page.items.length
        ? h("ol", { class: "results" }, page.items.map((rec) => item(rec.institution, rec.reasons)))
        : h("p", { class: "muted" }, "No recommendations yet: complete your profile's offers and needs."));
  }).catch((error) => mount(recommendations, h("h2", { id: "rec-title" }, "Recommended for you"), h("p", { class: "muted" }, error.message)));

  return () => clearTimeout(timer);
}

function item(entry, reasons) {
  return h("li", { class: "result" },
    h("a", { href: `#/institutions/${entry.id}`, class: "result-name" }, displayName(entry.names)),
    entry.acronym ? h("span", { class: "muted" }, ` (${entry.acronym})`) : null,
    h("p", { class: "muted" }, [entry.city, regionName(entry.country), humanize(entry.type)].filter(Boolean).join(" · ")),
    entry.snippet ? h("p", { class: "snippet" }, snippetNodes(entry.snippet)) : null,
    entry.offers?.length ? h("p", {}, "Offers: ", entry.offers.map(humanize).join(", ")) : null,
    reasons?.length ? h("ul", { class: "reasons", "aria-label": "Why" }, reasons.map((reason) => h("li", {}, reason))) : null);
}

export async function profileView(main, { params: [id], me }) {
  const profile = await api("GET", `/v1/institutions/${id}`);
  const name = displayName(profile.names);
  const own = me.institution?.id === profile.id;
  const list = (title, values, format = humanize) => values?.length
    ? [h("dt", {}, title), h("dd", {}, values.map(format).join(", "))] : [];
  mount(main,
    h("p", {}, h("a", { href: "#/directory" }, "← Directory")),
    h("h1", { "data-testid": "profile-name" }, name),
    profile.names.length > 1 ? h("p", { class: "muted" }, profile.names.filter((n) => n.value !== name).map((n) => n.value).join(" · ")) : null,
    h("p", {}, [profile.city, regionName(profile.country), humanize(profile.type), profile.schac].filter(Boolean).join(" · ")),
    profile.description ? h("p", {}, profile.description) : null,
    h("dl", { class: "facts" },
      profile.website ? [h("dt", {}, "Website"), h("dd", {}, profile.website)] : [],
      profile.studentCount ? [h("dt", {}, "Students"), h("dd", {}, profile.studentCount.toLocaleString("en"))] : [],
      list("Subject areas", profile.subjectAreas, (s) => `${s.code}${s.strength ? ` (${s.strength})` : ""}`),
      list("Teaching languages", profile.teachingLanguages, (l) => `${languageName(l.code)} ${l.level}`),
      list("Offers", profile.offers), list("Seeks", profile.seeks), list("Services", profile.services),
      profile.goals ? [h("dt", {}, "Goals"), h("dd", {}, profile.goals)] : []),
    own || !me.institution ? null : proposalForm(profile, name));
}

function proposalForm(profile, name) {
  const message = h("textarea", { name: "message", rows: 5, required: true, maxlength: 5000 });
  const choices = h("fieldset", { "data-field": "/activities", id: "activities", tabindex: -1 },
    h("legend", {}, "Activities"),
    activities.map((activity) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "activities", value: activity, checked: profile.offers?.includes(activity) }), ` ${humanize(activity)}`)),
    h("p", { class: "error", id: "activities-error", hidden: true }));
  const form = h("form", { class: "card", "aria-labelledby": "propose-title" },
    h("h2", { id: "propose-title" }, `Propose a partnership to ${name}`),
    formError(),
    field("Message of intent", message, { pointer: "/message" }),
    choices,
    h("button", { type: "submit" }, "Send message of intent"));
  onSubmit(form, async (data) => {
    const partnership = await api("POST", "/v1/partnerships", {
      body: { partner: profile.id, message: data.get("message"), activities: data.getAll("activities") },
    });
    announce("Message of intent sent.");
    go(`/partnerships/${partnership.id}`);
  });
  return form;
}
