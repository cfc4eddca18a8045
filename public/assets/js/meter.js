// Real audio levels (Web Audio AnalyserNode) for the agent's stream and the visitor's microphone,
// drawn into the bars of #audio-wave. Bars are scaled through the CSSOM (allowed by the CSP).
const reduceMotion = window.matchMedia('(prefers-reduced-motion: reduce)');

export class AudioMeter {
  constructor(waveEl) {
    this.wave = waveEl;
    this.bars = Array.from(waveEl.children);
    this.ctx = null;
    this.nodes = {}; // kind ('remote' | 'mic') → { src, an, time, freq }
    this.focus = 'mic';
    this.raf = 0;
    this.lastDraw = 0;
  }

  // Call from the click handler: browsers only let an AudioContext start after a user gesture.
  ensureContext() {
    if (!this.ctx) {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return null;
      this.ctx = new AC();
    }
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    return this.ctx;
  }

  attach(kind, stream) {
    this.detach(kind);
    const ctx = this.ensureContext();
    if (!ctx || !stream.getAudioTracks().length) return;
    const src = ctx.createMediaStreamSource(stream);
    const an = ctx.createAnalyser();
    an.fftSize = 512;
    an.smoothingTimeConstant = 0.55;
    an.minDecibels = -85;
    an.maxDecibels = -25;
    src.connect(an); // analysis only: playback goes through the <audio> element
    this.nodes[kind] = { src, an, time: new Float32Array(an.fftSize), freq: new Uint8Array(an.frequencyBinCount) };
    this.run();
  }

  detach(kind) {
    const n = this.nodes[kind];
    if (!n) return;
    try {
      n.src.disconnect();
    } catch { /* already disconnected */ }
    delete this.nodes[kind];
  }

  detachAll() {
    this.detach('remote');
    this.detach('mic');
  }

  // RMS level (0..1) of a stream right now; 0 when nothing is attached.
  level(kind) {
    return this.levelOf(this.nodes[kind]);
  }

  // 'remote' while the agent speaks, 'mic' otherwise; idle = gentle CSS breathing, no analysis.
  setState(state) {
    this.focus = state === 'speaking' ? 'remote' : 'mic';
    const live = state === 'listening' || state === 'speaking' || state === 'connecting';
    this.wave.classList.toggle('wave-idle', !live);
    this.wave.dataset.source = live ? this.focus : 'none';
    if (!live) this.reset();
  }

  reset() {
    for (const bar of this.bars) bar.style.transform = '';
  }

  run() {
    if (this.raf) return;
    const tick = (now) => {
      if (!this.nodes.remote && !this.nodes.mic) {
        this.raf = 0;
        this.reset();
        return;
      }
      this.raf = requestAnimationFrame(tick);
      const minGap = reduceMotion.matches ? 200 : 33;
      if (now - this.lastDraw < minGap) return;
      this.lastDraw = now;
      this.draw();
    };
    this.raf = requestAnimationFrame(tick);
  }

  draw() {
    if (this.wave.classList.contains('wave-idle')) return;
    const n = this.nodes[this.focus] || this.nodes.remote || this.nodes.mic;
    const bars = this.bars;
    if (reduceMotion.matches) {
      // One calm, uniform level: informative without the flicker.
      const v = Math.min(1, this.levelOf(n) * 6);
      const s = (0.08 + 0.6 * v).toFixed(3);
      for (const bar of bars) bar.style.transform = `scaleY(${s})`;
      return;
    }
    n.an.getByteFrequencyData(n.freq);
    // Voice band (~90 Hz – 4 kHz), mirrored around the centre.
    const half = Math.ceil(bars.length / 2);
    const binHz = this.ctx.sampleRate / n.an.fftSize;
    const lo = Math.max(1, Math.round(90 / binHz));
    const hi = Math.max(lo + half, Math.round(4000 / binHz));
    const step = (hi - lo) / half;
    for (let j = 0; j < half; j++) {
      const a = Math.floor(lo + j * step);
      const b = Math.max(a + 1, Math.floor(lo + (j + 1) * step));
      let peak = 0;
      for (let k = a; k < b; k++) peak = Math.max(peak, n.freq[k]);
      const s = (0.08 + 0.92 * Math.pow(peak / 255, 1.4)).toFixed(3);
      const left = half - 1 - j;
      const right = bars.length - half + j;
      if (bars[left]) bars[left].style.transform = `scaleY(${s})`;
      if (bars[right]) bars[right].style.transform = `scaleY(${s})`;
    }
  }

  levelOf(n) {
    if (!n) return 0;
    n.an.getFloatTimeDomainData(n.time);
    let sum = 0;
    for (let i = 0; i < n.time.length; i++) sum += n.time[i] * n.time[i];
    return Math.sqrt(sum / n.time.length);
  }
}
