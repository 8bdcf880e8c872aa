// The call panel of one consultation (patient page and doctor console): local preview, the other
// side's video and sound, mute, camera on/off, hang up, switching the form (chat, voice, video)
// with the other side's consent for video, recording consent, "reconnecting", and on the
// doctor's console the call quality of both legs as the server measures it.
//
// Media goes through the server (one RTCPeerConnection with it per page). The offer is sent when
// ICE gathering is complete (the server answers with all its candidates: no trickle ICE). A form
// change, or a connection that fails, makes a new peer: the server swaps it in for the old one.
// With several servers the call's media is held by one of them; if it dies, nothing tells the
// page but the media itself: when what arrives stops (STALL_MS) while the other side was last
// known connected, the page shows "Reconnecting…" and offers again (a new peer) until a live
// server answers, every RETRY_MS (the server answers call_owner_unavailable meanwhile).
// Text is always set with textContent.

import { el, emitAck, formatTime } from "/static/api.js";

// The forms a button switches to. Down to chat is "Hang up" (call:hangup): one control, not two.
const SWITCH_TO = ["voice", "video"];
const GATHER_MS = 3000; // the offer goes with the candidates gathered by then
const RECONNECT_MS = 1500; // a connection "disconnected" this long is rebuilt
const WATCH_MS = 500; // how often the media arriving is looked at
const STALL_MS = 2000; // media that stopped arriving this long: the server's peer is gone
const CONNECT_MS = 10000; // a new peer not connected after this long is rebuilt
const RETRY_MS = 1000; // a refused or unanswered re-offer is tried again after this
// TURN credentials are short-lived (CONSULT_TURN_TTL) and checked when a relay is allocated:
// a new peer made with ones older than this asks for fresh ones first.
const ICE_FRESH_MS = 60000;
// Refusals a re-offer waits out (the call's server is moving, or the socket is); others stop it.
const RETRYABLE = new Set(["call_owner_unavailable", "timeout", "rate_limited", "internal"]);

const PEER_TEXT = {
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
  closed: "left the call",
};

