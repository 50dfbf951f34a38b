// kite's JavaScript client: a kite session over WebSocket, for browsers
// (and for Node with a WebSocket implementation). An ES module with no
// dependencies and no build step.
//
//   import { connect } from './kite.js';
//   const conn = connect('ws://127.0.0.1:7001/', {
//     onConnect(conn) { conn.send(100, new TextEncoder().encode('hi')); },
//     onMessage(msgId, body, conn) { ... },     // body: a Uint8Array
//     onDisconnect(reason, conn) { ... },       // exactly once
//   });
//
// The wire (PROTOCOL.md, kite's contract): each binary WebSocket message
// carries bytes of the same stream a kite TCP session carries (section 5),
// cut anywhere: the client sends OPEN (the 8-byte control header, type 7),
// the server answers OPENED (idle_timeout_ms, max_frame) or REJECT (then
// closes), and frames (section 4) follow both ways. The server's side of
// the upgrade is kite's TCP port, which answers a GET with Upgrade:
// websocket there.
//
// Events match the C client's (include/kite/client.h): onConnect once when
// OPENED arrives, onMessage for each application frame (pings, pongs and
// kite's reserved msg_ids never reach it), then onDisconnect exactly once
// for every connect(), whether the session opened or not, with a reason:
// PROTOCOL.md's close reasons 0..6 (Reason below), or an outcome of the
// client's own from 0x100 up, with the C client's values.
//
// Frames out: send() encodes the frame (with its CRC-32 when opts.crc) and
// hands it to the WebSocket as one message. The browser queues what the
// network does not take (bufferedAmount); a send that would take that
// queue over opts.sendMax is refused with Err.FULL, so a stalled link costs
// a bounded amount of memory, as tcp_send_max bounds the C client.

/** PROTOCOL.md section 2, "Closing": the reasons a session ends. */
export const Reason = Object.freeze({
  NORMAL: 0,
  IDLE: 1,
  PROTOCOL: 2,
  SHUTDOWN: 3,
  KICKED: 4,
  DEAD_LINK: 5,
  SLOW_PEER: 6,
  // The client's own outcomes, as include/kite/client.h numbers them.
  REJECTED_FULL: 0x101,
  REJECTED_VERSION: 0x102,
  REJECTED_SHUTDOWN: 0x103,
  CONNECT_TIMEOUT: 0x200,
  CONNECT_FAILED: 0x202,
  CONN_RESET: 0x203,
});

/** REJECT reason r is reported as 0x100 + r, whatever r is. */
export const rejected = (r) => 0x100 + r;

/** Return codes of send() and ping(): kite's KITE_E* values. */
export const Err = Object.freeze({
  OK: 0,
  INVALID: -1, // KITE_EINVAL: msg_id 0 or 0xFF00..0xFFFF, or not bytes
  FULL: -3, // KITE_EFULL: over sendMax; nothing was sent
  MSGSIZE: -5, // KITE_EMSGSIZE: body over the server's max_frame
  STATE: -10, // KITE_ESTATE: before onConnect, or once closed
});

export const FRAME_HDR = 12;
export const FLAG_CRC = 0x0001;
export const FLAG_PONG = 0x0002;
export const MSG_PING = 0;
export const MSG_RESERVED_MIN = 0xff00;
export const MSG_CLOSE_NOTICE = 0xff01;
export const PING_BODY_MAX = 32;

const CTRL_HDR = 8;
const PROTO_VERSION = 1;
const CTRL_REJECT = 5;
const CTRL_OPEN = 7;
const CTRL_OPENED = 8;

// ---- CRC-32 (IEEE 802.3, zlib's crc32(): reflected 0xEDB88320) ----

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * zlib's crc32(crc, bytes): the CRC-32 of |bytes| (a Uint8Array), going on
 * from |crc| (0 to start). An empty input gives |crc| back (0 from 0).
 */
export function crc32(bytes, crc = 0) {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++)
    c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ---- frames (PROTOCOL.md section 4) ----

