// The page of `python -m ser serve`: files or a microphone recording go to POST /api/predict,
// whose rows (those of `python -m ser predict --format json`) are shown as a label, top-k bars,
// the normalisation used and, for long recordings, the emotion timeline. "Your voice" keeps a
// few clips of the user's voice for the tab's session and sends them with every request as
// `reference` files (`predict --reference`). No build step.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;          // GET /api/info: classes, colours, limits
let recorder = null;      // the recording in progress
let voice = [];           // "Your voice": [{name, type, size, seconds, data (base64)}], as in sessionStorage

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
    `${info.normalize} normalisation · "uncertain" below ${thresholds(info.uncertain_below)}`;
  $("formats").textContent = `${info.extensions.join(" ")} · up to ${mb(info.limits.max_bytes)} and ` +
    `${info.limits.max_seconds} s, ${info.limits.max_files} files at once`;
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
// normalisation); a model normalised globally or per clip has no use for "Your voice".
function usesVoice() { return !info || info.normalize === "speaker" || info.normalize === "corpus"; }

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
  const mine = voiceBytes();   // sent with every request: they count against the same limit
  if (total + mine > limits.max_bytes) {
    const what = files.length > 1 ? "these files are" : files[0].name + " is";
    const withVoice = mine ? ` with your voice clips (${mb(mine)})` : "";
    return `${what} ${mb(total)}${withVoice}: the limit is ${mb(limits.max_bytes)} (serve --max-upload-mb)`;
  }
  return null;
}

async function analyse(files, waves = null) {
  files = Array.from(files);
  if (!files.length) return;
  showError("");
  const problem = checkFiles(files);
  if (problem) { showError(problem); return; }
  const mine = usesVoice() ? voice : [];   // a model that never compares voices would only be sent bytes
  const compared = mine.length ? ` with your voice (${mine.length} clip${mine.length > 1 ? "s" : ""})` : "";
  setStatus(`analysing ${files.length === 1 ? files[0].name : files.length + " files"}${compared}…`);
  waves = waves || await Promise.all(files.map(decodeWave));
  const form = new FormData();
  files.forEach((f) => form.append("file", f, f.name));
  mine.forEach((clip) => form.append("reference", clipBlob(clip), clip.name));
  form.append("top_k", $("top-k").value || "3");
  // With your voice every file is compared with it alone: the server refuses a grouping beside it.
  if (!mine.length) form.append("speaker", $("speaker").value);
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
    const error = body.error || `the server answered ${response.status}`;
    // A voice clip the server cannot use fails every request: say where to remove it.
    showError(error.startsWith("reference ") ? `${error} (your voice clip: remove it under "Your voice")` : error);
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
  const plain = voiceLine(row);
  if (plain) node.append(plain);
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

// One plain sentence on how well the model knew the voice: compared with your voice, or a lone
// clip of a voice it has never heard (the least reliable case), with what helps.
function voiceLine(row) {
  const used = /^reference: (\d+) clips?, ([\d.]+) s of speech/.exec(row.normalization || "");
  if (used) {
    const clips = Number(used[1]), seconds = Math.round(Number(used[2]));
    return element("p", "voice-used", `Compared with your voice (${clips} clip${clips > 1 ? "s" : ""}, ` +
      `${seconds} s of speech).`);
  }
  if (row.voice_clips === 0 && row.result !== NO_SPEECH && usesVoice()) {
    return element("p", "advice", "One clip of a voice the model does not know is the least reliable case. " +
      "Adding 3 clips of this voice under \u201cYour voice\u201d above makes the answers more reliable.");
  }
  return null;
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

// What a recording is for: an answer (the main Record button) or a clip of "Your voice".
const RECORDINGS = {
  answer: { button: "record", clock: "record-time", idle: "\u25cf Record",
            maxSeconds: () => (info ? info.limits.max_seconds : Infinity), done: answerRecording },
  voice: { button: "voice-record", clock: "voice-record-time", idle: "\u25cf Record a voice clip",
           maxSeconds: () => VOICE_MAX_S, done: addRecordedVoice },
};

async function startRecording(kind) {
  showError("");
  const target = RECORDINGS[kind];
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
    $(target.clock).textContent = `recording… ${seconds.toFixed(1)} s`;
    if (seconds >= target.maxSeconds()) stopRecording();
  }, 100);
  recorder = { stream, context, chunks, timer, target };
  $(target.button).textContent = "\u25a0 Stop";
  $(target.button).classList.add("on");
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
  $(target.button).classList.remove("on");
  $(target.clock).textContent = "";
  Object.values(RECORDINGS).forEach((t) => { $(t.button).disabled = false; });
  const samples = new Float32Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let offset = 0;
  for (const c of chunks) { samples.set(c, offset); offset += c.length; }
  if (!samples.length) { showError("the recording is empty: no sound came from the microphone"); return; }
  await target.done(samples, sampleRate);
}

