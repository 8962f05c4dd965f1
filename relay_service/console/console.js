// The agent console: sign in, see the queue, answer a call over WebRTC, hear and speak,
// follow the conversation, wrap up, look back at the history.
// Plain browser JavaScript, no build step; works in Chromium and Firefox.
"use strict";

const $ = (id) => document.getElementById(id);
const relay = (window.relay = {
  pc: null, callId: null, ws: null, ended: [], me: null,
  calls: new Map(), clockOffset: 0, ringing: false, notified: new Set(),
});
const BASE_TITLE = document.title;
const KEY_GAP_MS = 3000;  // keys pressed closer together than this form one entry

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    ...options,
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: text }; }
  return { ok: response.ok, status: response.status, body };
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function setStatus(text) { $("status").textContent = text; }

// -- words and times ---------------------------------------------------------------------

function phone(number) { return number ? "+" + String(number).replace(/^\+/, "") : ""; }
function callerName(call) { return call.name || phone(call.number || call.from); }
function directionWords(call) {
  return call.direction === "BUSINESS_INITIATED" ? "Outgoing" : "Incoming";
}
function clock(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  const mmss = String(m).padStart(h ? 2 : 1, "0") + ":" + String(s).padStart(2, "0");
  return h ? h + ":" + mmss : mmss;
}
// Stored times are UTC; some come without a zone.
function parseTime(value) {
  if (typeof value === "number") return new Date(value * 1000);
  return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : value + "Z");
}
function localTime(value) {
  return parseTime(value).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
function localDateTime(value) {
  const d = parseTime(value);
  return d.toLocaleDateString([], { day: "numeric", month: "short" }) + " " +
    d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
function serverNow() { return Date.now() / 1000 + relay.clockOffset; }
function speakerWords(call, speaker) {
  if (speaker === "caller") return call && call.name ? call.name : "Caller";
  if (speaker === "assistant") return "Assistant";
  if (speaker === "agent") return (call && call.agent) || "Agent";
  return speaker;
}
function keysWords(digits) { return digits.replace(/([#*])/g, " $1 ").replace(/\s+/g, " ").trim(); }

// What a tool did, as a sentence (never raw JSON).
function toolWords(name, args, output) {
  let result = null;
  try { result = JSON.parse(output); } catch (e) { result = null; }
  if (name === "lookup_case") {
    const ref = (args && args.reference) || (result && result.reference) || "?";
    if (result && result.found) return "Looked up case " + ref + ": " + result.status;
    if (result && result.found === false) return "Looked up case " + ref + ": not found";
    return "Looked up case " + ref + (result && result.error ? ": failed (" + result.error + ")" : "");
  }
  if (name === "transfer_to_human") {
    return "Handed the call to a person: " + ((args && args.reason) || "no reason given");
  }
  const argText = Object.entries(args || {}).map(([k, v]) => k + " " + v).join(", ");
  const outText = result && typeof result === "object"
    ? Object.entries(result).map(([k, v]) => k + " " + v).join(", ") : String(output);
  return "Ran " + name.replace(/_/g, " ") + (argText ? " (" + argText + ")" : "") + ": " + outText;
}

// The AI legs of a call as a small indicator: class and short label, full status as a tooltip.
function aiIndicator(node, ai) {
  const legs = Object.entries(ai || {});
  node.hidden = legs.length === 0;
  if (!legs.length) return;
  const running = legs.filter(([, s]) => s === "running").map(([leg]) => leg);
  const failed = legs.filter(([, s]) => s.startsWith("stopped:"));
  let state = "off", label = "AI off";
  if (running.includes("assistant")) { state = "running"; label = "AI on"; }
  else if (failed.some(([leg]) => leg === "assistant")) { state = "failed"; label = "AI failed"; }
  else if (running.length) { state = "running"; label = "Transcribing"; }
  else if (failed.length) { state = "failed"; label = "AI failed"; }
  node.className = "ai-indicator ai-" + state;
  node.textContent = label;
  node.title = legs.map(([leg, s]) => leg + ": " + s).join("\n");
}

// -- sign-in -------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  unlockSound();  // a click: the moment a page may start audio and ask for notifications
  if (window.Notification && Notification.permission === "default") Notification.requestPermission();
  const result = await api("/api/login", {
    method: "POST",
    body: JSON.stringify({ name: $("name").value, password: $("password").value }),
  });
  if (!result.ok) { $("signin-error").textContent = (result.body && result.body.error) || "Sign-in failed"; return; }
  const me = await api("/api/me");
  start(me.ok ? me.body : { name: result.body.name });
}

function start(me) {
  relay.me = me;
  $("who").textContent = "Signed in as " + me.name;
  $("signin").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
  $("ring-switch").hidden = false;
  $("simulator").hidden = !me.simulator;
  $("supervision").hidden = !me.supervisor;
  if (me.supervisor) $("who").textContent += " (supervisor)";
  $("ring-toggle").checked = localStorage.getItem("relay.ring") !== "off";
  const codes = $("wrapup-code");
  codes.replaceChildren(el("option", { value: "" }, "Choose…"),
    ...(me.wrap_up_codes || []).map((c) => el("option", { value: c }, c)));
  updateSoundHint();
  openSocket();
  loadHistory();
}

function openSocket() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(scheme + "//" + location.host + "/api/ws");
  relay.ws = ws;
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = () => { if (relay.ws === ws) setStatus("Disconnected from the service; reload the page."); };
}

function onMessage(message) {
  if (message.type === "calls") renderCalls(message);
  else if (message.type === "answer") onAnswer(message);
  else if (message.type === "dtmf") addKey(message);
  else if (message.type === "keys_sent") addSentKeys(message);
  else if (message.type === "transcript") onTranscript(message);
  else if (message.type === "transcript_history") {
    for (const s of message.segments) addLine(message.call_id, "seg speaker-" + s.speaker, s.at, speakerWords(relay.calls.get(message.call_id), s.speaker), s.text);
  } else if (message.type === "toolcall") {
    addLine(message.call_id, "tool", message.at, "Assistant", toolWords(message.name, message.arguments, message.output));
  } else if (message.type === "handed_back") {
    setStatus("Handed back to the assistant");
    cleanup();
  } else if (message.type === "transferred") {
    setStatus("Transferred to " + message.to);
    relay.ended.push(message.call_id);
    const call = relay.currentCall;
    cleanup();
    if (call && call.db_id) showWrapUp(call);
  } else if (message.type === "ended") onEnded(message);
  else if (message.type === "quality") renderQuality(message.calls);
  else if (message.type === "listen_answer") onListenAnswer(message);
  else if (message.type === "listening" && !message.on) stopListening(false);
  else if (message.type === "error") {
    setStatus("Error: " + message.message);
    if (relay.pc && !relay.pc.remoteDescription) cleanup();  // our pending leg was refused
    if (relay.listenPc && !relay.listenPc.remoteDescription) stopListening(false);
  }
}

// -- the queue -----------------------------------------------------------------------------

function renderCalls(message) {
  if (message.now) relay.clockOffset = message.now - Date.now() / 1000;
  if (message.online) relay.online = message.online;
  // A call transferred to a named agent waits for that agent only.
  const calls = message.calls.map((c) => ({
    ...c, needs_agent: c.needs_agent && (!c.transfer_to || c.transfer_to === relay.me.name),
  }));
  relay.calls = new Map(calls.map((c) => [c.id, c]));
  // Calls waiting for a person first, longest wait first; then the others, oldest first.
  calls.sort((a, b) => (b.needs_agent - a.needs_agent) ||
    (a.needs_agent ? a.waiting_since - b.waiting_since : a.started - b.started));
  $("queue").replaceChildren(...calls.map(callCard));
  $("no-calls").hidden = calls.length > 0;
  const waiting = calls.filter((c) => c.needs_agent).length;
  $("queue-count").textContent = waiting ? waiting + " waiting" : "";
  for (const call of calls) updateTranscriptHeader(call);
  renderCurrent();
  renderSimulatorCalls(calls);
  updateAlerting(calls.filter((c) => c.needs_agent));
  tick();
}

function callCard(call) {
  const mine = call.id === relay.callId;
  const ai = el("span", { className: "ai-indicator" });
  aiIndicator(ai, call.ai);
  const actions = el("div", { className: "actions" });
  const answerable = ["ringing", "prerecorded", "waiting", "assistant"].includes(call.state);
  const forMe = !call.transfer_to || call.transfer_to === relay.me.name;
  if (!call.agent && !relay.callId && answerable && forMe) {
    const takeover = call.state === "assistant";  // answering takes the call over from the assistant
    actions.append(el("button", {
      className: takeover ? "answer takeover" : "answer primary",
      onclick: () => answer(call),
    }, takeover ? "Take over" : "Answer"));
  }
  return el("li", {
    className: "call-card" + (call.needs_agent ? " needs-agent" : "") + (mine ? " mine" : ""),
    dataset: { callId: call.id },
  },
  el("div", { className: "who" },
    el("strong", { className: "caller-name" }, callerName(call)),
    call.name ? el("span", { className: "number" }, phone(call.number)) : null),
  el("div", { className: "meta" },
    el("span", { className: "direction dir-" + (call.direction === "BUSINESS_INITIATED" ? "out" : "in") }, directionWords(call)),
    el("span", { className: "state state-" + call.state }, call.state_words || call.state),
    ai),
  el("div", { className: "timers" },
    el("span", { className: "timer", dataset: { since: call.state_since, label: "in state" } }),
    call.needs_agent ? el("span", { className: "timer wait", dataset: { since: call.waiting_since, label: "waiting" } }) : null),
  call.handover && call.needs_agent ? el("p", { className: "handover-preview" }, call.handover) : null,
  actions);
}

// Every second: the timers count on without waiting for the service.
function tick() {
  for (const node of document.querySelectorAll(".timer[data-since]")) {
    const seconds = serverNow() - Number(node.dataset.since);
    node.textContent = (node.dataset.label ? node.dataset.label + " " : "") + clock(seconds);
  }
}
setInterval(tick, 1000);

// -- alerting: ring, title, notification ----------------------------------------------------

const ringer = (relay.ringer = { ctx: null, analyser: null, timer: null });

function unlockSound() {
  try {
    if (!ringer.ctx) {
      ringer.ctx = new (window.AudioContext || window.webkitAudioContext)();
      ringer.analyser = ringer.ctx.createAnalyser();
      ringer.analyser.fftSize = 1024;
      ringer.analyser.connect(ringer.ctx.destination);
    }
    if (ringer.ctx.state === "suspended") ringer.ctx.resume().then(updateSoundHint);
  } catch (e) { /* no WebAudio: the title and notifications still alert */ }
  updateSoundHint();
}

function updateSoundHint() {
  const blocked = !ringer.ctx || ringer.ctx.state !== "running";
  $("enable-sound").hidden = !relay.me || !blocked;
}

// One ring: two short two-tone bursts.
function ringBurst() {
  if (!ringer.ctx || !$("ring-toggle").checked || relay.callId) return;
  const ctx = ringer.ctx, t0 = ctx.currentTime;
  for (const [offset, freq] of [[0, 660], [0, 880], [0.55, 660], [0.55, 880]]) {
    const osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0, t0 + offset);
    gain.gain.linearRampToValueAtTime(0.15, t0 + offset + 0.03);
    gain.gain.setValueAtTime(0.15, t0 + offset + 0.37);
    gain.gain.linearRampToValueAtTime(0, t0 + offset + 0.4);
    osc.connect(gain).connect(ringer.analyser);
    osc.start(t0 + offset);
    osc.stop(t0 + offset + 0.42);
  }
}

// The loudest sample the ring is producing right now (0 when silent); tests listen with it.
relay.ringLevel = function () {
  if (!ringer.analyser) return 0;
  const samples = new Float32Array(ringer.analyser.fftSize);
  ringer.analyser.getFloatTimeDomainData(samples);
  return samples.reduce((max, v) => Math.max(max, Math.abs(v)), 0);
};

function updateAlerting(waiting) {
  relay.ringing = waiting.length > 0;
  if (relay.ringing && !ringer.timer) {
    ringBurst();
    ringer.timer = setInterval(ringBurst, 2500);
    ringer.flash = setInterval(flashTitle, 1000);
  } else if (!relay.ringing && ringer.timer) {
    clearInterval(ringer.timer);
    clearInterval(ringer.flash);
    ringer.timer = ringer.flash = null;
    document.title = BASE_TITLE;
  }
  relay.waitingTitle = waiting.length === 1
    ? "☎ " + callerName(waiting[0]) + " is waiting"
    : "☎ " + waiting.length + " calls waiting";
  for (const call of waiting) {
    if (relay.notified.has(call.id)) continue;
    relay.notified.add(call.id);
    if (document.hidden && window.Notification && Notification.permission === "granted") {
      const note = new Notification("Call waiting: " + callerName(call), {
        body: (call.state_words || "") + (call.handover ? "\n" + call.handover : ""),
        tag: call.id,
      });
      note.onclick = () => { window.focus(); note.close(); };
    }
  }
}

function flashTitle() {
  document.title = document.title === BASE_TITLE ? relay.waitingTitle : BASE_TITLE;
}

// -- the call you are on ----------------------------------------------------------------------

function renderCurrent() {
  const call = relay.calls.get(relay.callId);
  if (!call) return;
  relay.currentCall = call;
  $("current-caller").textContent = callerName(call);
  $("current-direction").textContent = directionWords(call) + " call";
  $("current-number").textContent = phone(call.number);
  const state = $("current-state");
  state.textContent = call.state_words || call.state;
  state.className = "state state-" + call.state;
  state.dataset.state = call.state;
  const timer = $("current-timer");
  timer.dataset.since = call.state_since;
  timer.dataset.label = "for";
  aiIndicator($("current-ai"), call.ai);
  // Only what can work now: the service lists the controls the call's state allows.
  const can = new Set(call.controls || []);
  $("handback").hidden = !(relay.me.assistant && can.has("handback"));
  $("hold").hidden = !can.has("hold");
  $("resume").hidden = !can.has("resume");
  $("keypad-toggle").hidden = !can.has("keys");
  if (!can.has("keys")) showKeypad(false);
  const others = (relay.online || []).filter((n) => n !== relay.me.name);
  $("transfer-wrap").hidden = !can.has("transfer") || others.length === 0;
  const target = $("transfer-to"), chosen = target.value;
  target.replaceChildren(...others.map((n) => el("option", { value: n }, n)));
  if (others.includes(chosen)) target.value = chosen;
}

function control(type, extra = {}) {
  if (relay.callId) relay.ws.send(JSON.stringify({ type, call_id: relay.callId, ...extra }));
}

function showKeypad(open) {
  $("keypad").hidden = !open;
  $("keypad-toggle").setAttribute("aria-expanded", String(open));
  $("keypad-toggle").classList.toggle("active", open);
}

function pressKey(digit) {
  control("keys", { digits: digit });
  $("keys-sent").textContent = keysWords($("keys-sent").textContent.replace(/ /g, "") + digit);
}

function gatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs);
  });
}

