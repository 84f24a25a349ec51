// Fawkes channels client: a dependency-free ES module speaking the Phoenix Channels protocol
// (serializer 2.0.0) over WebSocket. Its API is the everyday subset of the official `phoenix`
// client, so code written for one runs on the other:
//
//   import { Socket } from "/js/fawkes.js";
//   const socket = new Socket("/socket", { params: { user: "ada" } });
//   socket.connect();
//   const channel = socket.channel("room:lobby", {});
//   channel.on("new_msg", (msg) => console.log(msg.body));
//   channel.join().receive("ok", () => channel.push("new_msg", { body: "hi" }));
//
// `Presence` renders the server's presence events the way the official `Presence` does.
//
// Like the official client it sends a heartbeat every 30 s, reconnects with a stepped backoff,
// rejoins every channel (with fresh refs) after a reconnect or a `phx_error`, and drops frames
// that carry the join ref of an earlier join.

const EVENTS = { close: "phx_close", error: "phx_error", join: "phx_join", reply: "phx_reply", leave: "phx_leave" };
const STATES = { closed: "closed", errored: "errored", joined: "joined", joining: "joining", leaving: "leaving" };
const DEFAULT_TIMEOUT = 10000;
const WS_CLOSE_NORMAL = 1000;
const HEADER_LENGTH = 1;
const META_LENGTH = 4;

const closure = (value) => (typeof value === "function" ? value : () => value);

function serializeParams(params, prefix) {
  const parts = [];
  for (const [key, value] of Object.entries(params)) {
    const name = prefix ? `${prefix}[${key}]` : key;
    if (value !== null && typeof value === "object") {
      const nested = serializeParams(value, name);
      if (nested) parts.push(nested);
    } else {
      parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
    }
  }
  return parts.join("&");
}

function appendParams(url, params) {
  const query = serializeParams(params);
  return query ? `${url}${url.includes("?") ? "&" : "?"}${query}` : url;
}

/** Retries a callback after delays computed from the number of tries so far. */
class Timer {
  constructor(callback, timerCalc) {
    this.callback = callback;
    this.timerCalc = timerCalc;
    this.timer = null;
    this.tries = 0;
  }
  reset() {
    this.tries = 0;
    clearTimeout(this.timer);
  }
  scheduleTimeout() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.tries += 1;
      this.callback();
    }, this.timerCalc(this.tries + 1));
  }
}

/** The V2 serializer: JSON arrays for text frames, the binary layout for ArrayBuffer payloads. */
export const Serializer = {
  encode(msg, callback) {
    if (msg.payload instanceof ArrayBuffer) return callback(this.binaryEncode(msg));
    return callback(JSON.stringify([msg.join_ref, msg.ref, msg.topic, msg.event, msg.payload]));
  },
  decode(raw, callback) {
    if (raw instanceof ArrayBuffer) return callback(this.binaryDecode(raw));
    const [join_ref, ref, topic, event, payload] = JSON.parse(raw);
    return callback({ join_ref, ref, topic, event, payload });
  },
  binaryEncode({ join_ref, ref, event, topic, payload }) {
    const text = new TextEncoder();
    const [jr, r, t, e] = [join_ref || "", ref || "", topic, event].map((s) => text.encode(s));
    const meta = HEADER_LENGTH + META_LENGTH + jr.length + r.length + t.length + e.length;
    const bytes = new Uint8Array(meta + payload.byteLength);
    bytes.set([0, jr.length, r.length, t.length, e.length]);
    let offset = HEADER_LENGTH + META_LENGTH;
    for (const part of [jr, r, t, e, new Uint8Array(payload)]) {
      bytes.set(part, offset);
      offset += part.length;
    }
    return bytes.buffer;
  },
  binaryDecode(buffer) {
    const view = new Uint8Array(buffer);
    const text = new TextDecoder();
    const kind = view[0];
    const lengths = kind === 1 ? [...view.slice(1, 5)] : kind === 0 ? [...view.slice(1, 4)] : [...view.slice(1, 3)];
    let offset = 1 + lengths.length;
    const fields = lengths.map((length) => {
      const field = text.decode(view.slice(offset, offset + length));
      offset += length;
      return field;
    });
    const data = buffer.slice(offset);
    if (kind === 0) return { join_ref: fields[0], ref: null, topic: fields[1], event: fields[2], payload: data };
    if (kind === 1) {
      const [join_ref, ref, topic, status] = fields;
      return { join_ref, ref, topic, event: EVENTS.reply, payload: { status, response: data } };
    }
    return { join_ref: null, ref: null, topic: fields[0], event: fields[1], payload: data };
  },
};

