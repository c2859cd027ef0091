// DOM helpers. Text from the API is only ever inserted as text nodes: nothing here sets HTML.

let counter = 0;

/** An element: props become attributes (on* functions become listeners); children are nodes or text. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "class") element.className = value;
    else if (key === "value") element.value = value;
    else if (key === "checked") element.checked = Boolean(value);
    else if (key === "dataset") {
      for (const [name, item] of Object.entries(value)) if (item !== undefined && item !== null) element.dataset[name] = item;
    }
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

export function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Replaces an element's children. */
export function mount(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

export function uid(prefix = "f") {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled control with a place for its error; `pointer` is the field the API names (e.g. `/message`). */
export function field(label, control, { hint, pointer } = {}) {
  if (!control.id) control.id = uid();
  const error = h("p", { class: "error", id: `${control.id}-error`, hidden: true });
  const described = [error.id];
  let hintElement = null;
  if (hint) {
    hintElement = h("p", { class: "hint", id: `${control.id}-hint` }, hint);
    described.unshift(hintElement.id);
  }
  control.setAttribute("aria-describedby", described.join(" "));
  if (pointer) control.dataset.field = pointer;
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hintElement, error);
}

/** A form's place for errors that belong to no one field. */
export function formError() {
  return h("p", { class: "error form-error", role: "alert", hidden: true });
}

/** Shows an ApiError on a form: each field's message beside its control, the rest on top. */
export function showErrors(form, error) {
  clearErrors(form);
  const unplaced = [];
  let first = null;
  for (const { field: pointer, message } of error.fields ?? []) {
    const control = form.querySelector(`[data-field="${CSS.escape(pointer)}"]`);
    if (!control) {
      unplaced.push(`${pointer}: ${message}`);
      continue;
    }
    const place = document.getElementById(`${control.id}-error`);
    place.textContent = place.hidden ? message : `${place.textContent}; ${message}`;
    place.hidden = false;
    control.setAttribute("aria-invalid", "true");
    first ??= control;
  }
  const general = form.querySelector(".form-error");
  if (general) {
    general.textContent = unplaced.length ? unplaced.join("; ") : first ? "Please correct the marked fields." : error.message;
    general.hidden = false;
  }
  (first ?? general)?.focus?.();
}

export function clearErrors(form) {
  for (const place of form.querySelectorAll(".error")) {
    place.hidden = true;
    place.textContent = "";
  }
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
}

/** Runs `action` for a form's submit, with the button disabled meanwhile and errors shown. */
export function onSubmit(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = [...form.querySelectorAll("button")];
    for (const button of buttons) button.disabled = true;
    clearErrors(form);
    try {
      await action(new FormData(form), event.submitter);
    } catch (error) {
      showErrors(form, error);
    } finally {
      for (const button of buttons) if (button.isConnected) button.disabled = false;
    }
  });
  return form;
}

/** A polite announcement (screen readers and sighted users). */
export function announce(text) {
  const status = document.getElementById("status");
  status.textContent = text;
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => { status.textContent = ""; }, 5000);
}

const dateTime = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat("en-GB", { timeStyle: "short" });
export const formatDateTime = (text) => (text ? dateTime.format(new Date(text)) : "");
export const formatTime = (text) => (text ? timeOnly.format(new Date(text)) : "");

const countries = new Intl.DisplayNames(["en"], { type: "region" });
const languages = new Intl.DisplayNames(["en"], { type: "language" });
// The UN M49 regions the directory counts (Intl knows only a few of them), and ISCED-F 2013's broad
// fields: the names of the database's reference lists (Schema/).
const m49 = {
  "002": "Africa", "005": "South America", "009": "Oceania", "011": "Western Africa", "013": "Central America",
  "014": "Eastern Africa", "015": "Northern Africa", "017": "Middle Africa", "018": "Southern Africa", "019": "Americas",
  "021": "Northern America", "029": "Caribbean", "030": "Eastern Asia", "034": "Southern Asia", "035": "South-eastern Asia",
  "039": "Southern Europe", "053": "Australia and New Zealand", "054": "Melanesia", "057": "Micronesia", "061": "Polynesia",
  "142": "Asia", "143": "Central Asia", "145": "Western Asia", "150": "Europe", "151": "Eastern Europe",
  "154": "Northern Europe", "155": "Western Europe", "202": "Sub-Saharan Africa", "419": "Latin America and the Caribbean",
};
const broadFields = {
  "00": "Generic programmes", "01": "Education", "02": "Arts and humanities", "03": "Social sciences, journalism and information",
  "04": "Business, administration and law", "05": "Natural sciences, mathematics and statistics", "06": "ICT",
  "07": "Engineering, manufacturing and construction", "08": "Agriculture, forestry, fisheries and veterinary",
  "09": "Health and welfare", "10": "Services", "99": "Field unknown",
};
/** An ISO 3166 country or UN M49 region code's English name (the code when unknown). */
export const regionName = (code) => { if (m49[code]) return m49[code]; try { return countries.of(code) ?? code; } catch { return code; } };
/** An ISCED-F broad field's name, with its code. */
export const fieldName = (code) => (broadFields[code] ? `${broadFields[code]} (${code})` : code);
export const languageName = (code) => { try { return languages.of(code) ?? code; } catch { return code; } };

/** `student_exchange` or `studentExchange` → `Student exchange`. */
export function humanize(word) {
  if (!word) return "";
  const spaced = word.replace(/([a-z])([A-Z])/g, "$1 $2").replaceAll("_", " ").toLowerCase();
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

/** The name to show for a list of localized names: English first, else the first. */
export const displayName = (names) => (names?.find((n) => n.lang === "en") ?? names?.[0])?.value ?? "";

/** A search snippet (HTML-escaped text whose only markup is <mark>…</mark>) as nodes, never as HTML. */
export function snippetNodes(snippet) {
  const unescape = (text) => text.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_, name) => ({ amp: "&", lt: "<", gt: ">", quot: "\"", "#39": "'", "#x27": "'" })[name]);
  const nodes = [];
  const parts = snippet.split(/(<mark>|<\/mark>)/);
  let marked = false;
  for (const part of parts) {
    if (part === "<mark>") marked = true;
    else if (part === "</mark>") marked = false;
    else if (part) nodes.push(marked ? h("mark", {}, unescape(part)) : unescape(part));
  }
  return nodes;
}
