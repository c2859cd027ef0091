// Rooms: the list with unread counts, and one room live over its WebSocket, with history on
// scroll, typing and presence, and a connection that resumes after a drop.
import { api, ApiError } from "../api.js";
import { h, mount, field, formError, onSubmit, announce, formatDateTime, formatTime } from "../dom.js";
import { go } from "../app.js";
import { RoomConnection } from "../room-socket.js";

export async function roomsView(main) {
  const page = await api("GET", "/v1/rooms", { query: { limit: 100 } });
  const title = h("input", { name: "title", required: true, maxlength: 200 });
  const create = h("form", { class: "card", "aria-labelledby": "new-room" }, h("h2", { id: "new-room" }, "New room"), formError(),
    field("Title", title, { pointer: "/title" }), h("button", { type: "submit" }, "Create"));
  onSubmit(create, async (data) => {
    const room = await api("POST", "/v1/rooms", { body: { title: data.get("title") } });
    go(`/rooms/${room.id}`);
  });
  mount(main,
    h("h1", {}, "Rooms"),
    h("p", {}, h("a", { href: "#/rooms/invitations" }, "Invitations to rooms")),
    page.items.length
      ? h("ul", { class: "rooms", "data-testid": "rooms" }, page.items.map((room) => h("li", {},
          h("a", { href: `#/rooms/${room.id}` }, room.title),
          room.archived ? h("span", { class: "muted" }, " (archived)") : null,
          room.unread ? h("span", { class: "badge unread" }, String(room.unread), h("span", { class: "visually-hidden" }, " unread")) : null)))
      : h("p", { class: "muted" }, "You are in no room yet."),
    create);
}

