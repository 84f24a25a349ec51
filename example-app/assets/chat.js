// The chat page: rooms from the JSON API, messages over the `room:*` channels.
//
// Who the visitor is comes from the server: a logged-in page carries the session's name and a
// signed user token in <meta> tags, and the socket presents that token when it connects. The
// login form is a plain HTML form (POST /session with its CSRF token), so signing in, changing
// name and logging out are page loads, not script.

import { Presence, Socket } from "/js/fawkes.js";

const meta = (name) => {
  const tag = document.querySelector(`meta[name="${name}"]`);
  return tag ? tag.content : "";
};
const LOBBY = { id: "lobby", name: "lobby", topic: "room:lobby", stored: false };

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  userChip: $("user-chip"),
  userAvatar: $("user-avatar"),
  userName: $("user-name"),
  rooms: $("rooms"),
  people: $("people"),
  onlineCount: $("online-count"),
  newRoom: $("new-room"),
  newRoomName: $("new-room-name"),
  newRoomError: $("new-room-error"),
  title: $("room-title"),
  subtitle: $("room-subtitle"),
  messages: $("messages"),
  composer: $("composer"),
  body: $("message-body"),
  send: $("send"),
  composerError: $("composer-error"),
  nameDialog: $("name-dialog"),
  nameForm: $("name-form"),
  nameInput: $("name-input"),
  nameError: $("name-error"),
  nameCancel: $("name-cancel"),
  logoutForm: $("logout-form"),
};

const state = {
  name: meta("user-name"),
  token: meta("user-token"),
  rooms: [],
  current: LOBBY,
  channel: null,
  // The messages of the current room, oldest first; `generation` tells late answers about an
  // earlier room apart.
  messages: [],
  generation: 0,
};

// A stable colour per author, so a conversation is easy to scan.
const PALETTE = ["#e11d48", "#db2777", "#9333ea", "#7c3aed", "#4f46e5", "#2563eb", "#0284c7", "#0d9488", "#059669", "#65a30d", "#d97706", "#ea580c"];
function colorFor(name) {
  let hash = 2166136261;
  for (const ch of name) hash = Math.imul(hash ^ ch.codePointAt(0), 16777619) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [...words[0]][0] + [...words[1]][0] : [...(words[0] || "?")][0];
  return letters.toUpperCase();
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function avatar(name, extra = "") {
  return el("span", { class: `avatar ${extra}`.trim(), text: initials(name), style: `background:${colorFor(name)}` });
}

// ---- connection ------------------------------------------------------------------------------

// Only a logged-in page connects, and then the token, not the name, says who it is.
const socket = new Socket("/socket", { params: { token: state.token } });

function setStatus(kind, text) {
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
}
socket.onOpen(() => setStatus("online", "Connected"));
socket.onClose(() => setStatus("connecting", "Reconnecting…"));
socket.onError(() => setStatus("offline", "Offline"));

// ---- identity --------------------------------------------------------------------------------

function showName() {
  ui.userName.textContent = state.name;
  const fresh = avatar(state.name);
  fresh.id = "user-avatar";
  ui.userAvatar.replaceWith(fresh);
  ui.userAvatar = fresh;
  ui.userChip.hidden = false;
  ui.logoutForm.hidden = false;
  // Signed in, the same form renames: a new login under the new name.
  ui.nameCancel.hidden = false;
  $("name-title").textContent = "Change your name";
  $("name-intro").textContent = "Others see it next to the messages you send from now on.";
  $("sign-in").textContent = "Save";
  ui.body.placeholder = placeholder();
}

function placeholder() {
  return state.name ? `Message #${state.current.name} as ${state.name}` : `Message #${state.current.name}`;
}

function askName() {
  // The server fills the field: with the name it refused, or the current one.
  if (!ui.nameError.textContent) ui.nameInput.value = state.name;
  ui.nameDialog.showModal();
  ui.nameInput.focus();
  ui.nameInput.select();
}

ui.nameInput.addEventListener("input", () => {
  ui.nameError.textContent = "";
});
ui.nameForm.addEventListener("submit", (event) => {
  // The server would refuse a blank name too; saying so here saves a round trip.
  if (!ui.nameInput.value.trim()) {
    event.preventDefault();
    ui.nameError.textContent = "Please enter a name.";
    return;
  }
  ui.nameForm.querySelector("button[type=submit]").disabled = true;
});
// Without a name there is nothing to chat as: the dialog stays until one is given.
ui.nameDialog.addEventListener("cancel", (event) => {
  if (!state.name) event.preventDefault();
});
ui.nameCancel.addEventListener("click", () => ui.nameDialog.close());
ui.userChip.addEventListener("click", askName);

// ---- rooms -----------------------------------------------------------------------------------

async function api(path, options = {}) {
  const resp = await fetch(path, {
    ...options,
    headers: { accept: "application/json", "content-type": "application/json" },
  });
  const body = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) throw Object.assign(new Error(`HTTP ${resp.status}`), { status: resp.status, body });
  return body;
}

