// The page of `python -m ser serve`: files, a microphone recording or an example clip go to
// POST /api/predict, whose rows (those of `python -m ser predict --format json`) are shown as a
// card per file: the answer beside its colour, top-k bars, a player and the waveform with the
// speech the detector found, and for long recordings the emotion timeline (with a table of it).
// "Your voice" keeps a few clips of the user's voice for the tab's session and sends them with
// every request as `reference` files (`predict --reference`). No build step, no framework.
//
// Newest answers first: every request is a batch, shown above the older ones; its cards keep
// the order the files were chosen in. The downloads hold the rows in that same order.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;          // GET /api/info: classes, colours, limits
let recorder = null;      // the recording in progress
let voice = [];           // "Your voice": [{name, type, size, seconds, data (base64)}], as in sessionStorage
let generation = 0;       // bumped by "Clear all": answers to requests sent before it are dropped
const batches = [];       // [{node, rows}] of the answers shown, newest first
const redraws = new Map();   // card -> draws its canvases again (resize, light/dark)
const names = new Set();     // names of the recordings made in this tab
const exampleOf = new WeakMap();   // File -> the example it came from

const NO_SPEECH = "no speech", UNCERTAIN = "uncertain", ERROR = "error";
const WAVE_BLOCKS = 4096;   // the envelope kept per clip: min and max of this many blocks

function pct(p) { return `${Math.round(p * 100)} %`; }
function mb(bytes) { return `${Number((bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 1))} MB`; }
function seconds(s) { return `${s.toFixed(s < 10 ? 1 : 0)} s`; }
function duration(s) {
  if (s < 90) return `${Math.round(s)} seconds`;
  const minutes = s / 60;
  return `${Number(minutes.toFixed(minutes < 10 ? 1 : 0))} minutes`;
}
function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}
function announce(text) { $("status").textContent = text; }

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(text, className, label) {
  const node = element("button", className ? `button ${className}` : "button", text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  return node;
}

// --- the model's description ---

async function loadInfo() {
  try {
    const response = await fetch("/api/info");
    if (!response.ok) throw new Error(`GET /api/info answered ${response.status}`);
    info = await response.json();
  } catch (err) {
    console.log("ser:", err);
    showError("The server did not answer. It may have stopped: start it again, then reload this page.");
    return;
  }
  $("model").textContent = `Answers one of: ${info.classes.join(", ")}. It says \u201cuncertain\u201d when it is ` +
    `less sure than ${thresholds(info.uncertain_below)}, and \u201cno speech\u201d when it hears no voice.`;
  $("model-file").textContent = `Model: ${info.model} (${info.backend}), ${info.normalize} normalization.`;
  const kinds = [...new Set(info.extensions.map((e) => e.replace(/^\./, "").toUpperCase().replace(/^AIF$/, "AIFF")))];
  const limits = info.limits;
  $("formats").textContent = `${kinds.join(", ")} \u00b7 up to ${duration(limits.max_seconds)} and ` +
    `${mb(limits.max_bytes)} \u00b7 ${limits.max_files} files at once`;
  const accept = ["audio/*", ...info.extensions].join(",");
  $("file-input").accept = accept;
  $("voice-input").accept = accept;
  renderVoice();
}

// The threshold of each way a clip may be answered: alone, with a few clips of its voice, with many.
function thresholds(below) {
  if (typeof below === "number") return pct(below);
  const ways = { file: "alone", reference: "with your voice", group: "with many clips of the voice" };
  return Object.keys(ways).filter((w) => below[w] !== undefined).map((w) => `${pct(below[w])} ${ways[w]}`).join(", ");
}

// Whether the model compares a clip with other clips of its voice at all (speaker or corpus
// normalization); a model normalized globally or per clip has no use for "Your voice".
function usesVoice() { return !info || info.normalize === "speaker" || info.normalize === "corpus"; }

// --- example clips (GET /api/examples; none, or an older server: the section stays hidden) ---

async function loadExamples() {
  let list;
  try {
    const response = await fetch("/api/examples");
    if (!response.ok) return;
    list = await response.json();
  } catch (err) {
    return;
  }
  if (!Array.isArray(list) || !list.length) return;
  const buttons = list.filter((e) => e && e.url && e.name).slice(0, 8).map((example) => {
    const node = button(example.name, "example", `Try an example: ${example.name}`);
    node.addEventListener("click", () => tryExample(example, node));
    return node;
  });
  if (!buttons.length) return;
  $("example-list").replaceChildren(...buttons);
  $("examples").hidden = false;
}

const EXTENSIONS = { "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/flac": ".flac",
                     "audio/x-flac": ".flac", "audio/mpeg": ".mp3", "audio/ogg": ".ogg", "audio/aiff": ".aiff",
                     "audio/x-aiff": ".aiff" };

async function tryExample(example, node) {
  showError("");
  node.disabled = true;
  try {
    const response = await fetch(example.url);
    if (!response.ok) throw new Error(`GET ${example.url} answered ${response.status}`);
    const blob = await response.blob();
    const type = (blob.type || "").split(";")[0];
    const known = /\.[a-z0-9]{2,5}$/i.test(example.name) ? "" : EXTENSIONS[type] || ".wav";
    const file = new File([blob], example.name + known, { type: type || "audio/wav" });
    exampleOf.set(file, example);
    await analyse([file]);
  } catch (err) {
    console.log("ser:", err);
    showError(`The example \u201c${example.name}\u201d could not be fetched from the server: please try again.`);
  } finally {
    node.disabled = false;
  }
}

// --- the waveform, decoded in the browser (to draw it and check its length: the server does the analysis) ---

function envelope(samples, sampleRate, blocks = WAVE_BLOCKS) {
  const n = Math.min(blocks, samples.length) || 1;
  const low = new Float32Array(n), high = new Float32Array(n);
  let peak = 0;
  for (let b = 0; b < n; b++) {
    const start = Math.floor((b * samples.length) / n), end = Math.floor(((b + 1) * samples.length) / n);
    let lo = 0, hi = 0;
    for (let j = start; j < end; j++) {
      const v = samples[j];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    low[b] = lo; high[b] = hi;
    peak = Math.max(peak, hi, -lo);
  }
  return { low, high, peak, duration: samples.length / sampleRate };
}

async function decodeWave(file) {
  // Formats the browser cannot decode (AIFF, say) are still analysed: only the waveform is missing.
  try {
    const context = new OfflineAudioContext(1, 1, 44100);
    const buffer = await context.decodeAudioData(await file.arrayBuffer());
    return envelope(buffer.getChannelData(0), buffer.sampleRate);
  } catch (err) {
    return null;
  }
}

// The seconds of a WAV file from its header (null for any other file): no decoding needed.
async function wavSeconds(file) {
  if (file.size < 44) return null;
  const head = new DataView(await file.slice(0, Math.min(file.size, 1 << 16)).arrayBuffer());
  const tag = (at) => String.fromCharCode(...new Uint8Array(head.buffer, at, 4));
  if (tag(0) !== "RIFF" || tag(8) !== "WAVE") return null;
  let byteRate = 0;
  for (let at = 12; at + 8 <= head.byteLength;) {
    const id = tag(at), size = head.getUint32(at + 4, true);
    if (id === "fmt " && at + 20 <= head.byteLength) byteRate = head.getUint32(at + 16, true);
    if (id === "data") return byteRate ? Math.min(size, file.size - at - 8) / byteRate : null;
    at += 8 + size + (size & 1);
  }
  return null;
}

// The length of a file the browser cannot decode but may still play (null when it cannot tell).
function mediaDuration(file) {
  return new Promise((resolve) => {
    const audio = new Audio(), url = URL.createObjectURL(file);
    const done = (value) => { clearTimeout(timer); URL.revokeObjectURL(url); resolve(value); };
    const timer = setTimeout(() => done(null), 1500);
    audio.preload = "metadata";
    audio.onloadedmetadata = () => done(Number.isFinite(audio.duration) ? audio.duration : null);
    audio.onerror = () => done(null);
    audio.src = url;
  });
}

// --- sending files ---

function checkFiles(files) {
  if (!info) return "The page is still starting: please try again in a moment.";
  const limits = info.limits;
  if (files.length > limits.max_files) {
    return `You chose ${files.length} files: this page takes up to ${limits.max_files} at once.`;
  }
  const total = files.reduce((sum, f) => sum + f.size, 0);
  const mine = voiceBytes();   // sent with every request: they count against the same limit
  if (total + mine > limits.max_bytes) {
    const what = files.length > 1 ? `These files are ${mb(total)}` : `${files[0].name} is ${mb(total)}`;
    const withVoice = mine ? `, and your voice clips another ${mb(mine)}` : "";
    return `${what}${withVoice}: this page takes up to ${mb(limits.max_bytes)} at once.`;
  }
  return null;
}

function checkLengths(files, lengths) {
  const most = info.limits.max_seconds;
  const long = files.map((f, i) => [f, lengths[i]]).filter(([, s]) => s !== null && s > most + 0.5);
  if (!long.length) return null;
  const [file, s] = long[0];
  return `${file.name} is ${duration(s)} long: this page takes recordings up to ${duration(most)}.`;
}

// One request: resolves to {status, body} (status 0: no answer at all), reporting the upload's progress.
function post(form, progress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/predict");
    xhr.upload.onprogress = (event) => progress("upload", event.lengthComputable ? event.loaded / event.total : null);
    xhr.upload.onload = () => progress("analyse");
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => resolve({ status: 0, body: null });
    xhr.send(form);
  });
}