function answer(call) {
  relay.callId = call.id;
  $("current-caller").textContent = callerName(call);
  $("current-number").textContent = phone(call.number);
  openLeg({ type: "answer", call_id: call.id });
  renderCalls({ calls: [...relay.calls.values()] });
}

function dial(event) {
  event.preventDefault();
  if (relay.pc) return;
  relay.callId = null;
  $("current-caller").textContent = phone($("dial-to").value);
  $("current-direction").textContent = "Outgoing call";
  $("current-number").textContent = phone($("dial-to").value);
  $("current-state").textContent = "Calling…";
  openLeg({ type: "dial", to: $("dial-to").value });
}

// The browser leg: our offer with every candidate (no trickle), answered by the service.
async function openLeg(request) {
  $("current").hidden = false;
  $("wrapup").hidden = true;
  setMuted(false);
  setStatus("Connecting…");
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const pc = new RTCPeerConnection({ iceServers: [] });
    relay.pc = pc;
    stream.getTracks().forEach((track) => pc.addTrack(track, stream));
    pc.ontrack = (event) => { $("remote-audio").srcObject = event.streams[0] || new MediaStream([event.track]); };
    pc.onconnectionstatechange = () => setStatus("Media: " + pc.connectionState);
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc, 3000);
    relay.ws.send(JSON.stringify({ ...request, sdp: pc.localDescription.sdp }));
  } catch (error) {
    setStatus("Could not answer: " + error);
    cleanup();
  }
}