function errorText(body, fallback) {
  const errors = body && body.errors;
  if (!errors) return fallback;
  if (errors.detail) return errors.detail;
  return Object.entries(errors).map(([field, messages]) => `${field} ${[].concat(messages).join(", ")}`).join("; ");
}

async function loadRooms() {
  try {
    const { data } = await api("/api/rooms");
    state.rooms = data.map((room) => ({ id: String(room.id), name: room.name, topic: `room:${room.id}`, stored: true }));
  } catch (err) {
    console.error("cannot list rooms", err);
  }
  renderRooms();
}

function renderRooms() {
  const items = [LOBBY, ...state.rooms].map((room) => {
    const button = el("button", { class: "room", type: "button", "data-room": room.id, "aria-current": String(room.id === state.current.id) }, [
      el("span", { class: "hash", text: "#" }),
      el("span", { class: "name", text: room.name }),
    ]);
    if (!room.stored) button.append(el("span", { class: "tag", text: "not saved" }));
    button.addEventListener("click", () => selectRoom(room));
    return el("li", {}, [button]);
  });
  if (state.rooms.length === 0) items.push(el("li", { class: "empty", text: "No rooms yet: create one below." }));
  ui.rooms.replaceChildren(...items);
}

// Who is in the current room, on any node: one line per name, with its number of tabs.
function renderPeople(presence) {
  const people = presence ? presence.list((name, { metas }) => ({ name, tabs: metas.length })) : [];
  people.sort((a, b) => a.name.localeCompare(b.name));
  ui.onlineCount.textContent = people.length ? String(people.length) : "";
  const items = people.map(({ name, tabs }) => {
    const children = [avatar(name), el("span", { class: "name", text: name })];
    if (tabs > 1) children.push(el("span", { class: "tabs", text: `${tabs} tabs` }));
    children.push(el("span", { class: "dot", "aria-hidden": "true" }));
    return el("li", { class: name === state.name ? "person me" : "person", "data-user": name }, children);
  });
  if (items.length === 0) items.push(el("li", { class: "empty", text: state.name ? "Connecting…" : "Sign in to see who is here." }));
  ui.people.replaceChildren(...items);
}

ui.newRoom.addEventListener("submit", async (event) => {
  event.preventDefault();
  ui.newRoomError.textContent = "";
  const name = ui.newRoomName.value.trim();
  if (!name) {
    ui.newRoomError.textContent = "Give the room a name.";
    return;
  }
  try {
    const { data } = await api("/api/rooms", { method: "POST", body: JSON.stringify({ room: { name } }) });
    ui.newRoomName.value = "";
    await loadRooms();
    selectRoom(state.rooms.find((room) => room.id === String(data.id)));
  } catch (err) {
    ui.newRoomError.textContent = errorText(err.body, "Could not create the room.");
  }
});
window.addEventListener("focus", loadRooms);

// ---- messages --------------------------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "short", day: "numeric" });