function pendingBatch(files) {
  const node = element("div", "batch pending");
  node.setAttribute("aria-busy", "true");
  const box = element("div", "pending-card");
  const what = files.length === 1 ? files[0].name : `${files.length} files`;
  const text = element("p", "pending-text", `Sending ${what}\u2026`);
  const bar = element("progress");
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute("aria-label", `Sending ${what}`);
  box.append(text, bar);
  node.append(box);
  node.progress = (phase, fraction) => {
    if (phase === "upload") {
      if (fraction === null) bar.removeAttribute("value"); else bar.value = Math.round(fraction * 100);
      text.textContent = `Sending ${what}\u2026${fraction === null ? "" : " " + pct(fraction)}`;
    } else if (!node.analysing) {
      node.analysing = true;
      bar.removeAttribute("value");   // indeterminate: the server is working
      bar.setAttribute("aria-label", `Analysing ${what}`);
      text.textContent = `Analysing ${what}\u2026`;
      announce(`Analysing ${what}\u2026`);
    }
  };
  return node;
}

async function analyse(files, waves = null) {
  files = Array.from(files);
  if (!files.length) return;
  const started = performance.now();
  showError("");
  const problem = checkFiles(files);
  if (problem) { showError(problem); return; }
  const asked = generation;
  // The length of a WAV is in its header: it is sent at once, and decoded for its waveform once
  // answered (decoding beside the server's analysis slowed the answer by ~30 ms on two cores).
  // Other files are decoded first, to check their length before sending them.
  let decoding = waves ? Promise.resolve(waves) : null;
  const decodeAll = () => decoding || (decoding = Promise.all(files.map(decodeWave)));
  let lengths = await Promise.all(files.map(wavSeconds));
  if (lengths.some((s) => s === null)) {
    waves = await decodeAll();
    lengths = await Promise.all(files.map((f, i) => lengths[i] ?? (waves[i] ? waves[i].duration : mediaDuration(f))));
  }
  const tooLong = checkLengths(files, lengths);
  if (tooLong) { showError(tooLong); return; }
  const mine = usesVoice() ? voice : [];   // a model that never compares voices would only be sent bytes
  const form = new FormData();
  files.forEach((f) => form.append("file", f, f.name));
  mine.forEach((clip) => form.append("reference", clipBlob(clip), clip.name));
  form.append("top_k", $("top-k").value || "3");
  // With your voice every file is compared with it alone: the server refuses a grouping beside it.
  if (!mine.length) form.append("speaker", $("speaker").value);
  // Each file is split on its own (segment_over): a short clip beside a long recording is answered
  // whole, as it would be alone. The headline is the speech-time summary either way.
  const segment = parseFloat($("segment").value), long = parseFloat($("long").value);
  const split = $("split").value === "grid" && segment > 0 ? String(segment) : "speech";
  if (lengths.some((s) => s === null || s > long)) {
    form.append("segment", split);
    form.append("segment_over", String(Math.max(0, long || 0)));
  }
  const pending = pendingBatch(files);
  $("results").prepend(pending);
  showAnswers();
  const calm = matchMedia("(prefers-reduced-motion: reduce)").matches;
  pending.scrollIntoView({ block: "nearest", behavior: calm ? "auto" : "smooth" });
  const { status, body } = await post(form, pending.progress);
  if (asked !== generation) return;   // "Clear all" meanwhile: the answer is not wanted
  const decoded = await decodeAll();
  if (asked !== generation) return;
  if (status !== 200 || !Array.isArray(body)) {
    pending.remove();
    console.log("ser: POST /api/predict answered", status, body);
    showError(plainProblem(status, body && body.error, files, mine));
    announce("");
    showAnswers();
    return;
  }
  const batch = renderBatch(body, files, decoded);
  pending.replaceWith(batch.node);   // where the request started: above every batch sent before it
  batch.node.dataset.ms = String(Math.round(performance.now() - started));
  showAnswers();
  announce(batch.summary);
}