async function onAnswer(message) {
  if (!relay.pc || (relay.callId && message.call_id !== relay.callId)) return;
  relay.callId = message.call_id;
  await relay.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
  renderCurrent();
}

// Mute: the microphone track stops sending sound (the caller hears silence from us).
function setMuted(muted) {
  relay.muted = muted;
  if (relay.pc) relay.pc.getSenders().forEach((s) => { if (s.track) s.track.enabled = !muted; });
  $("mute").setAttribute("aria-pressed", String(muted));
  $("mute").textContent = muted ? "Unmute" : "Mute";
  $("mute").classList.toggle("active", muted);
}

// Sum of the received audio energy (webrtc-stats inbound-rtp totalAudioEnergy).
relay.inboundEnergy = async function () {
  if (!relay.pc) return 0;
  let energy = 0;
  (await relay.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") energy += s.totalAudioEnergy || 0;
  });
  return energy;
};

async function updateLevel() {
  if (!relay.pc) return;
  let level = 0;
  (await relay.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio" && s.audioLevel !== undefined) level = s.audioLevel;
  });
  $("level").value = level;
}
setInterval(updateLevel, 500);

function handBack() {
  if (relay.callId) relay.ws.send(JSON.stringify({ type: "handback", call_id: relay.callId }));
}

