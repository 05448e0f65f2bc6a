// The operator screen: tiles kept from the station's pushed events (Server-Sent Events), and what the
// operator does (sign in, scan into a socket, answer a question) posted back. Nothing is polled.
"use strict";

const tiles = new Map();      // socket -> {el, data}
const lags = [];              // ms from a change on the station to this page showing it (read by bench/station.py)
window.floorflow = { lags, tiles };

function post(path, body) {
  return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
    .then((r) => r.json().then((answer) => (r.ok ? answer : Promise.reject(new Error(answer.error || r.statusText)))));
}

function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text || "";
  box.hidden = !text;
}

function tileFor(socket) {
  let found = tiles.get(socket);
  if (found) return found;
  const el = document.getElementById("tile-template").content.firstElementChild.cloneNode(true);
  el.dataset.socket = socket;
  el.querySelector(".socket").textContent = "Socket " + socket;
  el.querySelector(".scan").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = el.querySelector(".scan-serial");
    const error = el.querySelector(".scan-error");
    error.textContent = "";
    post("/scan", { socket, serial: input.value })
      .then(() => { input.value = ""; })
      .catch((e) => { error.textContent = e.message; });
  });
  const answer = (body) => post("/answer", Object.assign({ socket, question: found.data.question.id }, body))
    .catch((e) => { el.querySelector(".scan-error").textContent = e.message; });
  el.querySelector(".pass").addEventListener("click", () => answer({ passed: true }));
  el.querySelector(".fail").addEventListener("click", () => answer({ passed: false, comment: el.querySelector(".q-comment").value }));
  el.querySelector(".retry").addEventListener("click", () => answer({ choice: "retry" }));
  el.querySelector(".fail-confirm").addEventListener("click", () => answer({ choice: "fail" }));
  const all = document.getElementById("tiles");
  const after = [...all.children].find((other) => Number(other.dataset.socket) > socket);
  all.insertBefore(el, after || null);
  found = { el, data: null };
  tiles.set(socket, found);
  return found;
}

function show(el, selector, text) {
  const part = el.querySelector(selector);
  part.textContent = text || "";
  return part;
}

function drawTile(data) {
  const tile = tileFor(data.socket);
  const el = tile.el;
  const asked = tile.data && tile.data.question ? tile.data.question.id : null;
  tile.data = data;
  el.dataset.state = data.state;
  el.dataset.verdict = data.verdict || "";
  show(el, ".serial", data.serial);
  show(el, ".verdict", data.verdict);
  const stage = data.stage ? data.stage + (data.attempt > 1 ? " (attempt " + data.attempt + ")" : "") : "";
  show(el, ".stage", data.state === "done" ? "" : stage + (data.note ? " — " + data.note : ""));
  const bar = el.querySelector(".bar");
  bar.hidden = data.progress === null || data.state === "done";
  if (data.progress !== null) bar.value = data.progress;
  show(el, ".failed", data.failed);
  // a FAIL's failing check says what its reason would say again
  show(el, ".reason", data.verdict && data.verdict !== "PASS" && !(data.verdict === "FAIL" && data.failed) ? data.reason : "");
  show(el, ".next", data.next);
  drawQuestion(el, data.question, asked);
  elapsed(el, data);
  if (data.at) requestAnimationFrame(() => {  // once the frame showing it is drawn
    lags.push(Date.now() - data.at * 1000);
    if (lags.length > 100000) lags.splice(0, 50000);
  });
}

function drawQuestion(el, question, asked) {
  const box = el.querySelector(".question");
  box.hidden = !question;
  if (!question) return;
  show(box, ".q-title", question.title);
  show(box, ".q-text", question.text);
  const picture = box.querySelector(".q-picture");
  picture.hidden = !question.picture;
  if (question.picture) picture.src = question.picture;
  box.querySelector(".q-check").hidden = question.kind !== "check";
  box.querySelector(".q-confirm").hidden = question.kind !== "confirm";
  if (asked !== question.id) box.querySelector(".q-comment").value = "";
}

function elapsed(el, data) {
  let text = "";
  if (data.started) {
    const seconds = Math.max(0, ((data.ended || Date.now() / 1000) - data.started));
    text = seconds < 60 ? seconds.toFixed(0) + " s" : Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s";
  }
  show(el, ".elapsed", text);
}

function drawStation(data) {
  const where = data.station ? " · station " + data.station : "";
  document.getElementById("title").textContent = data.title + where;
  document.title = data.title + where;
  document.getElementById("operator").textContent = data.operator ? "signed in: " + data.operator : "";
  document.body.classList.toggle("signed-out", !data.operator);
  const counts = document.getElementById("counts");
  counts.replaceChildren(...Object.entries(data.counts).filter(([, n]) => n > 0).map(([verdict, n]) => {
    const span = document.createElement("span");
    span.className = verdict;
    span.textContent = verdict + " " + n;
    return span;
  }));
  document.getElementById("finished").replaceChildren(...data.finished.map((unit) => {
    const item = document.createElement("li");
    item.className = unit.verdict;
    item.textContent = unit.serial + " " + unit.verdict + " (socket " + unit.socket + ")";
    return item;
  }));
  if (data.stopping) notice("The station is stopping.");
  else if (!data.operator) notice("Sign in to start: type or scan your name or badge at the top.");
  else notice("");
}

function connect() {
  const stream = new EventSource("/events");
  stream.addEventListener("tile", (event) => drawTile(JSON.parse(event.data)));
  stream.addEventListener("station", (event) => drawStation(JSON.parse(event.data)));
  stream.addEventListener("open", () => document.body.classList.remove("offline"));
  stream.addEventListener("error", () => {
    document.body.classList.add("offline");
    notice("The station is not answering: it has stopped or the connection is lost. Reconnecting…");
  });
}

document.getElementById("signin").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("signin-name");
  post("/signin", { name: input.value }).then(() => { input.value = ""; }).catch((e) => notice(e.message));
});

setInterval(() => tiles.forEach((tile) => tile.data && elapsed(tile.el, tile.data)), 1000);
connect();