// Plain words for a request the server refused as a whole; its technical line stays in the console.
function plainProblem(status, error, files, mine) {
  const text = typeof error === "string" ? error : "";
  const named = [...files.map((f) => f.name), ...mine.map((c) => `reference ${c.name}`)]
    .sort((a, b) => b.length - a.length).find((n) => text.startsWith(n + ":") || text.startsWith(n + " "));
  const limits = info ? info.limits : null;
  if (status === 0) return "The server did not answer. It may have stopped: start it again, then reload this page.";
  if (named && named.startsWith("reference ")) {
    const clip = named.slice("reference ".length);
    if (/same audio as/.test(text)) {
      return `Your voice clip ${clip} is the same recording as a file you sent: a clip is never compared with ` +
        `itself. Remove it under \u201cYour voice\u201d, or send another file.`;
    }
    if (/no speech/.test(text)) {
      return `Your voice clip ${clip} has no speech in it: remove it under \u201cYour voice\u201d and add another.`;
    }
    if (status === 413) {
      return `Your voice clip ${clip} is too long: remove it under \u201cYour voice\u201d and use a shorter one.`;
    }
    return `Your voice clip ${clip} is not audio we can read: remove it under \u201cYour voice\u201d.`;
  }
  const which = named || (files.length === 1 ? files[0].name : null);
  if (status === 413) {
    const what = which ? `${which} is` : "These files are";
    return limits ? `${what} too long or too large for this page: it takes recordings up to ` +
      `${duration(limits.max_seconds)} and ${mb(limits.max_bytes)} at once, ${limits.max_files} files at a time.`
      : `${what} too long or too large for this page.`;
  }
  if (status === 415 || status === 400) {
    return `The page could not send ${which ? "this file (" + which + ")" : "these files"}: please try again, or try another file.`;
  }
  if (status === 422) {
    return which ? `This file is not audio we can read (${which}).` : "One of these files is not audio we can read.";
  }
  if (status === 503) return "The server is busy right now: please try again in a moment.";
  if (status === 408) return "The upload took too long to arrive: please try again.";
  if (status === 403) return `This page must be opened as http://127.0.0.1:${location.port || 80}/ to be answered.`;
  return "Something went wrong on the server: please try again.";
}

// --- showing the answers ---

function groupRows(rows) {
  // A file's rows: its aggregate ("all", or an error row) first, then its segments when segmenting.
  const segmented = rows.some((r) => r.segment !== undefined);
  const groups = [];
  for (const row of rows) {
    const joins = segmented && groups.length && row.segment !== undefined && row.segment !== "all";
    if (joins) groups[groups.length - 1].push(row); else groups.push([row]);
  }
  return groups;
}

function renderBatch(rows, files, waves) {
  const node = element("div", "batch");
  node.rows = rows;
  const groups = groupRows(rows);
  const byIndex = groups.length === files.length;
  const unused = files.map((f, i) => i);
  const said = [];
  groups.forEach((group, g) => {
    let i = byIndex ? g : unused.find((k) => files[k].name === group[0].file);
    if (i === undefined && !byIndex) i = null;
    if (i !== null && !byIndex) unused.splice(unused.indexOf(i), 1);
    const file = i === null ? null : files[i];
    node.append(card(group, file, file ? waves[i] : null));
    said.push(`${group[0].file}: ${spoken(group[0])}`);
  });
  return { node, summary: `${plural(groups.length, "answer")}. ${said.join(". ")}.` };
}

// A recording answered part by part: the share of its speech time each answer holds.
function shares(row) {
  return Object.entries(row.time_shares).map(([said, share]) => `${said} ${pct(share)}`).join(", ") +
    ` of ${(row.speech_s || 0).toFixed(1)} s of speech`;
}

function spoken(row) {
  if (row.result === ERROR) return row.message || "could not be answered";
  if (row.result === NO_SPEECH) return "no speech";
  if (row.time_shares) return shares(row);
  if (row.result === UNCERTAIN) return `uncertain, most likely ${row.emotion}, ${pct(row.confidence)}`;
  return `${row.result}, ${pct(row.confidence)}`;
}

function chip(result) {
  const node = element("span", "chip");
  node.setAttribute("aria-hidden", "true");
  if (result === UNCERTAIN) node.classList.add("chip-uncertain");
  else if (result === NO_SPEECH) node.classList.add("chip-none");
  else node.style.background = info.colors[result] || "#888";
  return node;
}

let cards = 0;