function hangup() {
  if (relay.callId) relay.ws.send(JSON.stringify({ type: "hangup", call_id: relay.callId }));
}

function onEnded(message) {
  relay.ended.push(message.call_id);
  if (message.call_id === relay.listenCallId) stopListening(false);
  const block = transcriptBlock(message.call_id, false);
  if (message.call_id === relay.callId) {
    setStatus("Call ended: " + (message.reason || ""));
    const call = relay.currentCall;
    cleanup();
    if (call && call.db_id) showWrapUp(call);
    loadHistory();
  } else if (block) {
    block.remove();
    $("no-transcripts").hidden = $("transcripts").children.length > 0;
  }
}

function cleanup() {
  if (relay.pc) {
    relay.pc.getSenders().forEach((sender) => sender.track && sender.track.stop());
    relay.pc.close();
  }
  relay.pc = null;
  relay.callId = null;
  $("current").hidden = true;
  showKeypad(false);
  $("keys-sent").textContent = "";
}

// -- wrap-up ---------------------------------------------------------------------------------

function showWrapUp(call) {
  relay.wrapUp = call;
  $("wrapup-caller").textContent = callerName(call);
  $("wrapup-code").value = "";
  $("wrapup-note").value = "";
  $("wrapup").hidden = false;
}

function closeWrapUp() {
  const call = relay.wrapUp;
  relay.wrapUp = null;
  $("wrapup").hidden = true;
  const block = call && transcriptBlock(call.id, false);
  if (block) block.classList.add("finished");
}

