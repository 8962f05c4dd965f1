// The agent console: sign in, see calls, answer one over WebRTC, hear and speak, hang up.
// Plain browser JavaScript, no build step; works in Chromium and Firefox.
"use strict";

const $ = (id) => document.getElementById(id);
const relay = (window.relay = { pc: null, callId: null, ws: null, digits: "", ended: [], simulated: null });

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

function setStatus(text) { $("status").textContent = text; }

async function signIn(event) {
  event.preventDefault();
  const result = await api("/api/login", {
    method: "POST",
    body: JSON.stringify({ name: $("name").value, password: $("password").value }),
  });
  if (!result.ok) { $("signin-error").textContent = (result.body && result.body.error) || "Sign-in failed"; return; }
  start(result.body.name);
}

function start(name) {
  $("who").textContent = "Signed in as " + name;
  $("signin").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
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
  if (message.type === "calls") renderCalls(message.calls);
  else if (message.type === "answer") onAnswer(message);
  else if (message.type === "dtmf" && message.call_id === relay.callId) {
    relay.digits += message.digit;
    $("digits").textContent = relay.digits;
  } else if (message.type === "transcript") onTranscript(message);
  else if (message.type === "transcript_history") {
    for (const segment of message.segments) addLine(message.call_id, segment.speaker, segment.text, "seg");
  } else if (message.type === "toolcall") {
    addLine(message.call_id, "tool", message.name + " " + JSON.stringify(message.arguments) + " → " + message.output, "tool");
  } else if (message.type === "ai") {
    addLine(message.call_id, "status", message.leg + ": " + message.status, "ai-status");
  } else if (message.type === "handed_back") {
    setStatus("Handed back to the assistant");
    cleanup();
  } else if (message.type === "ended") onEnded(message);
  else if (message.type === "error") {
    setStatus("Error: " + message.message);
    if (relay.pc && !relay.pc.remoteDescription) cleanup();  // our pending leg was refused
  }
}