function card(group, file, wave) {
  const row = group[0];
  const node = element("article", "card");
  const id = `card-${++cards}`;
  node.setAttribute("aria-labelledby", `${id}-title`);
  node.dataset.result = row.result;
  node.dataset.emotion = row.emotion || "";
  node.dataset.confidence = row.confidence === null || row.confidence === undefined ? "" : String(row.confidence);
  const title = element("h3", "file", row.file);
  title.id = `${id}-title`;
  node.append(title);
  if (row.result === ERROR) {
    // The plain words only: the technical `error` is for the console and the JSON.
    console.log(`ser: ${row.file}:`, row.error);
    node.classList.add("error-card");
    node.append(element("p", "message", row.message || `This file is not audio we can read (${row.file}).`));
    if (file && wave) node.append(listen(node, row, file, wave, null));
    return node;
  }
  if (row.result !== NO_SPEECH && row.result !== UNCERTAIN) node.style.setProperty("--emotion", info.colors[row.result]);
  const answer = element("div", "answer");
  answer.append(chip(row.result), element("span", "label", row.result));
  if (row.result === NO_SPEECH) {
    answer.append(element("span", "confidence", `${(row.speech_s || 0).toFixed(2)} s of speech found`));
  } else {
    const said = row.time_shares ? shares(row)
      : row.result === UNCERTAIN ? `most likely ${row.emotion}, ${pct(row.confidence)}` : pct(row.confidence);
    answer.append(element("span", "confidence", said));
  }
  node.append(answer);
  const example = file && exampleOf.get(file);
  if (example) {
    const heard = example.heard_in_training === false ? " The model never heard this clip while learning."
      : example.heard_in_training ? " The model heard this clip while learning." : "";
    const corpus = (/\(([^)]+)\)$/.exec(example.name) || [])[1] || example.corpus;
    const from = corpus ? ` from ${corpus}` : "";
    node.append(element("p", "example-note small", `An example${from}, acted as ${example.emotion}.${heard}`));
  }
  if (row.top_k && row.top_k.length) {
    const bars = element("div", "bars");
    bars.setAttribute("role", "list");
    bars.setAttribute("aria-label", "The most likely emotions");
    for (const { emotion, probability } of row.top_k) {
      const item = element("div", "bar-row");
      item.setAttribute("role", "listitem");
      const bar = element("span", "bar"), fill = element("span");
      bar.setAttribute("aria-hidden", "true");
      fill.style.width = `${(probability * 100).toFixed(1)}%`;
      fill.style.background = info.colors[emotion];
      bar.append(fill);
      item.append(element("span", "name", emotion), bar, element("span", "pct", pct(probability)));
      bars.append(item);
    }
    node.append(bars);
  }
  const plain = voiceLine(row);
  if (plain) node.append(plain);
  const segments = group.filter((r) => r.segment !== undefined && r.segment !== "all");
  node.append(listen(node, row, file, wave, segments));
  node.append(element("p", "meta muted small",
    `normalization: ${row.normalization || "-"} \u00b7 ${(row.speech_s || 0).toFixed(2)} s of speech`));
  if (row.warning) node.append(element("p", "warning small", warningWords(row)));
  if (segments.length) node.append(...timeline(node, segments, wave));
  return node;
}

// A row's warning in plain words (its technical line goes to the console).
function warningWords(row) {
  console.log(`ser: ${row.file}: warning:`, row.warning);
  if (row.message) return row.message;
  if (/^truncated:/.test(row.warning)) {
    return "This file seems cut short: the answer is for the part of it that is there.";
  }
  if (/^extra data:/.test(row.warning)) {
    return "This file holds more sound than its own header says: only the part the header declares was heard.";
  }
  return "Something about this file was unusual: the answer may be less reliable.";
}

// The player and the waveform of a clip, the speech the detector found marked on it.
function listen(node, row, file, wave, segments) {
  const box = element("div", "listen");
  const spans = Array.isArray(row.speech_spans) ? merged(row.speech_spans) : null;
  const end = timeEnd(wave, segments);
  const margin = segments && segments.length ? TIMELINE_MARGIN : { left: 0, right: 0 };
  if (wave) {
    const frame = element("div", "wave-box");
    const canvas = element("canvas", "wave");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `Waveform of ${row.file}, ${seconds(wave.duration)}` +
      (spans ? (spans.length ? `; speech found ${spanWords(spans)}` : "; no speech found") : ""));
    const head = element("div", "playhead");
    head.hidden = true;
    frame.append(canvas, head);
    box.append(frame);
    node.waveCanvas = { canvas, head, wave, spans, end, margin };
  } else if (file) {
    box.append(element("p", "muted small", "This browser cannot draw this file\u2019s waveform."));
  }
  if (spans) {
    const text = spans.length ? `Speech found ${spanWords(spans)}` : "No speech found";
    const line = element("p", "speech small", text);
    const key = element("span", "speech-key");
    key.setAttribute("aria-hidden", "true");
    line.prepend(key);
    box.append(line);
  }
  if (file) {
    const audio = element("audio");
    audio.controls = true;
    audio.preload = "metadata";
    audio.src = URL.createObjectURL(file);
    audio.setAttribute("aria-label", `Play ${row.file}`);
    node.audio = audio;
    box.append(audio);
    if (node.waveCanvas) follow(node, audio);
  }
  if (wave) {
    const draw = () => drawWave(node.waveCanvas);
    redraws.set(node, () => { draw(); if (node.drawTimeline) node.drawTimeline(); });
    requestAnimationFrame(draw);
  }
  return box;
}

// Speech spans in time order, those that touch (cut at a segment's edge) made one.
function merged(spans) {
  const out = [];
  for (const [a, b] of spans.filter((s) => Array.isArray(s) && s.length === 2).sort((p, q) => p[0] - q[0])) {
    if (out.length && a - out[out.length - 1][1] <= 0.05) out[out.length - 1][1] = Math.max(out[out.length - 1][1], b);
    else out.push([a, b]);
  }
  return out;
}

function spanWords(spans) {
  const shown = spans.slice(0, 6).map(([a, b]) => `${a.toFixed(1)}\u2013${b.toFixed(1)} s`);
  return `at ${shown.join(", ")}${spans.length > 6 ? ` and ${spans.length - 6} more` : ""}`;
}

function timeEnd(wave, segments) {
  const ends = (segments || []).map((r) => span(r.segment).end);
  return Math.max(wave ? wave.duration : 0, ...ends, 1e-3);
}

// The playhead follows the player; a click on the waveform moves the player there.
function follow(node, audio) {
  const { canvas, head, margin, end } = node.waveCanvas;
  let frame = 0;
  const place = () => {
    const width = canvas.clientWidth - margin.left - margin.right;
    head.style.transform = `translateX(${margin.left + (Math.min(audio.currentTime, end) / end) * width}px)`;
    head.hidden = audio.currentTime === 0 && audio.paused;
  };
  const tick = () => { place(); frame = audio.paused ? 0 : requestAnimationFrame(tick); };
  audio.addEventListener("play", () => { if (!frame) frame = requestAnimationFrame(tick); });
  audio.addEventListener("seeked", place);
  audio.addEventListener("pause", place);
  audio.addEventListener("ended", place);
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const t = ((event.clientX - box.left - margin.left) / (box.width - margin.left - margin.right)) * end;
    if (t >= 0 && t <= end) { audio.currentTime = t; place(); }
  });
}

