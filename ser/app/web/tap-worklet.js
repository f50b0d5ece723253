// Hands every block of microphone samples (first channel) to the page, which encodes them as
// WAV: a format the server decodes everywhere, unlike the browser's own webm/opus recordings.
class Tap extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("tap", Tap);
