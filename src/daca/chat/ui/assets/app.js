// The chat page of the daca chat service: plain JavaScript, no build step, no external asset.
//
// It talks only to the service that served it: POST /chat/stream (Server-Sent Events read from
// a fetch body), GET /me, and the /memories/{user_id} routes. In production mode it sends the
// bearer token typed into the token field, kept in sessionStorage (this tab only). Everything a
// user or the model wrote is inserted as text (textContent), never as HTML.

const REFRESH_MS = 2000; // the memory panel's polling interval, stated on the page

const $ = (id) => document.getElementById(id);

const state = {
  mode: null, // "local" | "production"
  userId: "",
  token: sessionStorage.getItem("daca.token") || "",
  sessionId: null,
  streaming: false,
  refreshing: false,
  shown: {}, // the last rendered JSON of each panel part, so an unchanged part is not redrawn
};

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function detailOf(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((issue) => `${(issue.loc || []).join(".")}: ${issue.msg}`).join("; ");
  }
  return `The service answered ${status}.`;
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const answer = await response.json().catch(() => null);
    throw new ApiError(response.status, detailOf(answer, response.status));
  }
  return response.status === 204 ? null : response.json();
}

const userPath = (suffix = "") => `/memories/${encodeURIComponent(state.userId)}${suffix}`;

function notice(text) {
  const box = $("notice");
  box.textContent = text || "";
  box.hidden = !text;
}

function status(text) {
  $("status").textContent = text || "";
}

function when(timestamp) {
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? timestamp : date.toLocaleString();
}

function element(tag, { text, className, attrs } = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

// ---- who is chatting ----

async function identify() {
  try {
    const me = await api("/me");
    state.mode = me.mode;
    if (me.mode === "production") {
      state.userId = me.user_id;
    } else {
      state.userId = state.userId || localStorage.getItem("daca.user") || "";
    }
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    state.mode = "production"; // only production mode asks for a token
    state.userId = "";
    if (state.token) notice(`The token was refused: ${error.message}`);
    forgetToken();
  }
  showIdentity();
}

function forgetToken() {
  state.token = "";
  sessionStorage.removeItem("daca.token");
}

function showIdentity() {
  const production = state.mode === "production";
  const user = $("user-id");
  $("token-box").hidden = !production;
  user.readOnly = production;
  user.required = !production;
  // Keep what someone typed while the page was still asking who they are.
  if (production || state.userId) user.value = state.userId;
  user.placeholder = production ? "from your token" : "your user id";
  $("token").required = production && !state.userId;
  $("use-user").textContent = production ? (state.userId ? "Change token" : "Sign in") : "Start";
  document.body.dataset.ready = state.userId ? "yes" : "no";
  $("text").disabled = !state.userId;
  $("send").disabled = !state.userId;
  if (!state.userId) {
    status(production ? "Enter your token to chat." : "Enter a user id to chat.");
  } else {
    status("");
  }
}

async function onWho(event) {
  event.preventDefault();
  notice("");
  if (state.mode === "production") {
    state.token = $("token").value.trim();
    $("token").value = "";
    if (state.token) sessionStorage.setItem("daca.token", state.token);
    await identify();
  } else {
    const user = $("user-id");
    if (!user.reportValidity()) return;
    state.userId = user.value.trim();
    localStorage.setItem("daca.user", state.userId);
    showIdentity();
  }
  if (state.userId) {
    state.shown = {};
    const remembered = localStorage.getItem(`daca.session.${state.userId}`);
    await openSession(remembered || null);
    refresh();
  }
}

// ---- sessions ----

function rememberSession(sessionId) {
  state.sessionId = sessionId;
  const key = `daca.session.${state.userId}`;
  if (sessionId) localStorage.setItem(key, sessionId);
  else localStorage.removeItem(key);
  $("session-label").textContent = sessionId ? `Session ${sessionId.slice(0, 8)}` : "New session";
  for (const button of $("session-list").querySelectorAll("li[data-session-id] button")) {
    const current = button.parentElement.dataset.sessionId === sessionId;
    button.setAttribute("aria-current", current ? "true" : "false");
  }
}

async function openSession(sessionId) {
  $("messages").replaceChildren();
  $("retrieved").replaceChildren();
  state.shown.retrieved = undefined;
  rememberSession(sessionId);
  if (!sessionId) {
    renderHistory({ history: [], total_entries: 0 });
    return;
  }
  try {
    const history = await api(userPath(`/sessions/${encodeURIComponent(sessionId)}`));
    for (const entry of history.history) addMessage(entry.role, entry.content, entry.timestamp);
    renderHistory(history);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      rememberSession(null); // forgotten, expired, or another user's
      renderHistory({ history: [], total_entries: 0 });
      return;
    }
    notice(`Could not open the session: ${error.message}`);
  }
  closePanels();
}