function theme() {
  const style = getComputedStyle(document.documentElement);
  const read = (name) => style.getPropertyValue(name).trim();
  return { wave: read("--wave"), speech: read("--speech"), speechLine: read("--speech-line"), muted: read("--muted"),
           card: read("--card"), line: read("--line"), none: read("--none") };
}

function sizeCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height, ratio };
}

// Min and max of the samples under every pixel column; the detected speech shaded behind it.
function drawWave({ canvas, wave, spans, end, margin }) {
  if (!canvas.isConnected || !canvas.clientWidth) return;
  const { ctx, width, height, ratio } = sizeCanvas(canvas);
  const colors = theme();
  const plotW = width - margin.left - margin.right;
  const x = (t) => margin.left + (Math.max(0, Math.min(t, end)) / end) * plotW;
  const waveH = height - 6;
  if (margin.left) {
    ctx.fillStyle = colors.muted; ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    ctx.fillText("waveform", margin.left - 8, waveH / 2);
  }
  for (const [a, b] of spans || []) {
    ctx.fillStyle = colors.speech; ctx.fillRect(x(a), 0, Math.max(1, x(b) - x(a)), waveH);
    ctx.fillStyle = colors.speechLine; ctx.fillRect(x(a), height - 4, Math.max(1, x(b) - x(a)), 4);
  }
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);   // device pixels: one column each
  const left = Math.round(margin.left * ratio);
  const columns = Math.max(1, Math.round(((wave.duration / end) * plotW) * ratio));
  const mid = (waveH / 2) * ratio, half = (waveH / 2 - 2) * ratio;
  const scale = half / Math.max(wave.peak, 1e-4);
  const n = wave.low.length;
  ctx.fillStyle = colors.wave;
  for (let c = 0; c < columns; c++) {
    const b0 = Math.floor((c * n) / columns), b1 = Math.max(b0 + 1, Math.floor(((c + 1) * n) / columns));
    let lo = 0, hi = 0;
    for (let b = b0; b < b1 && b < n; b++) {
      if (wave.low[b] < lo) lo = wave.low[b];
      if (wave.high[b] > hi) hi = wave.high[b];
    }
    const top = mid - hi * scale, bottom = mid - lo * scale;
    ctx.fillRect(left + c, top, 1, Math.max(1, bottom - top));
  }
  ctx.restore();
}

// One plain sentence on how well the model knew the voice: compared with your voice, or a lone
// clip of a voice it has never heard (the least reliable case), with what helps.
function voiceLine(row) {
  const used = /^reference: (\d+) clips?, ([\d.]+) s of speech/.exec(row.normalization || "");
  if (used) {
    const clips = Number(used[1]), secs = Math.round(Number(used[2]));
    return element("p", "voice-used", `Compared with your voice (${clips} clip${clips > 1 ? "s" : ""}, ` +
      `${secs} s of speech).`);
  }
  if (row.voice_clips === 0 && row.result !== NO_SPEECH && usesVoice()) {
    return element("p", "advice", "One clip of a voice the model does not know is the least reliable case. " +
      "Adding 3 clips of this voice under \u201cYour voice\u201d above makes the answers more reliable.");
  }
  return null;
}

function legend() {
  const node = element("div", "legend");
  node.setAttribute("aria-hidden", "true");   // the table below says it in words
  const item = (result, text) => {
    const entry = element("span");
    entry.append(chip(result), text);
    return entry;
  };
  info.classes.forEach((c) => node.append(item(c, c)));
  node.append(item(UNCERTAIN, UNCERTAIN), item(NO_SPEECH, NO_SPEECH));
  return node;
}

function span(segment) {
  const [start, end] = segment.split("-").map(Number);
  return { start, end };
}

function hatch(ctx, x, y, w, h, color) {
  ctx.save();
  ctx.beginPath(); ctx.rect(x, y, w, h); ctx.clip();
  ctx.strokeStyle = color; ctx.lineWidth = 1;
  for (let d = -h; d < w; d += 6) { ctx.beginPath(); ctx.moveTo(x + d, y + h); ctx.lineTo(x + d + h, y); ctx.stroke(); }
  ctx.restore();
}

// Dark or white text, whichever reads better on a colour (#rrggbb).
function textOn(color) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color || "");
  if (!m) return "#1d1d1f";
  const lum = luminance(m.slice(1).map((h) => parseInt(h, 16)));
  return (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) ? "#1d1d1f" : "#ffffff";
}

function luminance(rgb) {
  const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

const TIMELINE_MARGIN = { left: 78, right: 10 };

// The timeline of `ser.app.timeline.save_timeline_png`, below the waveform on the same time axis:
// the answer strip and the stacked probabilities; a table of its segments is its text.
function timeline(node, segments, wave) {
  const canvas = element("canvas", "timeline");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `Emotion timeline of ${segments[0].file}: ${plural(segments.length, "segment")}, ` +
    "listed in the table below");
  const end = timeEnd(wave, segments);
  node.drawTimeline = () => drawTimeline(canvas, segments, end);
  if (!redraws.has(node)) redraws.set(node, node.drawTimeline);
  requestAnimationFrame(node.drawTimeline);
  const details = element("details", "timeline-table");
  details.append(element("summary", "", "The timeline as a table"));
  const table = element("table");
  table.append(element("caption", "visually-hidden", `Emotion timeline of ${segments[0].file}, segment by segment`));
  const head = element("tr");
  for (const name of ["Start", "End", "Answer", "Confidence"]) {
    const th = element("th", "", name);
    th.scope = "col";
    head.append(th);
  }
  const thead = element("thead"), tbody = element("tbody");
  thead.append(head);
  table.append(thead, tbody);
  for (const r of segments) {
    const { start, end: stop } = span(r.segment);
    const tr = element("tr");
    const answer = r.result === UNCERTAIN ? `uncertain (most likely ${r.emotion})` : r.result;
    const sure = r.confidence === null || r.confidence === undefined ? "\u2013" : pct(r.confidence);
    tr.append(element("td", "num", `${start.toFixed(1)} s`), element("td", "num", `${stop.toFixed(1)} s`), element("td", "", answer),
              element("td", "num", sure));
    tbody.append(tr);
  }
  details.append(table);
  return [canvas, legend(), details];
}