/**
 * One frame's bytes: the 12-byte header (len u32, msg_id u16, flags u16,
 * crc32 u32, little-endian) and |body|. With |crc| the CRC flag is set and
 * crc32 computed over the body; without it both are clear, whatever
 * |flags| says. Other flag bits are written as given.
 */
export function encodeFrame(msgId, body = new Uint8Array(0), flags = 0, crc = false) {
  const out = new Uint8Array(FRAME_HDR + body.length);
  const v = new DataView(out.buffer);
  flags = crc ? flags | FLAG_CRC : flags & ~FLAG_CRC;
  v.setUint32(0, body.length, true);
  v.setUint16(4, msgId, true);
  v.setUint16(6, flags & 0xffff, true);
  v.setUint32(8, crc ? crc32(body) : 0, true);
  out.set(body, FRAME_HDR);
  return out;
}

/** Why a frame is a protocol error (frame.h's kite__frame_err). */
export const FrameError = Object.freeze({
  TOO_LONG: 'frame body longer than max_frame',
  CRC: 'frame body does not match its crc32',
  PONG: 'pong flag on a msg_id other than 0',
  PING_LONG: 'ping or pong body over 32 bytes',
});

/** Thrown by FrameReader.push() for a stream that breaks section 4. */
export class ProtocolError extends Error {
  constructor(why) {
    super(why);
    this.name = 'ProtocolError';
    this.why = why;
  }
}

/**
 * Cuts a byte stream into frames, as src/proto/frame.c does: bytes in, in
 * any pieces; whole, checked frames out. Holds at most one frame (12 +
 * maxFrame bytes): a header over maxFrame is refused before any of its
 * body is kept. After an error the reader is unusable (each push throws
 * the same error).
 */
export class FrameReader {
  constructor(maxFrame) {
    this.maxFrame = maxFrame;
    this.hdr = new Uint8Array(FRAME_HDR);
    this.hdrHave = 0;
    this.h = null; // {len, msgId, flags, crc} once the header is whole
    this.body = null;
    this.bodyHave = 0;
    this.error = null;
  }

  /** Bytes held for a partial frame. */
  get buffered() {
    return this.hdrHave + this.bodyHave;
  }

  /**
   * Feeds |bytes| (a Uint8Array); calls |onFrame(h, body)| for each whole
   * frame, in order. |body| may be a view of |bytes|: copy what must
   * outlive the call. Throws ProtocolError on a bad frame.
   */
  push(bytes, onFrame) {
    if (this.error) throw this.error;
    let off = 0;
    // A frame whose header ends the piece goes out in the same turn when
    // its body is empty, so the loop needs bytes only to start one.
    while (off < bytes.length) {
      if (!this.h) {
        const n = Math.min(FRAME_HDR - this.hdrHave, bytes.length - off);
        this.hdr.set(bytes.subarray(off, off + n), this.hdrHave);
        this.hdrHave += n;
        off += n;
        if (this.hdrHave < FRAME_HDR) break;
        const v = new DataView(this.hdr.buffer);
        this.h = {
          len: v.getUint32(0, true),
          msgId: v.getUint16(4, true),
          flags: v.getUint16(6, true),
          crc: v.getUint32(8, true),
        };
        this.check(checkHeader(this.h, this.maxFrame));
      }
      const h = this.h;
      let body;
      if (this.bodyHave === 0 && bytes.length - off >= h.len) {
        body = bytes.subarray(off, off + h.len); // whole in this piece
        off += h.len;
      } else {
        if (!this.body) this.body = new Uint8Array(h.len);
        const n = Math.min(h.len - this.bodyHave, bytes.length - off);
        this.body.set(bytes.subarray(off, off + n), this.bodyHave);
        this.bodyHave += n;
        off += n;
        if (this.bodyHave < h.len) break;
        body = this.body;
      }
      if (h.flags & FLAG_CRC && crc32(body) !== h.crc) this.check(FrameError.CRC);
      this.h = null;
      this.body = null;
      this.hdrHave = 0;
      this.bodyHave = 0;
      onFrame(h, body);
    }
  }