async function answerRecording(samples, sampleRate) {
  await analyse([wavFile([samples], sampleRate)], [envelope(samples, sampleRate)]);
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
    sessionStorage.setItem(VOICE_KEY, JSON.stringify(voice.map(({ name, type, size, seconds, data }) =>
      ({ name, type, size, seconds, data }))));
    return null;
  } catch (err) {
    return "this browser has no room to keep another voice clip for this tab: remove one, or use shorter clips";
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
async function addVoiceClip(file, seconds) {
  const limits = info ? info.limits : null;
  if (limits && voice.length >= limits.max_references) {
    return `${file.name}: "Your voice" holds at most ${limits.max_references} clips; remove one first`;
  }
  if (limits && voiceBytes() + file.size > limits.max_bytes) {
    return `${file.name}: your voice clips would be ${mb(voiceBytes() + file.size)} together, over the ` +
      `${mb(limits.max_bytes)} a request may send: use shorter clips`;
  }
  if (!file.size) return `${file.name}: an empty file`;
  const data = toBase64(new Uint8Array(await file.arrayBuffer()));
  const same = voice.find((c) => c.data === data);
  if (same) return `${file.name}: already in your voice clips (as ${same.name})`;
  if (seconds === undefined) {
    const wave = await decodeWave(file);
    seconds = wave ? wave.duration : null;
  }
  const clip = { name: uniqueName(file.name), type: file.type || "application/octet-stream", size: file.size,
                 seconds, data };
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
  if (problems.length) showError(problems.join("; "));
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
  const play = element("button", "button play", "\u25b6 Play");
  play.type = "button";
  play.setAttribute("aria-label", `Play ${clip.name}`);
  play.addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
  const show = (text, verb) => { play.textContent = text; play.setAttribute("aria-label", `${verb} ${clip.name}`); };
  audio.addEventListener("play", () => show("\u275a\u275a Pause", "Pause"));
  const idle = () => show("\u25b6 Play", "Play");
  audio.addEventListener("pause", idle);
  audio.addEventListener("ended", idle);
  const remove = element("button", "button remove", "Remove");
  remove.type = "button";
  remove.setAttribute("aria-label", `Remove ${clip.name}`);
  remove.addEventListener("click", () => removeVoiceClip(index));
  const length = typeof clip.seconds === "number" ? ` · ${clip.seconds.toFixed(1)} s` : "";
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
$("record").addEventListener("click", () => (recorder ? stopRecording() : startRecording("answer")));
$("voice-record").addEventListener("click", () => (recorder ? stopRecording() : startRecording("voice")));
$("voice-choose").addEventListener("click", () => $("voice-input").click());
$("voice-input").addEventListener("change", (event) => {
  const files = Array.from(event.target.files);
  event.target.value = "";
  addVoiceFiles(files);
});
const voicePanel = $("voice");
voicePanel.addEventListener("dragover", (event) => { event.preventDefault(); voicePanel.classList.add("over"); });
voicePanel.addEventListener("dragleave", () => voicePanel.classList.remove("over"));
voicePanel.addEventListener("drop", (event) => {
  event.preventDefault();
  voicePanel.classList.remove("over");
  addVoiceFiles(event.dataTransfer.files);
});
loadVoice();
renderVoice();
loadInfo();