function drawTimeline(canvas, segments, end) {
  if (!canvas.isConnected || !canvas.clientWidth) return;
  const { ctx, width } = sizeCanvas(canvas);
  const colors = theme();
  ctx.font = "11px system-ui, sans-serif";
  const { left, right } = TIMELINE_MARGIN, plotW = width - left - right;
  const rows = { answer: [4, 22], prob: [32, 126] };
  const spans = segments.map((r) => ({ ...span(r.segment), row: r }));
  const x = (t) => left + (t / end) * plotW;
  ctx.fillStyle = colors.muted; ctx.textAlign = "right"; ctx.textBaseline = "middle";
  ctx.fillText("answer", left - 8, rows.answer[0] + rows.answer[1] / 2);
  ctx.fillText("probability", left - 8, rows.prob[0] + rows.prob[1] / 2);
  for (const s of spans) {
    const x0 = x(s.start), w = x(s.end) - x0, r = s.row;
    const [aTop, aH] = rows.answer, [pTop, pH] = rows.prob;
    let fill;
    if (r.result === NO_SPEECH) {
      fill = colors.none;
      ctx.fillStyle = fill; ctx.fillRect(x0, aTop, w, aH); ctx.fillRect(x0, pTop, w, pH);
    } else {
      let bottom = pTop + pH;
      for (const c of info.classes) {
        const h = r.probabilities[c] * pH;
        ctx.fillStyle = info.colors[c]; ctx.fillRect(x0, bottom - h, w, h);
        bottom -= h;
      }
      if (r.result === UNCERTAIN) {
        fill = colors.card;
        ctx.fillStyle = fill; ctx.fillRect(x0, aTop, w, aH); hatch(ctx, x0, aTop, w, aH, colors.muted);
      } else {
        fill = info.colors[r.result];
        ctx.fillStyle = fill; ctx.fillRect(x0, aTop, w, aH);
      }
    }
    ctx.strokeStyle = colors.card; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(x0, aTop); ctx.lineTo(x0, pTop + pH); ctx.stroke();
    const text = r.result;
    if (ctx.measureText(text).width + 4 < w) {
      ctx.fillStyle = r.result === UNCERTAIN ? getComputedStyle(canvas).color : textOn(fill);
      ctx.textAlign = "center"; ctx.fillText(text, x0 + w / 2, aTop + aH / 2);
    }
  }
  ctx.fillStyle = colors.muted; ctx.textAlign = "center"; ctx.textBaseline = "top";
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => end / s <= 10) || 600;
  for (let t = 0; t <= end + 1e-9; t += step) ctx.fillText(`${t} s`, x(t), rows.prob[0] + rows.prob[1] + 4);
}

// --- the answers as a whole: clear, download ---

function showAnswers() {
  const results = $("results");
  batches.splice(0, batches.length, ...[...results.children].filter((n) => n.rows).map((n) => ({ node: n, rows: n.rows })));
  const shown = batches.length > 0;
  $("toolbar").hidden = !shown;
  $("order-note").hidden = !shown;
  $("empty").hidden = shown || results.children.length > 0;
}

function allRows() { return batches.flatMap((b) => b.rows); }

function clearAll() {
  generation++;
  for (const audio of $("results").querySelectorAll("audio")) {
    audio.pause();
    URL.revokeObjectURL(audio.src);
  }
  $("results").replaceChildren();
  batches.length = 0;
  redraws.clear();
  showError("");
  showAnswers();
  announce("All answers cleared.");
  $("choose").focus();
}