export class CallPanel {
  /**
   * consultation: the consultation object; me: the logged-in user; socket: () => the current
   * Socket.IO socket; onError: (err) => void; showQuality: the doctor's console shows figures;
   * onForm: (form) => void, told the form now (it changes with switches) for the page's headers.
   */
  constructor({ consultation, me, socket, onError, showQuality = false, onForm = () => {} }) {
    this.consultation = consultation;
    this.me = me;
    this.socket = socket;
    this.onError = onError;
    this.showQuality = showQuality;
    this.onForm = onForm;
    this.measured = new Map(); // leg user id -> what was seen of its figures (_measure)
    this.form = consultation.form;
    this.iceServers = [];
    this.iceAt = 0; // when iceServers came (Date.now())
    this.pc = null;
    this.stream = null; // what this page sends
    this.remote = new MediaStream();
    this.muted = false;
    this.cameraOff = false;
    this.pending = null;
    this.connecting = null;
    this.reconnectTimer = null;
    this.reconnecting = false;
    this.retryTimer = null;
    this.watchTimer = null;
    this.inbound = { packets: 0, at: 0, flowing: false, since: 0 }; // media arriving on this.pc
    this.otherState = null; // the other side's leg, as the server last said (call:state)
    this.closed = false;
    this.started = false;
    this.handlers = {};
    this.boundSocket = null;

    const other = me.role === "doctor" ? "The patient" : "The doctor";
    this.otherName = other;
    this.status = el("p", { className: "call-status", role: "status", "data-testid": "call-status" });
    this.peerState = el("p", {
      className: "call-peer muted",
      "aria-live": "polite",
      "data-testid": "call-peer-state",
    });
    this.localVideo = el("video", {
      className: "call-local",
      autoplay: true,
      playsinline: true,
      "aria-label": "Your camera",
      "data-testid": "local-video",
    });
    this.localVideo.muted = true; // never play one's own microphone back
    this.remoteVideo = el("video", {
      className: "call-remote",
      autoplay: true,
      playsinline: true,
      "aria-label": `${other}'s video`,
      "data-testid": "remote-video",
    });
    this.remoteVideo.srcObject = this.remote;
    this.muteButton = this._button("Mute", "call-mute", () => this.toggleMute());
    this.cameraButton = this._button("Camera off", "call-camera", () => this.toggleCamera());
    this.hangupButton = this._button("Hang up", "call-hangup", () => this.hangup(), "danger");
    this.formButtons = Object.fromEntries(
      SWITCH_TO.map((form) => [
        form,
        this._button(`Switch to ${form}`, `call-form-${form}`, () => this.requestForm(form), "secondary"),
      ]),
    );
    this.requestText = el("p", { "data-testid": "call-request-text" });
    this.acceptButton = this._button("Accept", "call-form-accept", () => this.answer(true));
    this.declineButton = this._button("Decline", "call-form-decline", () => this.answer(false), "secondary");
    this.requestBox = el(
      "div",
      { className: "notice call-request", hidden: true, "data-testid": "call-request" },
      this.requestText,
      el("div", { className: "actions" }, this.acceptButton, this.declineButton),
    );
    const consentId = `call-consent-${consultation.id}`;
    this.consentBox = el("input", {
      type: "checkbox",
      id: consentId,
      "data-testid": "call-record-consent",
      on: { change: () => this.setConsent(this.consentBox.checked) },
    });
    this.recordingText = el("p", { className: "muted small", "data-testid": "call-recording" });
    this.quality = el("table", { className: "call-quality", hidden: true, "data-testid": "call-quality" });

    this.media = el("div", { className: "call-media" }, this.remoteVideo, this.localVideo);
    this.controls = el(
      "div",
      { className: "actions call-controls" },
      this.muteButton,
      this.cameraButton,
      this.hangupButton,
    );
    this.element = el(
      "section",
      { className: "call-panel", "data-testid": "call-panel", "aria-label": "Call" },
      this.status,
      this.peerState,
      this.media,
      this.controls,
      el("div", { className: "actions call-forms" }, ...Object.values(this.formButtons)),
      this.requestBox,
      el(
        "label",
        { className: "inline call-consent", for: consentId },
        this.consentBox,
        " I agree to calls in this consultation being recorded for my record",
      ),
      this.recordingText,
      this.quality,
    );
    this._bind();
    this.render();
  }

  _button(text, testId, onClick, className = "") {
    return el("button", { type: "button", className, text, "data-testid": testId, on: { click: onClick } });
  }

  // --- socket events ---------------------------------------------------------------------------

  _bind() {
    const socket = this.socket();
    if (!socket || socket === this.boundSocket) return;
    this._unbind();
    const mine = (handler) => (payload) => {
      if (payload && payload.consultation_id === this.consultation.id) handler(payload);
    };
    this.handlers = {
      "call:state": mine((s) => this._peerChanged(s)),
      "call:form-requested": mine((r) => this._requested(r)),
      "call:form-changed": mine((c) => this._formChanged(c)),
      "call:recording": mine((r) => this._recording(r)),
      "call:quality": mine((q) => this._quality(q)),
      // After the socket was down: catch up with a form switch or request missed meanwhile,
      // and offer again at once if the call is being re-established.
      connect: () => {
        if (!this.started) return;
        this.refresh().catch((err) => this.onError(err));
        if (this.reconnecting) this._retryNow();
      },
    };
    for (const [event, handler] of Object.entries(this.handlers)) socket.on(event, handler);
    this.boundSocket = socket;
  }

  _unbind() {
    if (!this.boundSocket) return;
    for (const [event, handler] of Object.entries(this.handlers)) this.boundSocket.off(event, handler);
    this.boundSocket = null;
  }

