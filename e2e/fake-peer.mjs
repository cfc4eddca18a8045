// TEST-ONLY stand-in for the OpenAI Realtime WebRTC endpoint, for the client-logic tests in
// voice-client.test.mjs: a second Chromium page answers the page's SDP offer, sends a tone as the
// agent's voice, and exchanges JSON events on the "oai-events" data channel. The protocol-faithful
// simulator is the Rust one (crates/); this only exercises public/assets/js against scripted events.

/** Open the peer page. Returns helpers to drive it from the test. */
export async function openFakePeer(context) {
  const page = await context.newPage();
  await page.goto('about:blank');
  await page.evaluate(() => {
    const peer = { pc: null, dc: null, received: [], dcState: 'none', gain: null, ctx: null };
    window.peer = peer;
    peer.answer = async (offerSdp) => {
      const pc = new RTCPeerConnection();
      peer.pc = pc;
      pc.ondatachannel = (ev) => {
        peer.dc = ev.channel;
        peer.dcState = ev.channel.readyState;
        ev.channel.onopen = () => { peer.dcState = 'open'; };
        ev.channel.onclose = () => { peer.dcState = 'closed'; };
        ev.channel.onmessage = (m) => peer.received.push(JSON.parse(m.data));
      };
      await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
      // The "agent's voice": a 330 Hz tone, silent until speak(true).
      const ctx = new AudioContext();
      await ctx.resume();
      const osc = ctx.createOscillator();
      osc.frequency.value = 330;
      const gain = ctx.createGain();
      gain.gain.value = 0;
      const dest = ctx.createMediaStreamDestination();
      osc.connect(gain).connect(dest);
      osc.start();
      peer.ctx = ctx;
      peer.gain = gain;
      const track = dest.stream.getAudioTracks()[0];
      const tr = pc.getTransceivers().find((t) => t.receiver.track.kind === 'audio');
      if (tr) {
        tr.direction = 'sendrecv';
        await tr.sender.replaceTrack(track);
      } else {
        pc.addTrack(track, dest.stream);
      }
      await pc.setLocalDescription(await pc.createAnswer());
      if (pc.iceGatheringState !== 'complete') {
        await new Promise((resolve) => {
          const t = setTimeout(resolve, 3000);
          pc.addEventListener('icegatheringstatechange', () => {
            if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
          });
        });
      }
      return pc.localDescription.sdp;
    };
    peer.send = (ev) => peer.dc.send(JSON.stringify(ev));
    peer.speak = (on) => { peer.gain.gain.value = on ? 0.6 : 0; };
  });
  return {
    page,
    answer: (sdp) => page.evaluate((s) => window.peer.answer(s), sdp),
    send: (...events) => page.evaluate((evs) => evs.forEach((e) => window.peer.send(e)), events),
    speak: (on) => page.evaluate((v) => window.peer.speak(v), on),
    received: () => page.evaluate(() => window.peer.received),
    dcState: () => page.evaluate(() => window.peer.dcState),
    pcState: () => page.evaluate(() => window.peer.pc && window.peer.pc.connectionState),
    closePc: () => page.evaluate(() => window.peer.pc.close()),
  };
}