async function saveWrapUp(event) {
  event.preventDefault();
  const call = relay.wrapUp;
  if (!call) return;
  const result = await api("/api/calls/" + call.db_id + "/disposition", {
    method: "POST",
    body: JSON.stringify({ code: $("wrapup-code").value, note: $("wrapup-note").value }),
  });
  if (!result.ok) { setStatus("Wrap-up not saved: " + ((result.body && result.body.error) || result.status)); return; }
  closeWrapUp();
  loadHistory();
}

// -- conversations: one block per call -----------------------------------------------------------

function transcriptBlock(callId, create = true) {
  let block = $("transcripts").querySelector('[data-call-id="' + CSS.escape(callId) + '"]');
  if (!block && create) {
    const call = relay.calls.get(callId);
    const title = el("h3", {}, el("span", { className: "title" }, call ? callerName(call) : "Call"),
      " ", el("span", { className: "number muted" }, call && call.name ? phone(call.number) : ""),
      " ", el("span", { className: "ai-indicator", hidden: true }));
    block = el("article", { className: "transcript", dataset: { callId } },
      title,
      el("div", { className: "handover", hidden: true },
        el("h4", {}, "Handover from the assistant"), el("p", { className: "summary" })),
      el("div", { className: "lines" }),
      el("p", { className: "partial" }));
    $("transcripts").append(block);
    $("no-transcripts").hidden = true;
    if (call) updateTranscriptHeader(call);
  }
  return block;
}

function updateTranscriptHeader(call) {
  const block = transcriptBlock(call.id, false);
  if (!block) return;
  block.querySelector(".title").textContent = callerName(call);
  block.querySelector(".number").textContent = call.name ? phone(call.number) : "";
  aiIndicator(block.querySelector("h3 .ai-indicator"), call.ai);
  const handover = block.querySelector(".handover");
  if (call.handover) {
    handover.hidden = false;
    handover.querySelector(".summary").textContent = call.handover;
  }
  block.classList.toggle("mine", call.id === relay.callId);
  if (call.id === relay.callId && block !== $("transcripts").firstElementChild) $("transcripts").prepend(block);
}

function line(kind, at, who, text) {
  const time = at ? parseTime(at) : new Date();
  return el("p", { className: kind, dataset: { at: time.getTime() } },
    el("time", { datetime: time.toISOString() }, localTime(time.getTime() / 1000)),
    el("span", { className: "who" }, who),
    el("span", { className: "text" }, text));
}

function addLine(callId, kind, at, who, text) {
  const block = transcriptBlock(callId);
  block.querySelector(".lines").append(line(kind, at, who, text));
}

function onTranscript(message) {
  const block = transcriptBlock(message.call_id);
  const partial = block.querySelector(".partial");
  const call = relay.calls.get(message.call_id);
  if (message.final) {
    partial.textContent = "";
    addLine(message.call_id, "seg speaker-" + message.speaker, message.at, speakerWords(call, message.speaker), message.text);
  } else {
    if (partial.dataset.item !== message.item_id) partial.textContent = speakerWords(call, message.speaker) + ": ";
    partial.dataset.item = message.item_id;
    partial.textContent += message.text;
  }
}

// A key press joins the entry the caller is typing, or starts a new one.
function addKey(message) {
  const block = transcriptBlock(message.call_id);
  const lines = block.querySelector(".lines");
  const last = lines.lastElementChild;
  const at = message.at ? message.at * 1000 : Date.now();
  const open = last && last.classList.contains("keys") && !last.dataset.digits.endsWith("#") &&
    last.dataset.receiver === message.receiver && at - Number(last.dataset.last) < KEY_GAP_MS;
  let entry = open ? last : null;
  if (!entry) {
    const call = relay.calls.get(message.call_id);
    entry = line("keys", message.at, speakerWords(call, "caller"), "");
    entry.querySelector(".text").append("pressed ", el("kbd"), el("span", { className: "receiver" }));
    entry.dataset.digits = "";
    entry.dataset.receiver = message.receiver;
    lines.append(entry);
  }
  entry.dataset.digits += message.digit;
  entry.dataset.last = at;
  entry.querySelector("kbd").textContent = keysWords(entry.dataset.digits);
  const receiver = message.receiver === "assistant" ? "the assistant" : message.receiver;
  entry.querySelector(".receiver").textContent = message.receiver === "nobody" ? " (while waiting)" : " for " + receiver;
}