function renderMessages() {
  if (state.messages.length === 0) {
    const text = state.current.stored ? "No messages yet. Start the conversation!" : "Say hello: lobby messages reach everyone here now, and are not saved.";
    ui.messages.replaceChildren(el("li", { class: "notice", text }));
    return;
  }
  const items = [];
  let previous = null;
  for (const msg of state.messages) {
    const at = new Date(msg.inserted_at);
    const day = dayFormat.format(at);
    if (!previous || dayFormat.format(new Date(previous.inserted_at)) !== day) items.push(el("li", { class: "day", text: day }));
    // Messages from one author within a few minutes read as one block.
    const continued = previous && previous.author === msg.author && at - new Date(previous.inserted_at) < 5 * 60 * 1000;
    const classes = ["message", msg.author === state.name ? "mine" : "", continued ? "continued" : ""].join(" ").trim();
    items.push(
      el("li", { class: classes, "data-author": msg.author }, [
        avatar(msg.author, "large"),
        el("div", { class: "meta" }, [el("span", { class: "author", text: msg.author }), el("time", { datetime: msg.inserted_at, text: timeFormat.format(at) })]),
        el("p", { class: "body", text: msg.body }),
      ]),
    );
    previous = msg;
  }
  const atBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
  ui.messages.replaceChildren(...items);
  if (atBottom || previous.author === state.name) ui.messages.scrollTop = ui.messages.scrollHeight;
}

function addMessages(incoming) {
  // History and live messages can overlap around the join: stored messages are kept once by id.
  const seen = new Set(state.messages.filter((m) => m.id !== undefined).map((m) => m.id));
  const fresh = incoming.filter((m) => m.id === undefined || !seen.has(m.id));
  state.messages = [...state.messages, ...fresh].sort((a, b) => (a.inserted_at < b.inserted_at ? -1 : a.inserted_at > b.inserted_at ? 1 : (a.id || 0) - (b.id || 0)));
  renderMessages();
}

function selectRoom(room) {
  if (!room) return;
  if (state.channel) state.channel.leave();
  const generation = ++state.generation;
  state.current = room;
  state.messages = [];
  history.replaceState(null, "", room.stored ? `#room-${room.id}` : "#lobby");
  ui.title.textContent = `# ${room.name}`;
  ui.subtitle.textContent = room.stored ? "Messages are saved; the last 100 are shown." : "Everyone online, nothing saved.";
  ui.body.placeholder = placeholder();
  ui.composerError.textContent = "";
  renderRooms();
  renderPeople(null);
  if (!state.name) {
    // Signed out: the socket stays closed, so there is nothing to load yet.
    ui.messages.replaceChildren(el("li", { class: "notice", text: "Sign in to join the conversation." }));
    return;
  }
  ui.messages.replaceChildren(el("li", { class: "notice", text: "Loading…" }));

  const channel = socket.channel(room.topic, {});
  state.channel = channel;
  channel.on("new_msg", (msg) => generation === state.generation && addMessages([msg]));
  const presence = new Presence(channel);
  presence.onSync(() => generation === state.generation && renderPeople(presence));
  channel
    .join()
    .receive("ok", async () => {
      if (!room.stored) return generation === state.generation && renderMessages();
      try {
        const { data } = await api(`/api/rooms/${room.id}/messages`);
        if (generation === state.generation) addMessages(data);
      } catch (err) {
        if (generation === state.generation) ui.composerError.textContent = "Could not load earlier messages.";
      }
    })
    .receive("error", (resp) => {
      if (generation !== state.generation) return;
      ui.messages.replaceChildren(el("li", { class: "notice", text: `Cannot open this room: ${(resp && resp.reason) || "unknown error"}.` }));
    });
  ui.body.focus();
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const body = ui.body.value.trim();
  if (!body || !state.channel) return;
  ui.composerError.textContent = "";
  ui.send.disabled = true;
  const done = () => {
    ui.send.disabled = false;
    ui.body.focus();
  };
  state.channel
    .push("new_msg", { author: state.name, body })
    .receive("ok", () => {
      ui.body.value = "";
      done();
    })
    .receive("error", (resp) => {
      ui.composerError.textContent = errorText(resp, "The message was refused.");
      done();
    })
    .receive("timeout", () => {
      ui.composerError.textContent = "Not sent: the server did not answer in time.";
      done();
    });
});

// ---- start -----------------------------------------------------------------------------------

async function start() {
  // A refused login is answered at /session; reloading that would post the form again.
  if (location.pathname !== "/") history.replaceState(null, "", `/${location.hash}`);
  await loadRooms();
  const wanted = location.hash.match(/^#room-(\d+)$/);
  selectRoom((wanted && state.rooms.find((room) => room.id === wanted[1])) || LOBBY);
  if (state.name) {
    showName();
    socket.connect();
  } else {
    setStatus("idle", "Signed out");
  }
  if (!state.name || ui.nameError.textContent) askName();
}

start();