/** One message to the server, whose reply is dispatched to `receive` hooks by status. */
export class Push {
  constructor(channel, event, payload, timeout) {
    this.channel = channel;
    this.event = event;
    this.payload = payload || (() => ({}));
    this.timeout = timeout;
    this.receivedResp = null;
    this.timeoutTimer = null;
    this.recHooks = [];
    this.ref = null;
    this.refEvent = null;
  }
  resend(timeout) {
    this.timeout = timeout;
    this.reset();
    this.send();
  }
  send() {
    if (this.hasReceived("timeout")) return;
    this.startTimeout();
    this.channel.socket.push(
      { topic: this.channel.topic, event: this.event, payload: this.payload(), ref: this.ref, join_ref: this.channel.joinRef() },
      this.channel,
    );
  }
  /** Calls `callback(response)` when the reply has `status` ("ok", "error" or "timeout"). */
  receive(status, callback) {
    if (this.hasReceived(status)) callback(this.receivedResp.response);
    this.recHooks.push({ status, callback });
    return this;
  }
  reset() {
    this.cancelRefEvent();
    this.ref = null;
    this.refEvent = null;
    this.receivedResp = null;
  }
  cancelRefEvent() {
    if (this.refEvent) this.channel.off(this.refEvent);
  }
  cancelTimeout() {
    clearTimeout(this.timeoutTimer);
    this.timeoutTimer = null;
  }
  startTimeout() {
    this.cancelTimeout();
    this.cancelRefEvent();
    this.ref = this.channel.socket.makeRef();
    this.refEvent = `chan_reply_${this.ref}`;
    this.channel.on(this.refEvent, (payload) => {
      this.cancelRefEvent();
      this.cancelTimeout();
      this.receivedResp = payload;
      this.recHooks.filter((h) => h.status === payload.status).forEach((h) => h.callback(payload.response));
    });
    this.timeoutTimer = setTimeout(() => this.trigger("timeout", {}), this.timeout);
  }
  hasReceived(status) {
    return this.receivedResp !== null && this.receivedResp.status === status;
  }
  trigger(status, response) {
    this.channel.trigger(this.refEvent, { status, response });
  }
}