  check(why) {
    if (!why) return;
    this.error = new ProtocolError(why);
    this.h = null;
    this.body = null;
    throw this.error;
  }
}

/** The checks that need only the header, in frame.c's order; null if ok. */
export function checkHeader(h, maxFrame) {
  if (h.len > maxFrame) return FrameError.TOO_LONG;
  if (h.flags & FLAG_PONG && h.msgId !== MSG_PING) return FrameError.PONG;
  if (h.msgId === MSG_PING && h.len > PING_BODY_MAX) return FrameError.PING_LONG;
  return null;
}

// ---- control packets: OPEN, OPENED, REJECT (sections 2 and 5) ----

/** OPEN: the 8-byte header "KITE", type 7, version 1, reserved 0. */
export function encodeOpen() {
  return new Uint8Array([0x4b, 0x49, 0x54, 0x45, CTRL_OPEN, PROTO_VERSION, 0, 0]);
}

/**
 * The server's reply to OPEN, from its first bytes: {size} when more bytes
 * are needed first (size: the reply's whole length), or once whole
 * {type: 'opened', idleTimeoutMs, maxFrame} / {type: 'rejected', reason},
 * or {type: 'bad'} for anything else (not a kite server).
 */
export function decodeReply(b) {
  if (b.length < CTRL_HDR) return { size: CTRL_HDR };
  if (b[0] !== 0x4b || b[1] !== 0x49 || b[2] !== 0x54 || b[3] !== 0x45)
    return { type: 'bad' };
  // A server of another version says so in its own header (section 2).
  if (b[5] !== PROTO_VERSION)
    return b[4] === CTRL_REJECT ? { type: 'rejected', reason: 2 } : { type: 'bad' };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b[4] === CTRL_OPENED) {
    if (b.length < 16) return { size: 16 };
    return { type: 'opened', idleTimeoutMs: v.getUint32(8, true), maxFrame: v.getUint32(12, true) };
  }
  if (b[4] === CTRL_REJECT) {
    if (b.length < 17) return { size: 17 };
    return { type: 'rejected', reason: b[16] };
  }
  return { type: 'bad' };
}

/** The ping period: |pingMs|, or min(idle / 3, 15 s) (PROTOCOL.md section 4). */
export function pingPeriod(pingMs, idleTimeoutMs) {
  if (pingMs > 0) return pingMs;
  let p = 15000;
  if (idleTimeoutMs && Math.floor(idleTimeoutMs / 3) < p) p = Math.floor(idleTimeoutMs / 3);
  return Math.max(p, 1);
}

// ---- the session ----

const defaults = {
  crc: false, // set the CRC-32 of every frame sent
  pingMs: 0, // 0: pingPeriod(0, idle_timeout_ms) from OPENED
  maxFrame: 1 << 20, // largest body accepted; the smaller of this and OPENED's
  sendMax: 1 << 20, // bytes the WebSocket may hold unsent before send() refuses
  connectTimeoutMs: 2250, // OPENED within this (the C client's 250 ms * 9)
  WebSocket: undefined, // the WebSocket class; globalThis.WebSocket by default
  clock: undefined, // {now(), setTimeout(fn, ms), clearTimeout(t)}: tests
  onConnect: null,
  onMessage: null,
  onDisconnect: null,
};

const systemClock = {
  now: () => (globalThis.performance ? performance.now() : Date.now()),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t),
};

/**
 * Starts a session with the kite server at |url| ("ws://host:port/" or
 * "wss://..."), with the options above. Returns the Connection at once;
 * what follows comes through the callbacks. A connection that cannot be
 * made is not an exception but onDisconnect(Reason.CONNECT_FAILED), so
 * every failure takes one path. Throws only for a missing WebSocket class
 * or a URL the WebSocket constructor refuses.
 */
export function connect(url, opts = {}) {
  return new Connection(url, { ...defaults, ...opts });
}