function renderSessions(sessions) {
  if (!changed("sessions", sessions)) return;
  const list = $("session-list");
  list.replaceChildren(
    ...sessions.map((session) => {
      const item = element("li", { attrs: { "data-session-id": session.session_id } });
      const button = element("button", {
        className: "session",
        attrs: {
          type: "button",
          "aria-current": session.session_id === state.sessionId ? "true" : "false",
        },
      });
      button.append(
        element("span", { text: session.title, className: "session-title" }),
        element("span", {
          text: `${when(session.last_at)} · ${session.turns} turn${session.turns === 1 ? "" : "s"}`,
          className: "meta",
        }),
      );
      button.addEventListener("click", () => openSession(session.session_id));
      item.append(button);
      return item;
    }),
  );
  if (!sessions.length) list.append(element("li", { text: "None yet.", className: "empty" }));
}

// ---- the conversation ----

function addMessage(role, text, timestamp) {
  const item = element("li", { className: `message ${role}` });
  item.append(
    element("span", { text: role === "user" ? "You" : "Agent", className: "who-said" }),
    element("p", { text, className: "text" }),
  );
  if (timestamp) item.title = when(timestamp);
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function* sseEvents(buffer) {
  // Complete events in ``buffer.text``; the unfinished tail stays there.
  let end;
  while ((end = buffer.text.indexOf("\n\n")) >= 0) {
    const block = buffer.text.slice(0, end);
    buffer.text = buffer.text.slice(end + 2);
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (data.length) yield [name, JSON.parse(data.join("\n"))];
  }
}

async function send(text) {
  const body = { user_id: state.userId, text };
  if (state.sessionId) body.metadata = { session_id: state.sessionId };
  const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  addMessage("user", text);
  const reply = addMessage("assistant", "");
  reply.dataset.state = "waiting";
  const replyText = reply.querySelector(".text");
  state.streaming = true;
  $("send").disabled = true;
  status("The agent is answering…");
  try {
    const response = await fetch("/chat/stream", {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      const answer = await response.json().catch(() => null);
      throw new ApiError(response.status, detailOf(answer, response.status));
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const buffer = { text: "" };
    let finished = false;
    while (!finished) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer.text += value.replace(/\r\n/g, "\n");
      for (const [name, data] of sseEvents(buffer)) {
        finished = onStreamEvent(name, data, reply, replyText) || finished;
      }
    }
    if (!finished) throw new Error("The stream ended before the reply was complete.");
    status("");
  } catch (error) {
    reply.dataset.state = "failed";
    reply.classList.add("failed");
    const message = error instanceof ApiError ? error.message : `${error.message}`;
    reply.append(element("p", { text: `Not answered: ${message}`, className: "error" }));
    status("The message was not answered; nothing was stored.");
  } finally {
    state.streaming = false;
    $("send").disabled = !state.userId;
    refresh();
  }
}

function onStreamEvent(name, data, reply, replyText) {
  // Handle one event of the stream; true once the turn is over.
  if (name === "memories") {
    renderRetrieved(data.memories);
  } else if (name === "delta") {
    reply.dataset.state = "streaming";
    replyText.textContent += data.text;
  } else if (name === "tool_call") {
    reply.insertBefore(
      element("p", { text: `Used tool ${data.name}`, className: "tool" }),
      replyText,
    );
  } else if (name === "done") {
    replyText.textContent = data.reply;
    reply.dataset.state = "done";
    reply.title = when(data.metadata.timestamp);
    if (data.metadata.session_id !== state.sessionId) rememberSession(data.metadata.session_id);
    return true;
  } else if (name === "error") {
    throw new ApiError(data.status, data.detail);
  }
  return false;
}

async function onSend(event) {
  event.preventDefault();
  const box = $("text");
  const text = box.value;
  if (!text.trim() || state.streaming || !state.userId) return;
  box.value = "";
  await send(text);
  box.focus();
}

function onKey(event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
}

// ---- the memory panel ----

function changed(part, value) {
  const json = JSON.stringify(value);
  if (state.shown[part] === json) return false;
  state.shown[part] = json;
  return true;
}

function renderMemory(memory) {
  if (!changed("memory", memory)) return;
  $("summary").textContent = memory.user_summary || "Nothing yet.";
  const facts = $("facts");
  facts.replaceChildren(
    ...memory.facts.map((fact) => {
      const item = element("li", { className: "fact", attrs: { "data-fact-id": fact.fact_id } });
      const origin = `said ${when(fact.timestamp)}, session ${fact.session_id.slice(0, 8)}`;
      const forget = element("button", {
        text: "Forget",
        className: "small danger",
        attrs: { type: "button", "aria-label": `Forget the fact: ${fact.text}` },
      });
      forget.addEventListener("click", () => forgetFact(fact));
      item.append(
        element("p", { text: fact.text, className: "text" }),
        element("span", { text: origin, className: "meta" }),
        forget,
      );
      return item;
    }),
  );
  if (!memory.facts.length) facts.append(element("li", { text: "None yet.", className: "empty" }));
}

function renderRetrieved(memories) {
  if (!changed("retrieved", memories)) return;
  const list = $("retrieved");
  list.replaceChildren(
    ...memories.map((found) => {
      const item = element("li", { className: `recalled ${found.kind}` });
      item.append(
        element("span", { text: found.kind, className: "badge" }),
        element("p", { text: found.text, className: "text" }),
        element("span", {
          text: `${when(found.timestamp)} · session ${found.session_id.slice(0, 8)}`,
          className: "meta",
        }),
      );
      return item;
    }),
  );
  if (!memories.length) list.append(element("li", { text: "Nothing.", className: "empty" }));
}

function renderHistory(history) {
  if (!changed("history", history)) return;
  const list = $("history");
  list.replaceChildren(
    ...history.history.map((entry) =>
      element("li", { text: `${entry.role}: ${entry.content}`, className: entry.role }),
    ),
  );
  if (!history.history.length) list.append(element("li", { text: "Empty.", className: "empty" }));
}

async function refresh() {
  // One round of the panel's reads; skipped while one is still running or nobody is signed in.
  if (state.refreshing || !state.userId) return;
  state.refreshing = true;
  const user = state.userId;
  const session = state.sessionId;
  try {
    const [memory, sessions, history] = await Promise.all([
      api(userPath()),
      api(userPath("/sessions")),
      session ? api(userPath(`/sessions/${encodeURIComponent(session)}`)).catch(() => null) : null,
    ]);
    if (user !== state.userId) return; // the user changed meanwhile
    renderMemory(memory);
    renderSessions(sessions.sessions);
    if (history && session === state.sessionId) renderHistory(history);
    document.body.dataset.refreshed = String(Date.now());
    notice("");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      forgetToken();
      await identify();
    }
    notice(`The memory panel could not be refreshed: ${error.message}`);
  } finally {
    state.refreshing = false;
  }
}

// ---- forgetting, after a confirm ----

function confirmed(question) {
  const dialog = $("confirm");
  $("confirm-text").textContent = question;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

async function forgetFact(fact) {
  if (!(await confirmed(`Forget "${fact.text}"?`))) return;
  try {
    await api(userPath(`/facts/${encodeURIComponent(fact.fact_id)}`), { method: "DELETE" });
    status("The fact is forgotten.");
  } catch (error) {
    notice(`Could not forget the fact: ${error.message}`);
  }
  refresh();
}

async function forgetAll() {
  if (!state.userId) return;
  const question =
    `Forget everything about ${state.userId}: the summary, every fact and every session? ` +
    "This cannot be undone.";
  if (!(await confirmed(question))) return;
  try {
    const answer = await api(userPath(), { method: "DELETE" });
    const count = answer.sessions.length;
    status(`Forgotten: ${count} session${count === 1 ? "" : "s"} and everything else.`);
    state.shown = {};
    await openSession(null);
  } catch (error) {
    notice(`Could not forget: ${error.message}`);
  }
  refresh();
}

// ---- narrow screens: the side panels open over the chat ----

function togglePanel(id, buttonId) {
  const panel = $(id);
  const open = !panel.classList.contains("open");
  closePanels();
  panel.classList.toggle("open", open);
  $(buttonId).setAttribute("aria-expanded", String(open));
}

function closePanels() {
  for (const [id, buttonId] of [
    ["sessions", "toggle-sessions"],
    ["memory", "toggle-memory"],
  ]) {
    $(id).classList.remove("open");
    $(buttonId).setAttribute("aria-expanded", "false");
  }
}

// ---- start ----

async function start() {
  $("who").addEventListener("submit", (event) => onWho(event).catch(showFailure));
  $("composer").addEventListener("submit", (event) => onSend(event).catch(showFailure));
  $("text").addEventListener("keydown", onKey);
  $("new-session").addEventListener("click", () => openSession(null));
  $("forget-all").addEventListener("click", () => forgetAll().catch(showFailure));
  $("toggle-sessions").addEventListener("click", () => togglePanel("sessions", "toggle-sessions"));
  $("toggle-memory").addEventListener("click", () => togglePanel("memory", "toggle-memory"));
  $("refresh-hint").textContent =
    `Refreshed every ${REFRESH_MS / 1000} seconds while this page is visible.`;
  await identify();
  if (state.userId) {
    await openSession(localStorage.getItem(`daca.session.${state.userId}`));
    await refresh();
  }
  setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, REFRESH_MS);
  document.body.dataset.started = "yes";
}

function showFailure(error) {
  notice(`Something went wrong: ${error.message}`);
}

start().catch(showFailure);