/** The client side of one topic: joined once, rejoined by itself after errors. */
export class Channel {
  constructor(topic, params, socket) {
    this.state = STATES.closed;
    this.topic = topic;
    this.params = closure(params || {});
    this.socket = socket;
    this.bindings = [];
    this.bindingRef = 0;
    this.timeout = socket.timeout;
    this.joinedOnce = false;
    this.joinPush = new Push(this, EVENTS.join, this.params, this.timeout);
    this.pushBuffer = [];
    this.rejoinTimer = new Timer(() => this.socket.isConnected() && this.rejoin(), socket.rejoinAfterMs);
    this.stateChangeRefs = [
      socket.onError(() => this.rejoinTimer.reset()),
      socket.onOpen(() => {
        this.rejoinTimer.reset();
        if (this.state === STATES.errored) this.rejoin();
      }),
    ];
    const retry = () => this.socket.isConnected() && this.rejoinTimer.scheduleTimeout();
    this.joinPush.receive("ok", () => {
      this.state = STATES.joined;
      this.rejoinTimer.reset();
      this.pushBuffer.forEach((push) => push.send());
      this.pushBuffer = [];
    });
    this.joinPush.receive("error", () => {
      this.state = STATES.errored;
      retry();
    });
    this.joinPush.receive("timeout", () => {
      new Push(this, EVENTS.leave, () => ({}), this.timeout).send();
      this.state = STATES.errored;
      this.joinPush.reset();
      retry();
    });
    this.on(EVENTS.close, () => {
      this.rejoinTimer.reset();
      this.state = STATES.closed;
      this.socket.remove(this);
    });
    this.on(EVENTS.error, () => {
      if (this.state === STATES.joining) this.joinPush.reset();
      this.state = STATES.errored;
      retry();
    });
    this.on(EVENTS.reply, (payload, ref) => this.trigger(`chan_reply_${ref}`, payload));
  }
  /** Joins the topic; only once per channel. Returns the join push for `receive` hooks. */
  join(timeout = this.timeout) {
    if (this.joinedOnce) throw new Error("tried to join multiple times: join can only be called once per channel");
    this.timeout = timeout;
    this.joinedOnce = true;
    this.rejoin();
    return this.joinPush;
  }
  onClose(callback) {
    return this.on(EVENTS.close, callback);
  }
  onError(callback) {
    return this.on(EVENTS.error, (reason) => callback(reason));
  }
  /** Calls `callback(payload, ref, joinRef)` for every `event`; returns a ref for `off`. */
  on(event, callback) {
    const ref = this.bindingRef++;
    this.bindings.push({ event, ref, callback });
    return ref;
  }
  off(event, ref) {
    this.bindings = this.bindings.filter((b) => !(b.event === event && (ref === undefined || ref === b.ref)));
  }
  canPush() {
    return this.socket.isConnected() && this.state === STATES.joined;
  }
  /** Sends `event`; pushes made before the join completes are sent once it does. */
  push(event, payload = {}, timeout = this.timeout) {
    if (!this.joinedOnce) throw new Error(`tried to push '${event}' to '${this.topic}' before joining`);
    const push = new Push(this, event, () => payload, timeout);
    if (this.canPush()) {
      push.send();
    } else {
      push.startTimeout();
      this.pushBuffer.push(push);
    }
    return push;
  }
  /** Leaves the topic; the channel closes on the server's ok or on timeout. */
  leave(timeout = this.timeout) {
    this.rejoinTimer.reset();
    this.joinPush.cancelTimeout();
    this.state = STATES.leaving;
    const onClose = () => this.trigger(EVENTS.close, "leave");
    const leavePush = new Push(this, EVENTS.leave, () => ({}), timeout);
    leavePush.receive("ok", onClose).receive("timeout", onClose);
    leavePush.send();
    if (!this.canPush()) leavePush.trigger("ok", {});
    return leavePush;
  }
  isMember(topic, joinRef) {
    // A frame of an earlier join of this topic (a late reply, a stale close) is not ours.
    return this.topic === topic && (!joinRef || joinRef === this.joinRef());
  }
  joinRef() {
    return this.joinPush.ref;
  }
  rejoin(timeout = this.timeout) {
    if (this.state === STATES.leaving) return;
    this.socket.leaveOpenTopic(this.topic);
    this.state = STATES.joining;
    this.joinPush.resend(timeout);
  }
  trigger(event, payload, ref, joinRef) {
    for (const binding of this.bindings.filter((b) => b.event === event)) {
      binding.callback(payload, ref, joinRef || this.joinRef());
    }
  }
}