export async function roomView(main, { params: [id], me }) {
  const [room, members] = await Promise.all([
    api("GET", `/v1/rooms/${id}`),
    api("GET", `/v1/rooms/${id}/members`).then((r) => r.items).catch(() => []),
  ]);
  const names = new Map(members.map((m) => [m.userId, `${m.name} (${m.institutionName})`]));
  const online = new Set();
  const shown = new Map(); // seq → element
  let firstSeq = null;
  let loadingEarlier = false;
  let reachedStart = false;

  const log = h("ol", { class: "messages", role: "log", "aria-label": "Messages", "aria-live": "polite", "data-testid": "messages" });
  const scroller = h("div", { class: "scroller", tabindex: 0, "aria-label": "Conversation" }, log);
  const state = h("p", { class: "connection", "data-testid": "connection", "aria-live": "polite" }, "Connecting…");
  const typingLine = h("p", { class: "typing muted", "aria-live": "polite" });
  const presence = h("p", { class: "presence muted" });
  const body = h("textarea", { name: "body", rows: 2, required: true, "data-testid": "composer" });
  const composer = h("form", { class: "composer" }, formError(),
    field("Message", body, { pointer: "/body", hint: "Enter sends; Shift+Enter starts a new line." }),
    h("button", { type: "submit", "data-testid": "send" }, "Send"));

  mount(main,
    h("p", {}, h("a", { href: "#/rooms" }, "← Rooms")),
    h("h1", {}, room.title),
    room.topic ? h("p", {}, room.topic) : null,
    state, presence, scroller, typingLine,
    room.archived ? h("p", { class: "muted" }, "This room is archived: read only.") : composer);

  function messageElement(message) {
    const author = message.author;
    return h("li", { class: `message${author.id === me.user.id ? " own" : ""}`, dataset: { seq: message.seq, edited: message.editedAt ? "true" : undefined } },
      h("p", { class: "meta" }, h("strong", {}, author.name), ` · ${author.institutionName} · `,
        h("time", { datetime: message.sentAt, title: formatDateTime(message.sentAt) }, formatTime(message.sentAt)),
        message.editedAt ? " · edited" : ""),
      h("p", { class: "body" }, message.deleted ? h("em", {}, "deleted") : message.body));
  }

  /** Places a message by its sequence; `live` ones (new at the end) keep the view at the bottom. */
  function show(message, live = false) {
    if (shown.has(message.seq)) return;
    const element = messageElement(message);
    const pending = log.querySelector(`li.pending[data-client-id="${CSS.escape(message.clientId)}"]`);
    pending?.remove();
    // In sequence order: after the last shown message with a smaller sequence.
    const later = [...log.querySelectorAll("li.message:not(.pending)")].find((li) => Number(li.dataset.seq) > message.seq);
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    if (later) log.insertBefore(element, later);
    else log.insertBefore(element, log.querySelector("li.pending"));
    shown.set(message.seq, element);
    if (firstSeq === null || message.seq < firstSeq) firstSeq = message.seq;
    if (live && !later && (atBottom || message.author.id === me.user.id)) scroller.scrollTop = scroller.scrollHeight;
  }

  /** Up to a page of the messages before sequence `seq`, in sequence order. */
  const historyPage = 50;
  const messagesBefore = async (seq) =>
    (await api("GET", `/v1/rooms/${id}/messages`, { query: { before: seq, limit: historyPage } })).items;

  /** A shown message as it is now (edited or deleted). */
  function update(message) {
    const element = shown.get(message.seq);
    if (!element) return;
    const body = element.querySelector(".body");
    if (message.deleted) body.replaceChildren(h("em", {}, "deleted"));
    else if (body.textContent !== message.body) body.textContent = message.body;
    if (message.editedAt && !element.dataset.edited) {
      element.dataset.edited = "true";
      element.querySelector(".meta").append(" · edited");
    }
  }

  async function loadEarlier() {
    if (loadingEarlier || reachedStart || firstSeq === null || firstSeq <= 1) return;
    loadingEarlier = true;
    log.setAttribute("aria-busy", "true");
    const before = scroller.scrollHeight;
    try {
      const earlier = await messagesBefore(firstSeq);
      if (earlier.length < historyPage) reachedStart = true;
      for (const message of earlier) show(message);
      scroller.scrollTop += scroller.scrollHeight - before;
    } finally {
      loadingEarlier = false;
      log.removeAttribute("aria-busy");
    }
  }

  // The latest messages first, then live ones after the last of them.
  log.setAttribute("aria-busy", "true");
  const latest = room.lastSeq > 0 ? await messagesBefore(room.lastSeq + 1) : [];
  for (const message of latest) show(message);
  if (latest.length < historyPage) reachedStart = true;
  log.removeAttribute("aria-busy");
  scroller.scrollTop = scroller.scrollHeight;
  scroller.addEventListener("scroll", () => { if (scroller.scrollTop < 60) loadEarlier(); });

  let readTimer = null;
  const markRead = () => {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => { if (document.visibilityState === "visible") connection.read(connection.lastSeq); }, 500);
  };
  let typingTimer = null;
  const renderPresence = () => {
    presence.textContent = online.size ? `Online: ${[...online].map((u) => names.get(u) ?? "a member").join(", ")}` : "";
  };

  const connection = new RoomConnection(id, latest.at(-1)?.seq ?? 0, {
    async hello(frame, resumed) {
      online.clear();
      for (const user of frame.online) online.add(user);
      renderPresence();
      if (frame.archived) this.archived();
      if (resumed && shown.size) {
        for (const message of await messagesBefore(connection.lastSeq + 1)) update(message);
      }
    },
    message(frame) { show(frame, true); markRead(); },
    edited(frame) { update({ ...frame, deleted: false }); },
    deleted(frame) { update({ seq: frame.seq, deleted: true }); },
    typing(frame) {
      typingLine.textContent = `${frame.name} is typing…`;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => { typingLine.textContent = ""; }, 3000);
    },
    presence(frame) {
      if (frame.status === "online") online.add(frame.user); else online.delete(frame.user);
      renderPresence();
    },
    async resync(frame) {
      // The history does not continue ours: show the latest messages afresh.
      const latestNow = await messagesBefore(frame.lastSeq + 1);
      log.querySelectorAll("li.message:not(.pending)").forEach((element) => element.remove());
      shown.clear();
      firstSeq = null;
      reachedStart = latestNow.length < historyPage;
      for (const message of latestNow) show(message);
      scroller.scrollTop = scroller.scrollHeight;
    },
    archived() {
      composer.replaceWith(h("p", { class: "muted" }, "This room is archived: read only."));
      connection.pending.clear();
    },
    failed(frame) {
      // A message the server refused for good (muted, archived, too long…): say so on it.
      const pending = log.querySelector(`li.pending[data-client-id="${CSS.escape(frame.clientId)}"]`);
      if (pending) {
        pending.classList.add("failed");
        pending.querySelector(".meta").replaceChildren(h("strong", {}, me.user.name), ` · not sent: ${frame.message ?? frame.code}`);
      }
      announce(`Not sent: ${frame.message ?? frame.code}`);
    },
    state(value, reason) {
      state.dataset.state = value;
      state.textContent = { connecting: "Connecting…", live: "Live", reconnecting: "Connection lost; reconnecting…", offline: "Offline; messages will be sent when the connection is back.", ended: reason ?? "Disconnected." }[value];
    },
    error(frame) { announce(frame.message ?? frame.code); },
  });
  connection.connect();

  let lastTyping = 0;
  body.addEventListener("input", () => {
    if (Date.now() - lastTyping > 2000) { lastTyping = Date.now(); connection.typing(); }
  });
  body.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); composer.requestSubmit(); }
  });
  onSubmit(composer, async (data) => {
    const text = String(data.get("body") ?? "");
    if (!text.trim()) return;
    if (new TextEncoder().encode(text).length > RoomConnection.maximumBody) {
      throw new ApiError(422, { detail: "The message is too long.", errors: [{ field: "/body", message: "must be at most 16 KiB" }] });
    }
    const clientId = connection.send(text);
    log.append(h("li", { class: "message own pending", dataset: { clientId } },
      h("p", { class: "meta" }, h("strong", {}, me.user.name), " · sending…"), h("p", { class: "body" }, text)));
    scroller.scrollTop = scroller.scrollHeight;
    body.value = "";
    body.focus();
  });
  const visible = () => { if (document.visibilityState === "visible") markRead(); };
  document.addEventListener("visibilitychange", visible);
  markRead();

  return () => {
    connection.close();
    clearTimeout(readTimer);
    clearTimeout(typingTimer);
    document.removeEventListener("visibilitychange", visible);
  };
}
