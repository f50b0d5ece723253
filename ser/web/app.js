// The page of `python -m ser serve`: files or a microphone recording go to POST /api/predict,
// whose rows (those of `python -m ser predict --format json`) are shown as a label, top-k bars,
// the normalisation used and, for long recordings, the emotion timeline. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;          // GET /api/info: classes, colours, limits
let recorder = null;      // the recording in progress

const NO_SPEECH = "no speech", UNCERTAIN = "uncertain";
const NO_SPEECH_COLOR = "#d9d9d9";

function pct(p) { return `${Math.round(p * 100)} %`; }
function mb(bytes) { return `${Number((bytes / 2 ** 20).toFixed(2))} MB`; }

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}
function setStatus(text) { $("status").textContent = text; }

async function loadInfo() {
  try {
    const response = await fetch("/api/info");
    info = await response.json();
  } catch (err) {
    showError("the server did not answer: is `python -m ser serve` still running?");
    return;
  }
  $("model").textContent = `model ${info.model} (${info.backend}) · ${info.classes.join(", ")} · ` +
    `${info.normalize} normalisation · "uncertain" below ${pct(info.uncertain_below)}`;
  $("formats").textContent = `${info.extensions.join(" ")} · up to ${mb(info.limits.max_bytes)} and ` +
    `${info.limits.max_seconds} s, ${info.limits.max_files} files at once`;
  $("file-input").accept = ["audio/*", ...info.extensions].join(",");
}

// --- the waveform, decoded in the browser (only to draw it: the server does the analysis) ---