// Keys an agent sent to the caller from the keypad, one entry per burst.
function addSentKeys(message) {
  const lines = transcriptBlock(message.call_id).querySelector(".lines");
  const last = lines.lastElementChild;
  const at = message.at ? message.at * 1000 : Date.now();
  let entry = last && last.classList.contains("keys-sent") && last.dataset.agent === message.agent &&
    at - Number(last.dataset.last) < KEY_GAP_MS ? last : null;
  if (!entry) {
    entry = line("keys-sent", message.at, message.agent, "");
    entry.querySelector(".text").append("sent ", el("kbd"), " to the caller");
    entry.dataset.digits = "";
    entry.dataset.agent = message.agent;
    lines.append(entry);
  }
  entry.dataset.digits += message.digits;
  entry.dataset.last = at;
  entry.querySelector("kbd").textContent = keysWords(entry.dataset.digits);
}

// -- history ---------------------------------------------------------------------------------------

function historyQuery() {
  const params = new URLSearchParams();
  for (const [name, id] of [["since", "filter-since"], ["until", "filter-until"], ["agent", "filter-agent"],
    ["outcome", "filter-outcome"], ["number", "filter-number"]]) {
    if ($(id).value) params.set(name, $(id).value);
  }
  return params.toString();
}

async function loadHistory(event) {
  if (event) event.preventDefault();
  const query = historyQuery();
  const result = await api("/api/calls" + (query ? "?" + query : ""));
  if (!result.ok) return;
  const body = $("history").querySelector("tbody");
  body.replaceChildren(...result.body.map(historyRow));
  $("no-history").hidden = result.body.length > 0;
  $("no-history").textContent = query ? "No calls match." : "No calls yet.";
  // The agent filter offers everyone who handled a call shown (and keeps the choice).
  const agents = $("filter-agent"), chosen = agents.value;
  const names = new Set([...agents.options].map((o) => o.value).filter(Boolean));
  result.body.forEach((c) => c.handled_by.forEach((n) => n !== "assistant" && names.add(n)));
  if (relay.me) (relay.me.agents || [relay.me.name]).forEach((n) => names.add(n));
  agents.replaceChildren(el("option", { value: "" }, "anyone"), el("option", { value: "assistant" }, "assistant"),
    ...[...names].filter((n) => n !== "assistant").sort().map((n) => el("option", { value: n }, n)));
  agents.value = chosen;
}

function duration(call) { return call.duration === null ? "—" : clock(call.duration); }

function historyRow(call) {
  const open = (event) => { event.preventDefault(); showDetail(call.id); };
  return el("tr", { dataset: { id: call.id }, className: "outcome-" + call.outcome },
    el("td", {}, el("a", { href: "#", onclick: open, className: "when" }, localDateTime(call.created_at))),
    el("td", {}, el("strong", {}, callerName(call)), call.name ? el("span", { className: "number muted" }, " " + phone(call.number)) : null),
    el("td", { className: "direction" }, directionWords(call)),
    el("td", { className: "duration" }, duration(call)),
    el("td", { className: "handled-by" }, call.handled_by.join(" → ") || "—"),
    el("td", {}, el("span", { className: "outcome " + call.outcome }, call.outcome)),
    el("td", { className: "ended" }, call.end_words || (call.state === "ended" ? "" : "in progress")),
    el("td", { className: "disposition" }, call.disposition ? call.disposition.code : ""));
}