/** A connection to a Fawkes (or Phoenix) socket, multiplexing channels. */
export class Socket {
  constructor(endPoint, opts = {}) {
    this.endPoint = `${endPoint}/websocket`;
    this.params = closure(opts.params || {});
    this.transport = opts.transport || globalThis.WebSocket;
    this.timeout = opts.timeout || DEFAULT_TIMEOUT;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs || 30000;
    this.reconnectAfterMs = opts.reconnectAfterMs || ((tries) => [10, 50, 100, 150, 200, 250, 500, 1000, 2000][tries - 1] || 5000);
    this.rejoinAfterMs = opts.rejoinAfterMs || ((tries) => [1000, 2000, 5000][tries - 1] || 10000);
    this.logger = opts.logger || null;
    this.vsn = opts.vsn || "2.0.0";
    this.channels = [];
    this.sendBuffer = [];
    this.ref = 0;
    this.conn = null;
    this.closeWasClean = false;
    this.heartbeatTimer = null;
    this.pendingHeartbeatRef = null;
    this.stateChangeCallbacks = { open: [], close: [], error: [], message: [] };
    this.reconnectTimer = new Timer(() => this.teardown(() => this.connect()), this.reconnectAfterMs);
  }
  log(kind, msg, data) {
    if (this.logger) this.logger(kind, msg, data);
  }
  endPointURL() {
    const url = appendParams(appendParams(this.endPoint, this.params()), { vsn: this.vsn });
    if (url.charAt(0) !== "/") return url;
    const scheme = globalThis.location.protocol === "https:" ? "wss" : "ws";
    return url.charAt(1) === "/" ? `${scheme}:${url}` : `${scheme}://${globalThis.location.host}${url}`;
  }
  connect() {
    if (this.conn) return;
    this.closeWasClean = false;
    const conn = new this.transport(this.endPointURL());
    conn.binaryType = "arraybuffer";
    this.conn = conn;
    // Events of a connection this socket has since replaced are ignored.
    conn.onopen = () => conn === this.conn && this.onConnOpen();
    conn.onerror = (error) => conn === this.conn && this.onConnError(error);
    conn.onmessage = (event) => conn === this.conn && this.onConnMessage(event.data);
    conn.onclose = (event) => conn === this.conn && this.onConnClose(event);
  }
  /** Closes the connection for good: no reconnect until `connect` is called again. */
  disconnect(callback, code, reason) {
    this.closeWasClean = true;
    this.reconnectTimer.reset();
    this.teardown(callback, code, reason);
  }
  teardown(callback, code, reason) {
    const conn = this.conn;
    if (conn) {
      this.conn = null;
      this.clearHeartbeat();
      const wasOpen = conn.readyState === 1;
      conn.onopen = conn.onerror = conn.onmessage = conn.onclose = null;
      conn.close(code || WS_CLOSE_NORMAL, reason || "");
      if (wasOpen) {
        this.triggerChanError();
        this.stateChangeCallbacks.close.forEach(([, cb]) => cb({ code: code || WS_CLOSE_NORMAL, reason }));
      }
    }
    if (callback) callback();
  }
  onOpen(callback) {
    return this.addCallback("open", callback);
  }
  onClose(callback) {
    return this.addCallback("close", callback);
  }
  onError(callback) {
    return this.addCallback("error", callback);
  }
  onMessage(callback) {
    return this.addCallback("message", callback);
  }
  addCallback(kind, callback) {
    const ref = this.makeRef();
    this.stateChangeCallbacks[kind].push([ref, callback]);
    return ref;
  }
  /** Removes the callbacks registered under `refs` by `onOpen`, `onClose`, `onError`, `onMessage`. */
  off(refs) {
    for (const kind of Object.keys(this.stateChangeCallbacks)) {
      this.stateChangeCallbacks[kind] = this.stateChangeCallbacks[kind].filter(([ref]) => !refs.includes(ref));
    }
  }
  onConnOpen() {
    this.log("transport", `connected to ${this.endPointURL()}`);
    this.flushSendBuffer();
    this.reconnectTimer.reset();
    this.resetHeartbeat();
    this.stateChangeCallbacks.open.forEach(([, cb]) => cb());
  }
  onConnClose(event) {
    this.log("transport", "close", event);
    this.conn = null;
    this.clearHeartbeat();
    this.triggerChanError();
    if (!this.closeWasClean) this.reconnectTimer.scheduleTimeout();
    this.stateChangeCallbacks.close.forEach(([, cb]) => cb(event));
  }
  onConnError(error) {
    this.log("transport", "error", error);
    this.stateChangeCallbacks.error.forEach(([, cb]) => cb(error));
    this.triggerChanError();
  }
  triggerChanError() {
    for (const channel of this.channels) {
      if (![STATES.errored, STATES.leaving, STATES.closed].includes(channel.state)) channel.trigger(EVENTS.error);
    }
  }
  connectionState() {
    return ["connecting", "open", "closing", "closed"][this.conn ? this.conn.readyState : 3];
  }
  isConnected() {
    return this.connectionState() === "open";
  }
  remove(channel) {
    this.off(channel.stateChangeRefs);
    this.channels = this.channels.filter((c) => c !== channel);
  }
  /** A channel for `topic`; call `join()` on it to join. */
  channel(topic, params = {}) {
    const channel = new Channel(topic, params, this);
    this.channels.push(channel);
    return channel;
  }
  push(data, channel) {
    if (this.logger) this.log("push", `${data.topic} ${data.event} (${data.join_ref}, ${data.ref})`, data.payload);
    const send = () => this.encodeAndSend(data);
    if (this.isConnected()) {
      send();
    } else {
      // A push buffered for a join that has since been superseded, or for a channel closed
      // meanwhile, must not go out.
      const current = () => !channel || (data.join_ref === channel.joinRef() && channel.state !== STATES.closed);
      this.sendBuffer.push(() => current() && send());
    }
  }
  encodeAndSend(data) {
    Serializer.encode(data, (frame) => this.conn.send(frame));
  }
  makeRef() {
    this.ref = this.ref + 1 === Number.MAX_SAFE_INTEGER ? 0 : this.ref + 1;
    return this.ref.toString();
  }
  clearHeartbeat() {
    clearTimeout(this.heartbeatTimer);
    this.pendingHeartbeatRef = null;
  }
  resetHeartbeat() {
    this.clearHeartbeat();
    this.heartbeatTimer = setTimeout(() => this.sendHeartbeat(), this.heartbeatIntervalMs);
  }
  sendHeartbeat() {
    if (!this.isConnected()) return;
    if (this.pendingHeartbeatRef) {
      // No reply for a whole interval: the connection is presumed dead.
      this.log("transport", "heartbeat timeout, reconnecting");
      this.teardown(() => this.reconnectTimer.scheduleTimeout(), WS_CLOSE_NORMAL, "heartbeat timeout");
      return;
    }
    this.pendingHeartbeatRef = this.makeRef();
    this.push({ topic: "phoenix", event: "heartbeat", payload: {}, ref: this.pendingHeartbeatRef, join_ref: null });
    this.heartbeatTimer = setTimeout(() => this.sendHeartbeat(), this.heartbeatIntervalMs);
  }
  flushSendBuffer() {
    const buffered = this.sendBuffer;
    this.sendBuffer = [];
    buffered.forEach((send) => send());
  }
  onConnMessage(raw) {
    Serializer.decode(raw, (msg) => {
      const { topic, event, payload, ref, join_ref } = msg;
      if (ref && ref === this.pendingHeartbeatRef) this.pendingHeartbeatRef = null;
      if (this.logger) this.log("receive", `${(payload && payload.status) || ""} ${topic} ${event} ${ref ? `(${ref})` : ""}`, payload);
      // A callback may remove a channel, so iterate over the list as it was.
      for (const channel of [...this.channels]) {
        if (channel.isMember(topic, join_ref)) channel.trigger(event, payload, ref, join_ref);
      }
      this.stateChangeCallbacks.message.forEach(([, cb]) => cb(msg));
    });
  }
  leaveOpenTopic(topic) {
    const open = this.channels.find((c) => c.topic === topic && [STATES.joined, STATES.joining].includes(c.state));
    if (open) open.leave();
  }
}