function envelope(samples, sampleRate, blocks = 1200) {
  const hop = Math.max(1, Math.floor(samples.length / blocks));
  const low = [], high = [];
  for (let i = 0; i < samples.length; i += hop) {
    let lo = 0, hi = 0;
    for (let j = i; j < Math.min(i + hop, samples.length); j++) {
      if (samples[j] < lo) lo = samples[j];
      if (samples[j] > hi) hi = samples[j];
    }
    low.push(lo); high.push(hi);
  }
  return { low, high, hop, sampleRate, duration: samples.length / sampleRate };
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

// --- sending files ---

function checkFiles(files) {
  if (!info) return "the model's description is not loaded yet";
  const limits = info.limits;
  if (files.length > limits.max_files) return `${files.length} files: at most ${limits.max_files} at once`;
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (total > limits.max_bytes) {
    return `${files.length > 1 ? "these files are" : files[0].name + " is"} ${mb(total)}: the limit is ` +
      `${mb(limits.max_bytes)} (serve --max-upload-mb)`;
  }
  return null;
}

async function analyse(files, waves = null) {
  files = Array.from(files);
  if (!files.length) return;
  showError("");
  const problem = checkFiles(files);
  if (problem) { showError(problem); return; }
  setStatus(`analysing ${files.length === 1 ? files[0].name : files.length + " files"}…`);
  waves = waves || await Promise.all(files.map(decodeWave));
  const form = new FormData();
  files.forEach((f) => form.append("file", f, f.name));
  form.append("top_k", $("top-k").value || "3");
  form.append("speaker", $("speaker").value);
  const segment = parseFloat($("segment").value), long = parseFloat($("long").value);
  if (segment > 0 && waves.some((w) => w && w.duration > long)) form.append("segment", String(segment));
  let response, body;
  try {
    response = await fetch("/api/predict", { method: "POST", body: form });
    body = await response.json();
  } catch (err) {
    setStatus("");
    showError(response ? `the server answered ${response.status} without an explanation`
                       : "the server did not answer: is `python -m ser serve` still running?");
    return;
  }
  setStatus("");
  if (!response.ok) {
    showError(body.error || `the server answered ${response.status}`);
    return;
  }
  render(body, files, waves);
}

// --- showing the answer ---

function groupRows(rows) {
  // A file's rows: its aggregate ("all") first, then its segments (only when segmenting).
  const groups = [];
  for (const row of rows) {
    const starts = row.segment === undefined
      ? !groups.length || groups[groups.length - 1][0].file !== row.file : row.segment === "all";
    if (starts) groups.push([row]); else groups[groups.length - 1].push(row);
  }
  return groups;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render(rows, files, waves) {
  const results = $("results");
  const groups = groupRows(rows);
  groups.forEach((group, i) => results.prepend(card(group, waves[i] || null)));
}

function card(group, wave) {
  const row = group[0];
  const node = element("article", "card");
  node.dataset.result = row.result;
  node.dataset.emotion = row.emotion || "";
  node.dataset.confidence = row.confidence === null ? "" : String(row.confidence);
  node.append(element("h2", "file", row.file));
  const answer = element("div", "answer");
  const label = element("span", "label", row.result);
  label.style.color = row.result === NO_SPEECH || row.result === UNCERTAIN ? "#444" : info.colors[row.result];
  answer.append(label);
  if (row.result === NO_SPEECH) {
    answer.append(element("span", "confidence muted", `${row.speech_s.toFixed(2)} s of speech found`));
  } else {
    const said = row.result === UNCERTAIN ? `most likely ${row.emotion}, ${pct(row.confidence)}` : pct(row.confidence);
    answer.append(element("span", "confidence", said));
  }
  node.append(answer);
  if (row.top_k.length) {
    const bars = element("div", "bars");
    for (const { emotion, probability } of row.top_k) {
      const bar = element("span", "bar"), fill = element("span");
      fill.style.width = `${(probability * 100).toFixed(1)}%`;
      fill.style.background = info.colors[emotion];
      bar.append(fill);
      bars.append(element("span", "name", emotion), bar, element("span", "pct", pct(probability)));
    }
    node.append(bars);
  }
  node.append(element("p", "meta muted small",
    `normalisation: ${row.normalization || "-"} · ${row.speech_s.toFixed(2)} s of speech`));
  if (row.warning) node.append(element("p", "warning small", `warning: ${row.warning}`));
  const segments = group.filter((r) => r.segment !== undefined && r.segment !== "all");
  if (segments.length) {
    const canvas = element("canvas", "timeline");
    node.append(canvas, legend());
    requestAnimationFrame(() => drawTimeline(canvas, segments, wave));
  }
  return node;
}

function legend() {
  const node = element("div", "legend");
  const chip = (color, text, hatch) => {
    const item = element("span"), box = element("i");
    box.style.background = hatch ? "repeating-linear-gradient(45deg,#999 0 1px,#fff 1px 4px)" : color;
    item.append(box, text);
    return item;
  };
  info.classes.forEach((c) => node.append(chip(info.colors[c], c)));
  node.append(chip("", UNCERTAIN, true), chip(NO_SPEECH_COLOR, NO_SPEECH));
  return node;
}

function span(segment) {
  const [start, end] = segment.split("-").map(Number);
  return { start, end };
}

function hatch(ctx, x, y, w, h) {
  ctx.save();
  ctx.beginPath(); ctx.rect(x, y, w, h); ctx.clip();
  ctx.strokeStyle = "#aaa"; ctx.lineWidth = 1;
  for (let d = -h; d < w; d += 6) { ctx.beginPath(); ctx.moveTo(x + d, y + h); ctx.lineTo(x + d + h, y); ctx.stroke(); }
  ctx.restore();
}

// The timeline of `ser.timeline.save_timeline_png`, on a canvas: waveform, answer strip, stacked probabilities.
function drawTimeline(canvas, segments, wave) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.font = "11px system-ui, sans-serif";
  const left = 78, right = 10, plotW = width - left - right;
  const rows = { wave: [4, 70], answer: [80, 22], prob: [108, 126] };
  const spans = segments.map((r) => ({ ...span(r.segment), row: r }));
  const end = Math.max(wave ? wave.duration : 0, ...spans.map((s) => s.end));
  const x = (t) => left + (t / end) * plotW;
  ctx.fillStyle = "#6b6b70"; ctx.textAlign = "right"; ctx.textBaseline = "middle";
  ctx.fillText("waveform", left - 8, rows.wave[0] + rows.wave[1] / 2);
  ctx.fillText("answer", left - 8, rows.answer[0] + rows.answer[1] / 2);
  ctx.fillText("probability", left - 8, rows.prob[0] + rows.prob[1] / 2);
  for (const s of spans) {   // no-speech stretches shaded behind the waveform
    if (s.row.result === NO_SPEECH) { ctx.fillStyle = "#ececec"; ctx.fillRect(x(s.start), rows.wave[0], x(s.end) - x(s.start), rows.wave[1]); }
  }
  if (wave) {
    const [top, h] = rows.wave, mid = top + h / 2;
    const peak = Math.max(1e-6, ...wave.high, ...wave.low.map(Math.abs));
    ctx.fillStyle = "#444";
    for (let i = 0; i < wave.high.length; i++) {
      const t = (i * wave.hop) / wave.sampleRate;
      const x0 = x(t), x1 = x(t + wave.hop / wave.sampleRate);
      ctx.fillRect(x0, mid - (wave.high[i] / peak) * h / 2, Math.max(1, x1 - x0), ((wave.high[i] - wave.low[i]) / peak) * h / 2 || 1);
    }
  }
  for (const s of spans) {
    const x0 = x(s.start), w = x(s.end) - x0, r = s.row;
    const [aTop, aH] = rows.answer, [pTop, pH] = rows.prob;
    if (r.result === NO_SPEECH) {
      ctx.fillStyle = NO_SPEECH_COLOR; ctx.fillRect(x0, aTop, w, aH); ctx.fillRect(x0, pTop, w, pH);
    } else {
      let bottom = pTop + pH;
      for (const c of info.classes) {
        const h = r.probabilities[c] * pH;
        ctx.fillStyle = info.colors[c]; ctx.fillRect(x0, bottom - h, w, h);
        bottom -= h;
      }
      if (r.result === UNCERTAIN) { ctx.fillStyle = "#fff"; ctx.fillRect(x0, aTop, w, aH); hatch(ctx, x0, aTop, w, aH); }
      else { ctx.fillStyle = info.colors[r.result]; ctx.fillRect(x0, aTop, w, aH); }
    }
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(x0, aTop); ctx.lineTo(x0, pTop + pH); ctx.stroke();
    const text = r.result;
    if (ctx.measureText(text).width + 4 < w) {
      ctx.fillStyle = r.result === NO_SPEECH || r.result === UNCERTAIN ? "#333" : "#fff";
      ctx.textAlign = "center"; ctx.fillText(text, x0 + w / 2, aTop + aH / 2);
    }
  }
  ctx.fillStyle = "#6b6b70"; ctx.textAlign = "center"; ctx.textBaseline = "top";
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => end / s <= 10) || 600;
  for (let t = 0; t <= end + 1e-9; t += step) ctx.fillText(`${t} s`, x(t), rows.prob[0] + rows.prob[1] + 4);
}