  /** Read the call's state (form, ICE servers, a pending request) and join if it has media. */
  async start() {
    this._bind();
    this.started = true;
    clearInterval(this.watchTimer);
    this.watchTimer = setInterval(() => this._watch().catch(() => {}), WATCH_MS);
    await this.refresh();
  }

  async refresh() {
    if (this.closed) return;
    const state = await emitAck(this.socket(), "call:config", { consultation_id: this.consultation.id });
    this.iceServers = state.ice_servers;
    this.iceAt = Date.now();
    this.pending = state.pending;
    this._recording(state.recording);
    if (state.form !== this.form || (state.form !== "chat" && !this.pc)) {
      this._formChanged({ form: state.form, declined: false });
    }
    this.render();
  }

  /** The consultation changed (e.g. ended): an ended consultation has no call. */
  setConsultation(consultation) {
    this.consultation = consultation;
    if (consultation.status !== "active") this.destroy();
    this.render();
  }

  destroy() {
    this.closed = true;
    clearInterval(this.watchTimer);
    this._leave();
    this._unbind();
  }

  // --- media -----------------------------------------------------------------------------------

  async join() {
    if (this.closed || this.form === "chat") return;
    if (this.connecting) return this.connecting;
    this.connecting = this._join().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  async _join() {
    const wantVideo = this.form === "video";
    const hasVideo = Boolean(this.stream && this.stream.getVideoTracks().length);
    if (!this.stream || hasVideo !== wantVideo) {
      this._stopLocal();
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: wantVideo });
      this.localVideo.srcObject = wantVideo ? this.stream : null;
      this._applyMute();
    }
    if (Date.now() - this.iceAt > ICE_FRESH_MS) {
      const state = await emitAck(this.socket(), "call:config", { consultation_id: this.consultation.id });
      this.iceServers = state.ice_servers;
      this.iceAt = Date.now();
    }
    this._closePeer();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    // Receive what the form carries, even if this page has no camera to send.
    if (wantVideo && !this.stream.getVideoTracks().length) pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (event) => {
      for (const old of this.remote.getTracks()) {
        if (old.kind === event.track.kind) this.remote.removeTrack(old);
      }
      this.remote.addTrack(event.track);
      this.remoteVideo.play().catch(() => {}); // autoplay may wait for the page to be visible
    };
    pc.onconnectionstatechange = () => this._ownStateChanged(pc);
    this.inbound = { packets: 0, at: Date.now(), flowing: false, since: Date.now() };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    if (pc !== this.pc) return; // replaced meanwhile
    const answer = await emitAck(this.socket(), "call:offer", {
      consultation_id: this.consultation.id,
      sdp: pc.localDescription.sdp,
      type: "offer",
    });
    if (pc !== this.pc) return;
    await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
    this.render();
  }

  _ownStateChanged(pc) {
    if (pc !== this.pc) return;
    const s = pc.connectionState;
    if (this.reconnecting) {
      // Still "Reconnecting…" until this peer connects; one that fails is offered again.
      if (s === "failed") this._retryNow();
      if (s !== "connected") return;
    }
    this.element.dataset.connection = s;
    if (s === "disconnected" || s === "failed") {
      this.status.textContent = "Reconnecting…";
      clearTimeout(this.reconnectTimer);
      // A network drop: a new peer (new ICE credentials); the server replaces the old leg.
      this.reconnectTimer = setTimeout(() => {
        if (this.pc === pc && pc.connectionState !== "connected") this._reconnect();
      }, s === "failed" ? 0 : RECONNECT_MS);
    } else {
      if (s === "connected") {
        this.reconnecting = false;
        clearTimeout(this.retryTimer);
      }
      this.render();
    }
  }

  /**
   * Every WATCH_MS: is media arriving? A peer whose media stopped for STALL_MS while the other
   * side was last known connected has lost the server's peer (its server died, without a word):
   * re-establish the call. A new peer that never connects is rebuilt after CONNECT_MS.
   */
  async _watch() {
    const pc = this.pc;
    if (!pc || this.closed || this.form === "chat" || this.connecting || this.reconnecting) return;
    let packets = 0;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp") packets += r.packetsReceived || 0;
    });
    if (pc !== this.pc) return;
    const now = Date.now();
    if (packets > this.inbound.packets) {
      Object.assign(this.inbound, { packets, at: now, flowing: true });
    } else if (this.inbound.flowing && now - this.inbound.at > STALL_MS) {
      // Once per flow: after a re-established peer, media must flow again before another. When
      // the server says the other side is away, the silence is theirs, not our server's.
      this.inbound.flowing = false;
      if (this.otherState !== "reconnecting" && this.otherState !== "closed") this._reconnect();
    } else if (pc.connectionState !== "connected" && now - this.inbound.since > CONNECT_MS) {
      this._reconnect();
    }
  }

  /** "Reconnecting…", and a new offer until one is answered (RETRY_MS apart). */
  _reconnect() {
    if (this.closed || this.form === "chat" || this.reconnecting) return;
    this.reconnecting = true;
    this.element.dataset.connection = "reconnecting";
    this.status.textContent = "Reconnecting…";
    this._retryNow();
  }

  _retryNow() {
    clearTimeout(this.retryTimer);
    const socket = this.socket();
    if (!this.reconnecting || this.closed || this.form === "chat") {
      this.reconnecting = false;
      return;
    }
    if (!socket || !socket.connected) {
      this.retryTimer = setTimeout(() => this._retryNow(), RETRY_MS); // or at its "connect"
      return;
    }
    this.join().then(
      () => {
        // Answered: "connected" ends the reconnecting; a peer that does not connect in
        // CONNECT_MS is offered again.
        if (this.pc && this.pc.connectionState === "connected") this.reconnecting = false;
        else this.retryTimer = setTimeout(() => this._retryNow(), CONNECT_MS);
      },
      (err) => {
        if (!RETRYABLE.has(err.code)) {
          this.reconnecting = false;
          this.onError(err);
          this.render();
          return;
        }
        this.retryTimer = setTimeout(() => this._retryNow(), RETRY_MS);
      },
    );
  }

  _closePeer() {
    if (this.pc) {
      this.pc.onconnectionstatechange = null;
      this.pc.ontrack = null;
      this.pc.close();
      this.pc = null;
    }
    for (const track of this.remote.getTracks()) this.remote.removeTrack(track);
  }

  _stopLocal() {
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.localVideo.srcObject = null;
  }

  _leave() {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.retryTimer);
    this.reconnecting = false;
    this._closePeer();
    this._stopLocal();
    this.element.dataset.connection = "closed";
    this.peerState.textContent = "";
    this.measured.clear();
  }

  toggleMute() {
    this.muted = !this.muted;
    this._applyMute();
    this.render();
  }

  toggleCamera() {
    this.cameraOff = !this.cameraOff;
    this._applyMute();
    this.render();
  }

  _applyMute() {
    if (!this.stream) return;
    for (const track of this.stream.getAudioTracks()) track.enabled = !this.muted;
    for (const track of this.stream.getVideoTracks()) track.enabled = !this.cameraOff;
  }

  // --- forms, consent, recording ---------------------------------------------------------------

  async hangup() {
    await this._act(this.hangupButton, async () => {
      this._formChanged(await emitAck(this.socket(), "call:hangup", { consultation_id: this.consultation.id }));
    });
  }

  async requestForm(form) {
    await this._act(this.formButtons[form], async () => {
      const result = await emitAck(this.socket(), "call:form", { consultation_id: this.consultation.id, form });
      if ("to_user" in result) {
        this.status.textContent = `Waiting for ${this.otherName.toLowerCase()} to agree to ${form}…`;
      } else {
        this._formChanged(result);
      }
    });
  }

  async answer(accept) {
    await this._act(accept ? this.acceptButton : this.declineButton, async () => {
      this.pending = null;
      this._formChanged(
        await emitAck(this.socket(), "call:form-answer", { consultation_id: this.consultation.id, accept }),
      );
    });
  }

  async setConsent(consent) {
    await this._act(this.consentBox, async () => {
      this._recording(
        await emitAck(this.socket(), "call:record-consent", { consultation_id: this.consultation.id, consent }),
        true,
      );
    });
  }

  async _act(control, work) {
    control.disabled = true;
    try {
      await work();
    } catch (err) {
      this.onError(err);
    } finally {
      control.disabled = false;
      this.render();
    }
  }

  _requested(request) {
    if (request.to_user !== this.me.id) return;
    this.pending = request;
    this.render();
  }

  _formChanged(change) {
    this.pending = null;
    if (change.declined) {
      this.status.textContent = `Staying in ${change.form}: the switch was declined.`;
      this.render(false);
      return;
    }
    if (change.form === this.form && this.pc) return this.render();
    this.form = change.form;
    this.onForm(this.form);
    if (this.form === "chat") this._leave();
    else this.join().catch((err) => this.onError(err));
    this.render();
  }

  _recording(state, own = false) {
    const mine = this.me.role === "doctor" ? state.doctor_consent : state.patient_consent;
    const theirs = this.me.role === "doctor" ? state.patient_consent : state.doctor_consent;
    // While our own consent is on its way (the box is disabled), a push made before it
    // arrived would undo the tick; the ack that follows sets the box.
    if (own || !this.consentBox.disabled) this.consentBox.checked = mine;
    this.element.dataset.recording = state.recording ? "yes" : "no";
    this.recordingText.textContent = state.recording
      ? "This call is being recorded (both agreed)."
      : mine && !theirs
        ? `Not recorded: ${this.otherName.toLowerCase()} has not agreed.`
        : "Not recorded.";
  }

  _peerChanged(update) {
    if (update.user_id === this.me.id) return;
    this.otherState = update.state;
    if (this.form === "chat") {
      this.peerState.textContent = ""; // a hung-up call's last news
      return;
    }
    this.element.dataset.peer = update.state;
    this.peerState.textContent = `${this.otherName}: ${PEER_TEXT[update.state] || update.state}`;
  }

  _quality(quality) {
    if (!this.showQuality) return;
    const row = (cells, tag = "td") =>
      el("tr", {}, ...cells.map((cell) => (cell instanceof Node ? cell : el(tag, { text: cell }))));
    const across = (text) => el("td", { colspan: 4, className: "muted", text });
    const rows = [row(["Leg", "State", "RTT", "Loss", "Bitrate", "Frame rate"], "th")];
    for (const leg of quality.legs) {
      const streams = leg.streams.filter((s) => s.direction === "in");
      const seen = this._measure(leg, streams);
      const dataset = { leg: leg.role, measured: seen.measured ? "yes" : "no" };
      if (leg.state === "absent") {
        rows.push(row([leg.role, leg.state, across("not in the call")]));
      } else if (!seen.measured) {
        rows.push(row([leg.role, leg.state, across("measuring…")]));
      } else {
        // The frame rate is the video's: audio has packets, not frames (a voice call has none).
        const video = streams.find((s) => s.kind === "video");
        const loss = Math.max(0, ...leg.streams.map((s) => s.loss || 0));
        const bitrate = streams.reduce((sum, s) => sum + s.bitrate, 0);
        const fps = !video ? "audio only" : seen.video ? `${Math.round(video.fps)} fps` : "measuring…";
        rows.push(
          row([
            leg.role,
            leg.state,
            leg.rtt_ms == null ? "measuring…" : `${Math.round(leg.rtt_ms)} ms`,
            `${(loss * 100).toFixed(1)} %`,
            `${Math.round(bitrate / 1000)} kbit/s`,
            fps,
          ]),
        );
      }
      Object.assign(rows[rows.length - 1].dataset, dataset);
    }
    this.quality.replaceChildren(...rows);
    this.quality.hidden = false;
  }

  /**
   * Whether a leg's figures exist yet. The server's first sample of a new connection has no
   * rates (0 bit/s, 0 fps), which would read as a dead call: a leg is "measuring…" until media
   * has moved on it. A new connection (a rejoin, or a switch: another peer, whose packet count
   * starts again, or other kinds of media) measures again; once measured, a real stall shows 0.
   */
  _measure(leg, streams) {
    const packets = streams.reduce((sum, s) => sum + s.packets, 0);
    const kinds = streams.map((s) => s.kind).sort().join(",");
    const before = this.measured.get(leg.user_id);
    const same = before && leg.state === "connected" && packets >= before.packets && kinds === before.kinds;
    const moving = (kind) => streams.some((s) => (!kind || s.kind === kind) && s.bitrate > 0);
    const seen = {
      packets,
      kinds,
      measured: leg.state === "connected" && ((same && before.measured) || moving()),
      video: leg.state === "connected" && ((same && before.video) || moving("video")),
    };
    this.measured.set(leg.user_id, seen);
    return seen;
  }

  render(updateStatus = true) {
    const active = this.consultation.status === "active" && !this.closed;
    const inCall = active && this.form !== "chat";
    this.element.hidden = !active;
    this.element.dataset.form = this.form;
    this.media.hidden = !inCall;
    this.localVideo.hidden = this.form !== "video";
    this.remoteVideo.hidden = this.form !== "video";
    this.controls.hidden = !inCall;
    this.cameraButton.hidden = this.form !== "video";
    this.muteButton.textContent = this.muted ? "Unmute" : "Mute";
    this.muteButton.setAttribute("aria-pressed", String(this.muted));
    this.cameraButton.textContent = this.cameraOff ? "Camera on" : "Camera off";
    this.cameraButton.setAttribute("aria-pressed", String(this.cameraOff));
    for (const [form, button] of Object.entries(this.formButtons)) button.hidden = form === this.form;
    const pending = this.pending && this.pending.to_user === this.me.id ? this.pending : null;
    this.requestBox.hidden = !pending;
    if (pending) {
      this.requestText.textContent = `${this.otherName} asks to switch to ${pending.form}.`;
    }
    if (!this.showQuality || !inCall) this.quality.hidden = true;
    if (updateStatus) {
      this.status.textContent = !inCall
        ? "Chat only: no call."
        : this.reconnecting
          ? "Reconnecting…"
          : `In a ${this.form} call.`;
    }
  }
}

/** For the record: the forms a consultation went through, and its recordings to download. */
export function renderCallHistory(forms, recordings) {
  const parts = [];
  if (forms.length > 1) {
    parts.push(
      el("p", {
        className: "muted small",
        "data-testid": "record-forms",
        text: `Forms used: ${forms
          .map((f) => `${f.form}${f.started_at ? ` (from ${formatTime(f.started_at)})` : ""}`)
          .join(" → ")}`,
      }),
    );
  }
  for (const r of recordings) {
    const status = r.status === "composing" ? "being prepared for playback" : r.status;
    const label = r.status === "ready" ? "Call recording (WebM)" : `Call recording: ${status}`;
    parts.push(
      el(
        "p",
        { className: "small", "data-testid": "record-recording" },
        r.status === "ready" ? el("a", { href: r.url, download: "", text: label }) : label,
        ` · ${formatTime(r.started_at)}`,
      ),
    );
  }
  return el("div", { className: "record-calls" }, ...parts);
}

/** Resolves when ICE gathering is complete, or after GATHER_MS with what was gathered. */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, GATHER_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}