async function showDetail(id) {
  const result = await api("/api/calls/" + id);
  if (!result.ok) return;
  const call = result.body;
  const detail = $("detail");
  detail.hidden = false;
  const facts = [
    ["Direction", directionWords(call) + (call.direction === "BUSINESS_INITIATED" ? " to " : " from ") + phone(call.number)],
    ["Started", localDateTime(call.created_at)],
    ["Duration", duration(call)],
    ["Handled by", call.handled_by.join(" → ") || "nobody"],
    ["Ended", call.end_words || "in progress"],
  ];
  const conversation = call.transcript.map((s) => ({ at: s.at, kind: "seg speaker-" + s.speaker, who: speakerWords(call, s.speaker), text: s.text }))
    .concat(call.tool_calls.map((t) => ({ at: t.at, kind: "tool", who: "Assistant", text: toolWords(t.name, t.arguments, t.output) })))
    .concat(keyEntries(call.keys).map((k) => ({ at: k.at, kind: "keys", who: speakerWords(call, "caller"), text: "pressed " + keysWords(k.digits) })))
    .sort((a, b) => parseTime(a.at) - parseTime(b.at));
  const files = call.diagnostics.map((file) => el("li", {},
    el("a", { href: "/api/calls/" + call.id + "/diagnostics/" + file.id, download: file.filename },
      file.leg + " diagnostic file (" + file.size + " bytes)")));
  const codes = (relay.me.wrap_up_codes || []).map((c) => el("option", { value: c }, c));
  const code = el("select", { className: "detail-code" }, el("option", { value: "" }, "Choose…"), ...codes);
  const note = el("textarea", { className: "detail-note", rows: 2, maxlength: 2000 });
  if (call.disposition) { code.value = call.disposition.code; note.value = call.disposition.note; }
  const saved = el("span", { className: "muted" }, call.disposition ? "by " + call.disposition.agent : "");
  const save = async (event) => {
    event.preventDefault();
    const r = await api("/api/calls/" + call.id + "/disposition", { method: "POST", body: JSON.stringify({ code: code.value, note: note.value }) });
    saved.textContent = r.ok ? "Saved" : "Not saved: " + (r.body && r.body.error);
    if (r.ok) loadHistory();
  };
  detail.replaceChildren(...[
    el("h3", {}, callerName(call), call.name ? el("span", { className: "muted" }, " " + phone(call.number)) : null),
    el("dl", { className: "facts" }, ...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    call.handover ? el("div", { className: "handover" }, el("h4", {}, "Handover from the assistant"), el("p", {}, call.handover)) : null,
    el("div", { className: "stored-transcript" }, ...(conversation.length
      ? conversation.map((c) => line(c.kind, c.at, c.who, c.text)) : [el("p", { className: "muted" }, "Nothing was said.")])),
    el("form", { className: "detail-wrapup", onsubmit: save },
      el("label", {}, "Wrap-up ", code), el("label", {}, "Note ", note),
      el("button", { type: "submit" }, "Save"), " ", saved),
    files.length ? el("ul", { className: "files" }, ...files) : null,
    el("details", {}, el("summary", {}, "Technical timeline"),
      el("pre", {}, call.timeline.map((e) => localTime(e.at) + "  " + e.event + (e.reason ? "  " + e.reason : "")).join("\n"))),
  ].filter(Boolean));
  detail.scrollIntoView({ block: "nearest" });
}

// Stored digits grouped into entries the way the live view groups them.
function keyEntries(keys) {
  const entries = [];
  for (const key of keys || []) {
    const at = parseTime(key.at).getTime();
    const last = entries[entries.length - 1];
    if (last && !last.digits.endsWith("#") && at - last.lastAt < KEY_GAP_MS) {
      last.digits += key.digit;
      last.lastAt = at;
    } else entries.push({ at: key.at, digits: key.digit, lastAt: at });
  }
  return entries;
}

// -- supervisors: quality of every leg, listening in -------------------------------------------------

function figure(value, unit, warnAt) {
  if (value === null || value === undefined) return el("td", { className: "na" }, "—");
  return el("td", { className: warnAt !== undefined && value >= warnAt ? "warn" : "" }, value + " " + unit);
}

function renderQuality(calls) {
  $("no-quality").hidden = calls.length > 0;
  $("quality").replaceChildren(...calls.map((q) => {
    const call = relay.calls.get(q.id) || { id: q.id };
    const listening = relay.listenCallId === q.id;
    const button = el("button", {
      className: listening ? "stop-listen active" : "listen",
      onclick: () => (listening ? stopListening(true) : listen(q.id)),
    }, listening ? "Stop listening" : "Listen in");
    const rows = q.legs.map((leg) => el("tr", { dataset: { leg: leg.leg } },
      el("td", { className: "leg" }, leg.leg),
      el("td", { className: "leg-state" }, leg.state),
      figure(leg.rtt_ms, "ms", 300), figure(leg.loss_pct, "%", 3), figure(leg.jitter_ms, "ms", 30),
      el("td", { className: "level" }, leg.level === null || leg.level === undefined ? "—"
        : el("meter", { min: 0, max: 1, value: leg.level, title: String(leg.level) }))));
    return el("article", { className: "quality-call", dataset: { callId: q.id } },
      el("h3", {}, el("span", {}, call.name ? callerName(call) : phone(call.number) || q.id),
        " ", el("span", { className: "state state-" + (call.state || "") }, call.state_words || ""),
        call.listeners && call.listeners.length ? el("span", { className: "muted small" }, " listening: " + call.listeners.join(", ")) : null,
        " ", button),
      el("table", { className: "legs" },
        el("thead", {}, el("tr", {}, ...["Leg", "State", "RTT", "Loss", "Jitter", "Level"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...rows)));
  }));
}

// Listening in: a receive-only connection; the microphone is never opened.
async function listen(callId) {
  stopListening(true);
  const pc = new RTCPeerConnection({ iceServers: [] });
  relay.listenPc = pc;
  relay.listenCallId = callId;
  pc.addTransceiver("audio", { direction: "recvonly" });  // the caller
  pc.addTransceiver("audio", { direction: "recvonly" });  // the agent
  pc.ontrack = (event) => {
    const audio = el("audio", { autoplay: true });
    audio.srcObject = new MediaStream([event.track]);
    $("listen-audio").append(audio);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringComplete(pc, 3000);
  relay.ws.send(JSON.stringify({ type: "listen", call_id: callId, sdp: pc.localDescription.sdp }));
}

async function onListenAnswer(message) {
  if (!relay.listenPc || message.call_id !== relay.listenCallId) return;
  await relay.listenPc.setRemoteDescription({ type: "answer", sdp: message.sdp });
}

function stopListening(tellService) {
  if (!relay.listenPc) return;
  if (tellService && relay.ws) relay.ws.send(JSON.stringify({ type: "stop_listening", call_id: relay.listenCallId }));
  relay.listenPc.close();
  relay.listenPc = null;
  relay.listenCallId = null;
  $("listen-audio").replaceChildren();
}

// Received audio energy of the listening connection, per track (tests check both sides).
relay.listenEnergy = async function () {
  const energies = [];
  if (!relay.listenPc) return energies;
  (await relay.listenPc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") energies.push(s.totalAudioEnergy || 0);
  });
  return energies;
};

// -- demo simulator --------------------------------------------------------------------------------

function renderSimulatorCalls(calls) {
  const select = $("sim-call"), chosen = select.value;
  const inbound = calls.filter((c) => c.direction !== "BUSINESS_INITIATED");
  select.replaceChildren(...inbound.map((c) => el("option", { value: c.id }, callerName(c))));
  if (inbound.some((c) => c.id === chosen)) select.value = chosen;
  $("sim-keys-form").hidden = inbound.length === 0;  // keys need a live incoming call
}

async function simulate() {
  const result = await api("/api/simulator/calls", { method: "POST", body: "{}" });
  $("simulate-result").textContent = result.ok ? "Calling…" : "Simulator is off";
  if (result.ok) setTimeout(() => { $("simulate-result").textContent = ""; }, 4000);
}

async function simulateKeys(event) {
  event.preventDefault();
  const result = await api("/api/simulator/calls/" + encodeURIComponent($("sim-call").value) + "/keys", {
    method: "POST", body: JSON.stringify({ digits: $("sim-keys").value }),
  });
  $("sim-keys-result").textContent = result.ok ? "Pressed " + result.body.pressed : (result.body && result.body.error) || "Failed";
}

$("signin-form").addEventListener("submit", signIn);
$("hangup").addEventListener("click", hangup);
$("handback").addEventListener("click", handBack);
$("mute").addEventListener("click", () => setMuted(!relay.muted));
$("hold").addEventListener("click", () => control("hold"));
$("resume").addEventListener("click", () => control("resume"));
$("transfer").addEventListener("click", () => control("transfer", { to: $("transfer-to").value }));
$("keypad-toggle").addEventListener("click", () => showKeypad($("keypad").hidden));
for (const key of document.querySelectorAll("#keypad [data-digit]")) {
  key.addEventListener("click", () => pressKey(key.dataset.digit));
}
$("simulate").addEventListener("click", simulate);
$("sim-keys-form").addEventListener("submit", simulateKeys);
$("dial-form").addEventListener("submit", dial);
$("refresh-history").addEventListener("click", () => loadHistory());
$("history-filter").addEventListener("submit", loadHistory);
$("wrapup-form").addEventListener("submit", saveWrapUp);
$("wrapup-skip").addEventListener("click", closeWrapUp);
$("enable-sound").addEventListener("click", unlockSound);
$("ring-toggle").addEventListener("change", () => localStorage.setItem("relay.ring", $("ring-toggle").checked ? "on" : "off"));
document.addEventListener("click", () => { if (relay.me && (!ringer.ctx || ringer.ctx.state !== "running")) unlockSound(); });
$("logout").addEventListener("click", async () => { await api("/api/logout", { method: "POST" }); location.reload(); });
api("/api/me").then((result) => { if (result.ok && result.body.name) start(result.body); });