// --- recording from the microphone, as 16-bit WAV ---

function wavFile(chunks, sampleRate) {
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
  return new File([view], "recording.wav", { type: "audio/wav" });
}

async function startRecording() {
  showError("");
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    showError("this browser gives no microphone here: open the page as http://127.0.0.1 or http://localhost");
    return;
  }
  let stream;
  try {
    // The raw voice: echo cancellation, noise suppression and gain control change what the model hears.
    stream = await navigator.mediaDevices.getUserMedia(
      { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (err) {
    showError(`no microphone: ${err.name}${err.message ? " (" + err.message + ")" : ""}`);
    return;
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule("/tap-worklet.js");
  const source = context.createMediaStreamSource(stream);
  const tap = new AudioWorkletNode(context, "tap");
  const chunks = [];
  tap.port.onmessage = (event) => chunks.push(event.data);
  source.connect(tap);
  tap.connect(context.destination);   // a node must reach the output to be run; it writes silence
  const started = performance.now();
  const timer = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    $("record-time").textContent = `recording… ${seconds.toFixed(1)} s`;
    if (info && seconds >= info.limits.max_seconds) stopRecording();
  }, 100);
  recorder = { stream, context, chunks, timer };
  $("record").textContent = "■ Stop";
  $("record").classList.add("on");
}

async function stopRecording() {
  const { stream, context, chunks, timer } = recorder;
  recorder = null;
  clearInterval(timer);
  stream.getTracks().forEach((t) => t.stop());
  const sampleRate = context.sampleRate;
  await context.close();
  $("record").textContent = "● Record";
  $("record").classList.remove("on");
  $("record-time").textContent = "";
  const samples = new Float32Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let offset = 0;
  for (const c of chunks) { samples.set(c, offset); offset += c.length; }
  if (!samples.length) { showError("the recording is empty: no sound came from the microphone"); return; }
  await analyse([wavFile(chunks, sampleRate)], [envelope(samples, sampleRate)]);
}

// --- wiring ---

$("file-input").addEventListener("change", (event) => {
  const files = Array.from(event.target.files);
  event.target.value = "";   // choosing the same file again still counts
  analyse(files);
});
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  analyse(event.dataTransfer.files);
});
$("record").addEventListener("click", () => (recorder ? stopRecording() : startRecording()));
loadInfo();