function renderCalls(calls) {
  const body = $("calls").querySelector("tbody");
  body.replaceChildren();
  $("no-calls").hidden = calls.length > 0;
  if (relay.simulated && calls.some((call) => call.id === relay.simulated)) {
    $("simulate-result").textContent = "";  // the simulated call has its row now
    relay.simulated = null;
  }
  for (const call of calls) {
    const row = document.createElement("tr");
    row.dataset.callId = call.id;
    const ai = Object.entries(call.ai || {}).map(([leg, status]) => leg + ": " + status).join("; ");
    for (const value of [call.from, call.name || "", call.state, call.agent || "", call.digits, ai]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    row.children[2].className = "state-" + call.state;
    row.children[5].className = "ai";
    const actions = document.createElement("td");
    if (!call.agent && !relay.callId && ["ringing", "prerecorded", "waiting", "assistant"].includes(call.state)) {
      const button = document.createElement("button");
      // While the assistant talks, answering takes the call over from it.
      button.textContent = call.state === "assistant" ? "Take over" : "Answer";
      button.className = call.state === "assistant" ? "answer takeover" : "answer";
      button.onclick = () => answer(call);
      actions.append(button);
    }
    row.append(actions);
    body.append(row);
    if (call.id === relay.callId) {
      $("current-state").textContent = call.state;
      $("handback").hidden = call.state !== "human";
    }
  }
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
  relay.digits = call.digits || "";
  $("current-caller").textContent = call.name ? call.name + " (" + call.from + ")" : call.from;
  openLeg({ type: "answer", call_id: call.id });
}

function dial(event) {
  event.preventDefault();
  if (relay.pc) return;
  relay.callId = null;
  relay.digits = "";
  $("current-caller").textContent = $("dial-to").value;
  openLeg({ type: "dial", to: $("dial-to").value });
}

// The browser leg: our offer with every candidate (no trickle), answered by the service.
async function openLeg(request) {
  $("digits").textContent = relay.digits;
  $("current").hidden = false;
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

// Live transcript: one block per call, finished segments plus the words arriving now.
function transcriptBlock(callId) {
  let block = $("transcripts").querySelector('[data-call-id="' + CSS.escape(callId) + '"]');
  if (!block) {
    block = document.createElement("div");
    block.dataset.callId = callId;
    block.className = "transcript";
    const title = document.createElement("h3");
    title.textContent = "Call " + callId;
    const partial = document.createElement("p");
    partial.className = "partial";
    block.append(title, partial);
    $("transcripts").append(block);
    $("no-transcripts").hidden = true;
  }
  return block;
}

function addLine(callId, speaker, text, kind) {
  const block = transcriptBlock(callId);
  const line = document.createElement("p");
  line.className = kind + " speaker-" + speaker;
  line.textContent = speaker + ": " + text;
  block.insertBefore(line, block.querySelector(".partial"));
}

function onTranscript(message) {
  const block = transcriptBlock(message.call_id);
  const partial = block.querySelector(".partial");
  if (message.final) {
    partial.textContent = "";
    addLine(message.call_id, message.speaker, message.text, "seg");
  } else {
    if (partial.dataset.item !== message.item_id) partial.textContent = message.speaker + ": ";
    partial.dataset.item = message.item_id;
    partial.textContent += message.text;
  }
}

function handBack() {
  if (relay.callId) relay.ws.send(JSON.stringify({ type: "handback", call_id: relay.callId }));
}

function hangup() {
  if (relay.callId) relay.ws.send(JSON.stringify({ type: "hangup", call_id: relay.callId }));
}

function onEnded(message) {
  relay.ended.push(message.call_id);
  if (message.call_id === relay.callId) {
    setStatus("Call ended: " + (message.reason || ""));
    cleanup();
    loadHistory();
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
}

async function loadHistory() {
  const result = await api("/api/calls");
  if (!result.ok) return;
  const body = $("history").querySelector("tbody");
  body.replaceChildren();
  for (const call of result.body) {
    const row = document.createElement("tr");
    const link = document.createElement("a");
    link.href = "#";
    link.textContent = call.id;
    link.onclick = (event) => { event.preventDefault(); showDetail(call.id); };
    const first = document.createElement("td");
    first.append(link);
    row.append(first);
    for (const value of [call.from, call.state, call.agent || "", call.created_at, call.end_reason || ""]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    body.append(row);
  }
}

async function showDetail(id) {
  const result = await api("/api/calls/" + id);
  if (!result.ok) return;
  const call = result.body;
  const detail = $("detail");
  detail.hidden = false;
  detail.replaceChildren();
  const title = document.createElement("h3");
  title.textContent = "Call " + call.id + " (" + call.wa_call_id + "), keys: " + (call.digits || "none");
  const timeline = document.createElement("pre");
  timeline.textContent = call.timeline.map((e) => e.at + "  " + e.event + (e.reason ? "  " + e.reason : "")).join("\n");
  const transcript = document.createElement("pre");
  transcript.className = "stored-transcript";
  // Spoken lines and tool calls in the order they happened (both carry ISO 8601 times).
  transcript.textContent = call.transcript.map((s) => s.at + "  " + s.speaker + ": " + s.text)
    .concat(call.tool_calls.map((t) => t.at + "  tool " + t.name + " " + JSON.stringify(t.arguments) + " → " + t.output))
    .sort().join("\n") || "(no transcript)";
  const files = document.createElement("ul");
  for (const file of call.diagnostics) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = "/api/calls/" + call.id + "/diagnostics/" + file.id;
    link.textContent = file.leg + " diagnostic file (" + file.size + " bytes)";
    link.download = file.filename;
    item.append(link);
    files.append(item);
  }
  detail.append(title, timeline, transcript, files);
}

async function simulate() {
  const result = await api("/api/simulator/calls", { method: "POST", body: "{}" });
  relay.simulated = result.ok ? result.body.id : null;
  $("simulate-result").textContent = result.ok ? "Calling… (" + result.body.id + ")" : "Simulator is off";
}

$("signin-form").addEventListener("submit", signIn);
$("hangup").addEventListener("click", hangup);
$("handback").addEventListener("click", handBack);
$("simulate").addEventListener("click", simulate);
$("dial-form").addEventListener("submit", dial);
$("refresh-history").addEventListener("click", loadHistory);
$("logout").addEventListener("click", async () => { await api("/api/logout", { method: "POST" }); location.reload(); });
api("/api/me").then((result) => { if (result.ok) start(result.body.name); });
