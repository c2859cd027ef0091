// A room's live connection (docs/rooms-protocol.md): a ticket, then the socket with `after` set to
// the last sequence on screen; on any drop (or the browser going offline) it reconnects with
// backoff and resumes after that sequence, and sends again what was not acknowledged, under the
// same clientId, so nothing is lost or doubled.
import { api } from "./api.js";

export class RoomConnection {
  /** `handlers`: message, edited, deleted, typing, presence, hello, resync, state, error. */
  constructor(roomId, lastSeq, handlers) {
    this.roomId = roomId;
    this.lastSeq = lastSeq;
    this.handlers = handlers;
    this.pending = new Map();
    this.socket = null;
    this.connecting = false;
    this.closed = false;
    this.attempt = 0;
    this.openedAt = 0;
    this.opened = 0;
    this.timer = null;
    this.onOnline = () => this.reconnectSoon(0);
    this.onOffline = () => this.socket?.close(4000, "offline");
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
  }

  async connect() {
    // One socket at a time: not while another is being opened or is open.
    if (this.closed || this.connecting || (this.socket && this.socket.readyState <= WebSocket.OPEN)) return;
    this.connecting = true;
    clearTimeout(this.timer);
    this.setState("connecting");
    let ticket;
    try {
      ({ ticket } = await api("POST", `/v1/rooms/${this.roomId}/tickets`));
    } catch (error) {
      this.connecting = false;
      if ([403, 404].includes(error.status)) return this.end(error.message);
      return this.reconnectSoon();
    }
    this.connecting = false;
    if (this.closed) return;
    this.socket?.close(1000);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/v1/rooms/${this.roomId}/socket?ticket=${encodeURIComponent(ticket)}&after=${this.lastSeq}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const slow = event.reason?.startsWith("slow consumer");
      if (event.code === 1008 && !slow) return this.end(event.reason || "Your access to this room ended.");
      this.reconnectSoon();
    };
  }

  receive(frame) {
    switch (frame.type) {
      case "hello":
        this.openedAt = Date.now();
        this.opened += 1;
        this.setState("live");
        // After a reconnect, edits and deletions made meanwhile are not replayed: the view reads them.
        this.handlers.hello?.(frame, this.opened > 1);
        for (const [clientId, body] of this.pending) this.transmit({ type: "send", clientId, body });
        break;
      case "message":
        if (frame.seq <= this.lastSeq) return; // already on screen (replay overlapping history)
        this.lastSeq = frame.seq;
        this.pending.delete(frame.clientId);
        this.handlers.message?.(frame);
        break;
      case "ack":
        this.pending.delete(frame.clientId);
        break;
      case "resync":
        // The server's history does not continue after our last sequence: start again from its.
        this.lastSeq = frame.lastSeq;
        this.handlers.resync?.(frame);
        break;
      case "error":
        if (frame.clientId && ["rate_limited", "unavailable"].includes(frame.code) && this.pending.has(frame.clientId)) {
          // Sent again soon under the same clientId: the server stores it once.
          const body = this.pending.get(frame.clientId);
          setTimeout(() => this.transmit({ type: "send", clientId: frame.clientId, body }), 1000);
        } else if (frame.clientId) {
          this.pending.delete(frame.clientId);
          this.handlers.failed?.(frame);
        } else {
          this.handlers.error?.(frame);
        }
        break;
      default:
        this.handlers[frame.type]?.(frame);
    }
  }

  /** The longest body the server takes, in bytes of UTF-8. */
  static maximumBody = 16 * 1024;

  /** Sends a message; it is kept until acknowledged and sent again after a reconnect. */
  send(body) {
    const clientId = crypto.randomUUID();
    this.pending.set(clientId, body);
    this.transmit({ type: "send", clientId, body });
    return clientId;
  }

  typing() { this.transmit({ type: "typing" }); }
  read(seq) { this.transmit({ type: "read", seq }); }

  transmit(frame) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  reconnectSoon(delay) {
    if (this.closed) return;
    this.setState(navigator.onLine ? "reconnecting" : "offline");
    clearTimeout(this.timer);
    // The backoff starts again only after a socket that stayed up: a socket the server closes at
    // once (whatever the reason) is not retried in a tight loop.
    if (this.openedAt && Date.now() - this.openedAt > 10000) this.attempt = 0;
    this.openedAt = 0;
    const wait = delay ?? Math.min(15000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), wait);
  }

  setState(state) {
    this.state = state;
    this.handlers.state?.(state);
  }

  end(reason) {
    this.close();
    this.handlers.state?.("ended", reason);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    this.socket?.close(1000);
    this.socket = null;
  }
}