export class Connection {
  constructor(url, o) {
    this.opts = o;
    this.clock = o.clock || systemClock;
    this.state = 'opening'; // 'opening', 'open', 'closed'
    this.idleTimeoutMs = 0;
    this.serverMaxFrame = 0; // the largest body the server takes (OPENED)
    this.lastRttMs = -1;
    this.stats = { framesIn: 0, framesOut: 0, pingsSent: 0, pongsSent: 0, dropReserved: 0 };
    this.reply = new Uint8Array(17); // OPENED or REJECT, gathered
    this.replyHave = 0;
    this.reader = null;
    this.notice = -1; // the reason of the server's close notice, once read
    this.lastRx = this.clock.now();
    this.timer = null;
    this.pingDue = 0;
    const WS = o.WebSocket || globalThis.WebSocket;
    if (!WS) throw new Error('kite: no WebSocket class (pass opts.WebSocket)');
    this.ws = new WS(url);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => this.sendRaw(encodeOpen());
    this.ws.onmessage = (ev) => this.onData(ev.data);
    this.ws.onclose = (ev) => this.onClose(ev);
    // A failed handshake may report its error well before the close (Node's
    // undici does); once open, the close that follows says the rest.
    this.ws.onerror = () => {
      if (this.state === 'opening') this.finish(Reason.CONNECT_FAILED);
    };
    this.arm(o.connectTimeoutMs, () => this.finish(Reason.CONNECT_TIMEOUT));
  }

  /**
   * Sends one frame with |msgId| (1..0xFEFF) and |body| (a Uint8Array, or
   * nothing). Returns Err.OK, or Err.STATE (not open), Err.INVALID,
   * Err.MSGSIZE (over the server's max_frame), Err.FULL (the WebSocket
   * holds sendMax bytes unsent: nothing was sent; retry later).
   */
  send(msgId, body = new Uint8Array(0)) {
    if (this.state !== 'open') return Err.STATE;
    if (!Number.isInteger(msgId) || msgId <= 0 || msgId >= MSG_RESERVED_MIN) return Err.INVALID;
    if (!(body instanceof Uint8Array)) return Err.INVALID;
    if (body.length > this.serverMaxFrame) return Err.MSGSIZE;
    const rc = this.sendFrame(msgId, 0, body);
    if (rc === Err.OK) this.stats.framesOut++;
    return rc;
  }

  /** An extra ping now (they go every ping period anyway); as send(). */
  ping() {
    if (this.state !== 'open') return Err.STATE;
    const body = new Uint8Array(4);
    new DataView(body.buffer).setUint32(0, this.clock.now() >>> 0, true);
    const rc = this.sendFrame(MSG_PING, 0, body);
    if (rc === Err.OK) this.stats.pingsSent++;
    return rc;
  }

  /**
   * Closes the session: the close notice (reason 0, PROTOCOL.md section
   * 5) goes after everything sent before it, then the WebSocket closes.
   * onDisconnect(Reason.NORMAL) follows, asynchronously. Returns false
   * when it was closed already.
   */
  close() {
    if (this.state === 'closed') return false;
    this.finish(Reason.NORMAL);
    return true;
  }

  // ---- inside ----

  sendRaw(bytes) {
    if (this.ws.readyState !== 1) return Err.STATE;
    this.ws.send(bytes);
    return Err.OK;
  }

  sendFrame(msgId, flags, body) {
    const frame = encodeFrame(msgId, body, flags, this.opts.crc);
    if ((this.ws.bufferedAmount || 0) + frame.length > this.opts.sendMax) return Err.FULL;
    return this.sendRaw(frame);
  }

  arm(ms, fn) {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = ms > 0 ? this.clock.setTimeout(() => { this.timer = null; fn(); }, ms) : null;
  }

  onData(data) {
    if (this.state === 'closed') return;
    // Text messages are not kite's: the server never sends them.
    if (typeof data === 'string') return this.finish(Reason.PROTOCOL);
    const bytes = new Uint8Array(data);
    this.lastRx = this.clock.now();
    let off = 0;
    if (this.state === 'opening') off = this.takeReply(bytes);
    if (this.state !== 'open' || off >= bytes.length) return;
    try {
      this.reader.push(off ? bytes.subarray(off) : bytes, (h, body) => this.onFrame(h, body));
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.finish(Reason.PROTOCOL);
    }
  }