/**
 * Who is on a channel's topic, from the server's `presence_state` and `presence_diff` events;
 * the same API and merge rules as the official client's `Presence`:
 *
 *   const presence = new Presence(channel);
 *   presence.onSync(() => render(presence.list((id, { metas }) => ({ id, count: metas.length }))));
 *
 * Diffs that arrive before the state of the current join are held back and applied after it.
 */
export class Presence {
  constructor(channel, opts = {}) {
    const events = opts.events || { state: "presence_state", diff: "presence_diff" };
    this.state = {};
    this.pendingDiffs = [];
    this.channel = channel;
    this.joinRef = null;
    this.caller = { onJoin: () => {}, onLeave: () => {}, onSync: () => {} };
    channel.on(events.state, (newState) => {
      const { onJoin, onLeave, onSync } = this.caller;
      this.joinRef = channel.joinRef();
      this.state = Presence.syncState(this.state, newState, onJoin, onLeave);
      for (const diff of this.pendingDiffs) this.state = Presence.syncDiff(this.state, diff, onJoin, onLeave);
      this.pendingDiffs = [];
      onSync();
    });
    channel.on(events.diff, (diff) => {
      const { onJoin, onLeave, onSync } = this.caller;
      if (this.inPendingSyncState()) {
        this.pendingDiffs.push(diff);
      } else {
        this.state = Presence.syncDiff(this.state, diff, onJoin, onLeave);
        onSync();
      }
    });
  }
  onJoin(callback) {
    this.caller.onJoin = callback;
  }
  onLeave(callback) {
    this.caller.onLeave = callback;
  }
  onSync(callback) {
    this.caller.onSync = callback;
  }
  /** `[chooser(key, {metas})]` for every key present. */
  list(chooser) {
    return Presence.list(this.state, chooser);
  }
  inPendingSyncState() {
    return !this.joinRef || this.joinRef !== this.channel.joinRef();
  }
  /** Replaces `state` by `newState`, calling `onJoin`/`onLeave` for what changed. */
  static syncState(state, newState, onJoin, onLeave) {
    const current = clone(state);
    const joins = {};
    const leaves = {};
    for (const key of Object.keys(current)) {
      if (!(key in newState)) leaves[key] = current[key];
    }
    for (const [key, next] of Object.entries(newState)) {
      const before = current[key];
      if (!before) {
        joins[key] = next;
        continue;
      }
      const nextRefs = new Set(next.metas.map((m) => m.phx_ref));
      const beforeRefs = new Set(before.metas.map((m) => m.phx_ref));
      const joined = next.metas.filter((m) => !beforeRefs.has(m.phx_ref));
      const left = before.metas.filter((m) => !nextRefs.has(m.phx_ref));
      if (joined.length > 0) joins[key] = { ...next, metas: joined };
      if (left.length > 0) leaves[key] = { ...clone(before), metas: left };
    }
    return Presence.syncDiff(current, { joins, leaves }, onJoin, onLeave);
  }
  /** Applies one `{joins, leaves}` diff: joins first (merged by `phx_ref`), then leaves. */
  static syncDiff(state, diff, onJoin = () => {}, onLeave = () => {}) {
    const { joins, leaves } = clone(diff);
    for (const [key, joined] of Object.entries(joins)) {
      const before = state[key];
      state[key] = clone(joined);
      if (before) {
        const joinedRefs = new Set(state[key].metas.map((m) => m.phx_ref));
        state[key].metas.unshift(...before.metas.filter((m) => !joinedRefs.has(m.phx_ref)));
      }
      onJoin(key, before, joined);
    }
    for (const [key, left] of Object.entries(leaves)) {
      const before = state[key];
      if (!before) continue;
      const gone = new Set(left.metas.map((m) => m.phx_ref));
      before.metas = before.metas.filter((m) => !gone.has(m.phx_ref));
      onLeave(key, before, left);
      if (before.metas.length === 0) delete state[key];
    }
    return state;
  }
  static list(state, chooser = (key, presence) => presence) {
    return Object.keys(state).map((key) => chooser(key, state[key]));
  }
}

function clone(value) {
  return JSON.parse(JSON.stringify(value));
}