function save(blob, name) {
  const link = element("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

function stamp() {
  const d = new Date(), two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}-${two(d.getMinutes())}`;
}

function downloadJson() {
  save(new Blob([JSON.stringify(allRows(), null, 2) + "\n"], { type: "application/json" }), `answers ${stamp()}.json`);
}

// The CSV of `predict --format csv`, made by the server from the rows shown (POST /api/csv).
async function downloadCsv() {
  showError("");
  const node = $("download-csv");
  node.disabled = true;
  try {
    const response = await fetch("/api/csv", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify(allRows()) });
    if (!response.ok) {
      console.log("ser: POST /api/csv answered", response.status, await response.text());
      showError(response.status === 404 || response.status === 405
        ? "This server cannot make a CSV file: download JSON instead, or update the server."
        : "The CSV file could not be made: please try again, or download JSON instead.");
      return;
    }
    save(await response.blob(), `answers ${stamp()}.csv`);
  } catch (err) {
    console.log("ser:", err);
    showError("The server did not answer. It may have stopped: start it again, then reload this page.");
  } finally {
    node.disabled = false;
  }
}

// --- recording from the microphone, as 16-bit WAV ---

function wavFile(chunks, sampleRate, name = "recording.wav") {
  const n = chunks.reduce((sum, c) => sum + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true); view.setUint32(28, 2 * sampleRate, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * n, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (const v of chunk) { view.setInt16(offset, Math.max(-1, Math.min(1, v)) * 0x7fff, true); offset += 2; }
  }
  return new File([view], name, { type: "audio/wav" });
}

// "recording 14-03-22.wav": named by the time it was made, (2) after a second one in the same second.
function recordingName() {
  const d = new Date(), two = (n) => String(n).padStart(2, "0");
  const stem = `recording ${two(d.getHours())}-${two(d.getMinutes())}-${two(d.getSeconds())}`;
  let name = `${stem}.wav`;
  for (let n = 2; names.has(name); n++) name = `${stem} (${n}).wav`;
  names.add(name);
  return name;
}

// What a recording is for: an answer (the main Record button) or a clip of "Your voice".
const RECORDINGS = {
  answer: { button: "record", clock: "record-time", meter: "record-level", hint: "record-hint", idle: "\u25cf Record",
            name: "Record", stop: "Stop recording",
            maxSeconds: () => (info ? info.limits.max_seconds : Infinity), done: answerRecording },
  voice: { button: "voice-record", clock: "voice-record-time", meter: "voice-record-level", hint: "voice-record-hint",
           idle: "\u25cf Record a voice clip", name: "Record a voice clip", stop: "Stop recording the voice clip",
           maxSeconds: () => VOICE_MAX_S, done: addRecordedVoice },
};

// The level of the last blocks the microphone gave: RMS and peak in dB below full scale, shown
// from -60 dB (empty) to 0 dB (full), with a word when it is too quiet or too loud.
function showLevel(target, level, now) {
  const meter = $(target.meter);
  const rms = level.n ? Math.sqrt(level.sum / level.n) : 0;
  const db = (v) => (v > 0 ? 20 * Math.log10(v) : -120);
  const scale = (d) => Math.max(0, Math.min(100, ((d + 60) / 60) * 100));
  const value = Math.round(scale(db(rms)));
  meter.setAttribute("aria-valuenow", String(value));
  meter.setAttribute("aria-valuetext", level.n ? `${Math.round(db(rms))} dB` : "silent");
  meter.querySelector(".meter-fill").style.width = `${value}%`;
  level.hold = Math.max(level.hold * 0.9, level.peak);
  meter.querySelector(".meter-peak").style.left = `${scale(db(level.hold))}%`;
  if (level.peak >= 0.98) level.loudAt = now;
  if (rms > 0.003) level.soundAt = now;
  const hint = now - level.loudAt < 1500 ? "Too loud: move a little away from the microphone."
    : now - level.soundAt > 2500 ? "Very quiet: is the right microphone on?" : "";
  if ($(target.hint).textContent !== hint) $(target.hint).textContent = hint;
  level.sum = 0; level.n = 0; level.peak = 0;
}

async function startRecording(kind) {
  showError("");
  const target = RECORDINGS[kind];
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    showError("This browser gives no microphone here: open the page as http://127.0.0.1 or http://localhost.");
    return;
  }
  let stream;
  try {
    // The raw voice: echo cancellation, noise suppression and gain control change what the model hears.
    stream = await navigator.mediaDevices.getUserMedia(
      { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (err) {
    console.log("ser: getUserMedia:", err);
    showError(err && err.name === "NotAllowedError"
      ? "The browser did not allow the microphone: allow it for this page, then press Record again."
      : "No microphone was found: plug one in, or choose files instead.");
    return;
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule("/tap-worklet.js");
  const source = context.createMediaStreamSource(stream);
  const tap = new AudioWorkletNode(context, "tap");
  const chunks = [];
  const started = performance.now();
  const level = { sum: 0, n: 0, peak: 0, hold: 0, loudAt: -Infinity, soundAt: started };
  tap.port.onmessage = (event) => {
    const block = event.data;
    chunks.push(block);
    for (let i = 0; i < block.length; i++) {
      const v = block[i];
      level.sum += v * v;
      if (Math.abs(v) > level.peak) level.peak = Math.abs(v);
    }
    level.n += block.length;
  };
  source.connect(tap);
  tap.connect(context.destination);   // a node must reach the output to be run; it writes silence
  const timer = setInterval(() => {
    const now = performance.now(), secs = (now - started) / 1000;
    $(target.clock).textContent = `recording\u2026 ${secs.toFixed(1)} s`;
    showLevel(target, level, now);
    if (secs >= target.maxSeconds()) stopRecording();
  }, 100);
  recorder = { stream, context, chunks, timer, target };
  $(target.meter).hidden = false;
  $(target.button).textContent = "\u25a0 Stop";
  $(target.button).setAttribute("aria-label", target.stop);
  $(target.button).classList.add("on");
  announce("Recording: press Stop when you are done.");
  // One microphone recording at a time: the other Record button waits.
  Object.values(RECORDINGS).filter((t) => t !== target).forEach((t) => { $(t.button).disabled = true; });
}

async function stopRecording() {
  const { stream, context, chunks, timer, target } = recorder;
  recorder = null;
  clearInterval(timer);
  stream.getTracks().forEach((t) => t.stop());
  const sampleRate = context.sampleRate;
  await context.close();
  $(target.button).textContent = target.idle;
  $(target.button).setAttribute("aria-label", target.name);
  $(target.button).classList.remove("on");
  $(target.clock).textContent = "";
  $(target.hint).textContent = "";
  $(target.meter).hidden = true;
  $(target.meter).setAttribute("aria-valuenow", "0");
  Object.values(RECORDINGS).forEach((t) => { $(t.button).disabled = false; });
  const samples = new Float32Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let offset = 0;
  for (const c of chunks) { samples.set(c, offset); offset += c.length; }
  if (!samples.length) { showError("The recording is empty: no sound came from the microphone."); return; }
  await target.done(samples, sampleRate);
}

async function answerRecording(samples, sampleRate) {
  await analyse([wavFile([samples], sampleRate, recordingName())], [envelope(samples, sampleRate)]);
}

// --- "Your voice": a few clips of the user's voice, kept for the tab's session ---

const VOICE_KEY = "ser-voice-clips";   // sessionStorage: survives a reload, not the closing of the tab
const VOICE_MAX_S = 15;                // a voice clip is a sentence or two: recording stops by itself here
const VOICE_ADVISED = 3;

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(data) {
  const text = atob(data), bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function clipBlob(clip) {
  if (!clip.blob) clip.blob = new Blob([fromBase64(clip.data)], { type: clip.type || "audio/wav" });
  return clip.blob;
}

function voiceBytes() { return usesVoice() ? voice.reduce((sum, c) => sum + c.size, 0) : 0; }

function loadVoice() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(VOICE_KEY) || "[]");
    voice = Array.isArray(stored) ? stored.filter((c) => c && c.name && c.data) : [];
  } catch (err) {
    voice = [];   // storage unavailable or damaged: start with no clips
  }
}

// Writes the clips to sessionStorage: null, or a message when the browser has no room for them.
function saveVoice() {
  try {
    sessionStorage.setItem(VOICE_KEY, JSON.stringify(voice.map(({ name, type, size, seconds: s, data }) =>
      ({ name, type, size, seconds: s, data }))));
    return null;
  } catch (err) {
    return "This browser has no room to keep another voice clip for this tab: remove one, or use shorter clips.";
  }
}

function uniqueName(name) {
  const taken = new Set(voice.map((c) => c.name));
  if (!taken.has(name)) return name;
  const dot = name.lastIndexOf("."), stem = dot > 0 ? name.slice(0, dot) : name, ext = dot > 0 ? name.slice(dot) : "";
  let n = 2;
  while (taken.has(`${stem} (${n})${ext}`)) n++;
  return `${stem} (${n})${ext}`;
}

// Adds one clip (a File) to "Your voice"; a message instead when it cannot be kept.
async function addVoiceClip(file, secs) {
  const limits = info ? info.limits : null;
  if (limits && voice.length >= limits.max_references) {
    return `${file.name}: \u201cYour voice\u201d holds at most ${limits.max_references} clips; remove one first.`;
  }
  if (limits && voiceBytes() + file.size > limits.max_bytes) {
    return `${file.name}: your voice clips would be ${mb(voiceBytes() + file.size)} together, more than the ` +
      `${mb(limits.max_bytes)} this page can send at once: use shorter clips.`;
  }
  if (!file.size) return `${file.name} is empty.`;
  const data = toBase64(new Uint8Array(await file.arrayBuffer()));
  const same = voice.find((c) => c.data === data);
  if (same) return `${file.name} is already one of your voice clips (as ${same.name}).`;
  if (secs === undefined) {
    const wave = await decodeWave(file);
    secs = wave ? wave.duration : null;
  }
  const clip = { name: uniqueName(file.name), type: file.type || "application/octet-stream", size: file.size,
                 seconds: secs, data };
  voice.push(clip);
  const full = saveVoice();
  if (full) voice.pop();
  return full;
}

async function addVoiceFiles(files) {
  showError("");
  const problems = [];
  for (const file of Array.from(files)) {
    const problem = await addVoiceClip(file);
    if (problem) problems.push(problem);
  }
  renderVoice();
  if (problems.length) showError(problems.join(" "));
}

// A recorded voice clip is kept at the model's sample rate: a third of the bytes of the
// microphone's 48 kHz in this tab's storage and in every request, and what the server would
// resample it to anyway.
async function addRecordedVoice(samples, sampleRate) {
  const target = info && info.sample_rate < sampleRate ? info.sample_rate : sampleRate;
  if (target !== sampleRate) {
    const offline = new OfflineAudioContext(1, Math.ceil(samples.length * target / sampleRate), target);
    const buffer = offline.createBuffer(1, samples.length, sampleRate);
    buffer.copyToChannel(samples, 0);
    const source = offline.createBufferSource();
    source.buffer = buffer;
    source.connect(offline.destination);
    source.start();
    samples = (await offline.startRendering()).getChannelData(0);
  }
  let n = 1;
  while (voice.some((c) => c.name === `my voice ${n}.wav`)) n++;
  const problem = await addVoiceClip(wavFile([samples], target, `my voice ${n}.wav`), samples.length / target);
  renderVoice();
  if (problem) showError(problem);
}

function removeVoiceClip(index) {
  const [clip] = voice.splice(index, 1);
  if (clip && clip.url) URL.revokeObjectURL(clip.url);
  saveVoice();
  renderVoice();
  $("voice-record").focus();   // the removed clip's button is gone: keep the keyboard in the panel
}

function voiceItem(clip, index) {
  const item = element("li", "voice-clip");
  if (!clip.url) clip.url = URL.createObjectURL(clipBlob(clip));
  const audio = element("audio");
  audio.src = clip.url;
  audio.preload = "metadata";
  const play = button("\u25b6 Play", "play", `Play ${clip.name}`);
  play.addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
  const show = (text, verb) => { play.textContent = text; play.setAttribute("aria-label", `${verb} ${clip.name}`); };
  audio.addEventListener("play", () => show("\u275a\u275a Pause", "Pause"));
  const idle = () => show("\u25b6 Play", "Play");
  audio.addEventListener("pause", idle);
  audio.addEventListener("ended", idle);
  const remove = button("Remove", "remove", `Remove ${clip.name}`);
  remove.addEventListener("click", () => removeVoiceClip(index));
  const length = typeof clip.seconds === "number" ? ` \u00b7 ${clip.seconds.toFixed(1)} s` : "";
  item.append(element("span", "voice-name", clip.name), element("span", "muted small", `${mb(clip.size)}${length}`),
              play, remove, audio);
  return item;
}

function renderVoice() {
  const list = $("voice-list");
  list.replaceChildren(...voice.map(voiceItem));
  const n = voice.length;
  let text;
  if (!usesVoice()) {
    text = "This model judges every clip on its own: clips of your voice do not change its answers.";
  } else if (!n) {
    text = "No clips yet: every answer is for a voice the model has never heard.";
  } else {
    const more = n < VOICE_ADVISED ? ` ${VOICE_ADVISED - n} more would help.` : "";
    const them = n > 1 ? "them" : "it";
    text = `${n} clip${n > 1 ? "s" : ""} of your voice: every clip you send is compared with ${them}.${more}`;
  }
  $("voice-count").textContent = text;
  // With your voice the files of a request are never grouped with each other: the choice is moot.
  const compared = n > 0 && usesVoice();
  $("speaker").disabled = compared;
  $("speaker-note").textContent = compared ? "(not used while \u201cYour voice\u201d has clips)" : "";
}

// --- wiring ---

function dropZone(zone, take) {
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    take(event.dataTransfer.files);
  });
}

function chooser(input, take) {
  input.addEventListener("change", (event) => {
    const files = Array.from(event.target.files);
    event.target.value = "";   // choosing the same file again still counts
    take(files);
  });
}

const drop = $("drop");
chooser($("file-input"), analyse);
$("choose").addEventListener("click", () => $("file-input").click());
drop.addEventListener("keydown", (event) => {
  // Enter or Space on the drop zone itself (not on the button inside it) opens the chooser.
  if (event.target !== drop || (event.key !== "Enter" && event.key !== " ")) return;
  event.preventDefault();
  $("file-input").click();
});
dropZone(drop, analyse);
$("record").addEventListener("click", () => (recorder ? stopRecording() : startRecording("answer")));
$("voice-record").addEventListener("click", () => (recorder ? stopRecording() : startRecording("voice")));
$("voice-choose").addEventListener("click", () => $("voice-input").click());
chooser($("voice-input"), addVoiceFiles);
dropZone($("voice"), addVoiceFiles);
$("clear").addEventListener("click", clearAll);
$("download-json").addEventListener("click", downloadJson);
$("download-csv").addEventListener("click", downloadCsv);

let resizing = 0;
const redrawAll = () => { cancelAnimationFrame(resizing); resizing = requestAnimationFrame(() => redraws.forEach((f) => f())); };
window.addEventListener("resize", redrawAll);
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redrawAll);

loadVoice();
renderVoice();
loadInfo().then(() => { if (info) loadExamples(); });
showAnswers();