  // Gathers OPENED or REJECT; returns the bytes of |bytes| it used.
  takeReply(bytes) {
    let off = 0;
    for (;;) {
      const r = decodeReply(this.reply.subarray(0, this.replyHave));
      if (r.size === undefined) return this.onReply(r, off);
      const n = Math.min(r.size - this.replyHave, bytes.length - off);
      if (n <= 0) return off;
      this.reply.set(bytes.subarray(off, off + n), this.replyHave);
      this.replyHave += n;
      off += n;
    }
  }

  onReply(r, off) {
    if (r.type === 'rejected') {
      this.finish(rejected(r.reason));
    } else if (r.type === 'opened') {
      this.state = 'open';
      this.idleTimeoutMs = r.idleTimeoutMs;
      this.serverMaxFrame = r.maxFrame;
      this.reader = new FrameReader(Math.min(this.opts.maxFrame, r.maxFrame));
      this.period = pingPeriod(this.opts.pingMs, r.idleTimeoutMs);
      this.ping(); // the first RTT sample, as the C client
      this.pingDue = this.clock.now() + this.period;
      this.tick();
      if (this.opts.onConnect) this.opts.onConnect(this);
    } else {
      this.finish(Reason.PROTOCOL); // not a kite server
    }
    return off;
  }

  // Pings every period; idle when the server is silent for idle_timeout_ms.
  tick() {
    if (this.state !== 'open') return;
    const now = this.clock.now();
    if (this.idleTimeoutMs && now - this.lastRx >= this.idleTimeoutMs)
      return this.finish(Reason.IDLE);
    if (now >= this.pingDue) {
      this.ping(); // a full output skips one; the next goes
      this.pingDue = now + this.period;
    }
    let next = this.pingDue - now;
    if (this.idleTimeoutMs) next = Math.min(next, this.lastRx + this.idleTimeoutMs - now);
    this.arm(Math.max(1, Math.ceil(next)), () => this.tick());
  }

  onFrame(h, body) {
    if (this.state !== 'open') return;
    if (h.msgId === MSG_PING) {
      if (h.flags & FLAG_PONG) {
        if (body.length === 4) {
          const sent = new DataView(body.buffer, body.byteOffset, 4).getUint32(0, true);
          const rtt = ((this.clock.now() >>> 0) - sent) >>> 0;
          if (rtt < 600000) this.lastRttMs = rtt;
        }
      } else if (this.sendFrame(MSG_PING, FLAG_PONG, body) === Err.OK) {
        this.stats.pongsSent++;
      }
      return;
    }
    if (h.msgId >= MSG_RESERVED_MIN) {
      if (h.msgId === MSG_CLOSE_NOTICE && body.length >= 1) this.notice = body[0];
      else this.stats.dropReserved++;
      return;
    }
    this.stats.framesIn++;
    if (this.opts.onMessage) this.opts.onMessage(h.msgId, body, this);
  }

  onClose(ev) {
    if (this.state === 'closed') return;
    if (this.state === 'opening') return this.finish(Reason.CONNECT_FAILED);
    // Section 5: the notice's reason; an orderly end without one is 0.
    if (this.notice >= 0) return this.finish(this.notice);
    this.finish(ev && ev.wasClean ? Reason.NORMAL : Reason.CONN_RESET);
  }

  // The one way out: tells the server why (when open and the reason is
  // ours), closes the WebSocket, and reports |reason| exactly once.
  finish(reason) {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    const ours = reason === Reason.NORMAL || reason === Reason.IDLE || reason === Reason.PROTOCOL;
    if (wasOpen && ours && this.ws.readyState === 1)
      this.ws.send(encodeFrame(MSG_CLOSE_NOTICE, new Uint8Array([reason]), 0, this.opts.crc));
    if (this.ws.readyState <= 1) this.ws.close(1000);
    // Never from inside another of this session's callbacks.
    this.clock.setTimeout(() => {
      if (this.opts.onDisconnect) this.opts.onDisconnect(reason, this);
    }, 0);
  }
}
