// The session of kite.js (connect(): OPEN, OPENED, frames, pings, the close
// notice, the disconnect reasons) against a scripted server behind a fake
// WebSocket, on a manual clock: no network, no real time.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  connect, encodeFrame, FrameReader, Reason, Err, FLAG_PONG, MSG_CLOSE_NOTICE,
} from '../kite.js';

// A clock that moves only when told, running what falls due in order.
class Clock {
  constructor() { this.t = 1000; this.q = []; this.seq = 0; }
  now() { return this.t; }
  setTimeout(fn, ms) { const id = ++this.seq; this.q.push({ id, at: this.t + ms, fn }); return id; }
  clearTimeout(id) { this.q = this.q.filter((e) => e.id !== id); }
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      this.q.sort((a, b) => a.at - b.at || a.id - b.id);
      if (!this.q.length || this.q[0].at > end) break;
      const e = this.q.shift();
      this.t = Math.max(this.t, e.at);
      e.fn();
    }
    this.t = end;
  }
}

// The server's end of a fake WebSocket: what the client sent, cut into
// OPEN and frames, and a way to send it bytes.
function fakeWebSocket() {
  const server = { socket: null, sent: [], frames: [], open: null, closed: null };
  class FakeWS {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.bufferedAmount = 0;
      server.socket = this;
      this.reader = new FrameReader(1 << 20);
    }
    send(bytes) {
      assert.ok(bytes instanceof Uint8Array);
      assert.equal(this.readyState, 1);
      server.sent.push(Uint8Array.from(bytes));
      let b = bytes;
      if (!server.open) { server.open = Uint8Array.from(b.subarray(0, 8)); b = b.subarray(8); }
      this.reader.push(b, (h, body) => server.frames.push({ ...h, body: Uint8Array.from(body) }));
    }
    close(code) { this.readyState = 3; server.closed = code; }
  }
  server.WebSocket = FakeWS;
  server.accept = () => { server.socket.readyState = 1; server.socket.onopen(); };
  server.deliver = (bytes) => server.socket.onmessage({ data: Uint8Array.from(bytes).buffer });
  server.end = (wasClean) => { server.socket.readyState = 3; server.socket.onclose({ wasClean }); };
  return server;
}

const OPENED = (idle, maxFrame) => {
  const b = new Uint8Array(16);
  b.set([0x4b, 0x49, 0x54, 0x45, 8, 1, 0, 0]);
  const v = new DataView(b.buffer);
  v.setUint32(8, idle, true);
  v.setUint32(12, maxFrame, true);
  return b;
};

function session(opts = {}) {
  const clock = new Clock();
  const srv = fakeWebSocket();
  const ev = { connect: 0, messages: [], disconnect: [] };
  const conn = connect('ws://kite.test/', {
    WebSocket: srv.WebSocket, clock,
    onConnect: () => ev.connect++,
    onMessage: (id, body) => ev.messages.push({ id, body: Uint8Array.from(body) }),
    onDisconnect: (reason) => ev.disconnect.push(reason),
    ...opts,
  });
  return { clock, srv, ev, conn };
}

test('OPEN, OPENED cut anywhere, then frames both ways', () => {
  const { clock, srv, ev, conn } = session();
  assert.equal(conn.send(1, new Uint8Array(1)), Err.STATE); // not open yet
  srv.accept();
  assert.deepEqual(srv.open, new Uint8Array([0x4b, 0x49, 0x54, 0x45, 7, 1, 0, 0]));
  // OPENED and the first frames in one message, cut inside OPENED.
  const first = new Uint8Array([...OPENED(30000, 1000), ...encodeFrame(42, new Uint8Array([1, 2, 3]))]);
  srv.deliver(first.subarray(0, 5));
  assert.equal(ev.connect, 0);
  srv.deliver(first.subarray(5, 20));
  assert.equal(ev.connect, 1);
  srv.deliver(first.subarray(20));
  assert.deepEqual(ev.messages, [{ id: 42, body: new Uint8Array([1, 2, 3]) }]);
  // A ping right after OPENED: the first RTT sample.
  assert.equal(srv.frames.length, 1);
  assert.equal(srv.frames[0].msgId, 0);
  assert.equal(srv.frames[0].body.length, 4);
  // The server's pong gives the RTT.
  clock.advance(7);
  srv.deliver(encodeFrame(0, srv.frames[0].body, FLAG_PONG));
  assert.equal(conn.lastRttMs, 7);
  // Sends: checked, then one frame per message.
  assert.equal(conn.send(0, new Uint8Array(1)), Err.INVALID);
  assert.equal(conn.send(0xff01, new Uint8Array(1)), Err.INVALID);
  assert.equal(conn.send(5, new Uint8Array(1001)), Err.MSGSIZE);
  assert.equal(conn.send(5, new Uint8Array(1000)), Err.OK);
  assert.equal(srv.frames.at(-1).msgId, 5);
  assert.equal(srv.frames.at(-1).body.length, 1000);
  // A ping from the server is answered with the same body, no handler.
  srv.deliver(encodeFrame(0, new Uint8Array([9, 8])));
  assert.deepEqual(srv.frames.at(-1), { len: 2, msgId: 0, flags: FLAG_PONG, crc: 0, body: new Uint8Array([9, 8]) });
  assert.equal(ev.messages.length, 1);
});

test('pings every min(idle / 3, 15 s); silence for idle_timeout_ms closes', () => {
  const { clock, srv, ev } = session();
  srv.accept();
  srv.deliver(OPENED(3000, 1000));
  const pings = () => srv.frames.filter((f) => f.msgId === 0 && !(f.flags & FLAG_PONG)).length;
  assert.equal(pings(), 1);
  clock.advance(999);
  assert.equal(pings(), 1);
  clock.advance(1);
  assert.equal(pings(), 2);
  srv.deliver(encodeFrame(0, new Uint8Array(4), FLAG_PONG)); // at t+1000
  clock.advance(1000);
  assert.equal(pings(), 3);
  assert.deepEqual(ev.disconnect, []);
  // Nothing more from the server: idle 3000 ms after its last bytes.
  clock.advance(1999);
  assert.deepEqual(ev.disconnect, []);
  clock.advance(1);
  clock.advance(0);
  assert.deepEqual(ev.disconnect, [Reason.IDLE]);
  // It told the server why, then closed.
  assert.equal(srv.frames.at(-1).msgId, MSG_CLOSE_NOTICE);
  assert.deepEqual(srv.frames.at(-1).body, new Uint8Array([Reason.IDLE]));
  assert.equal(srv.closed, 1000);
});

test('the server\'s close notice gives the reason; exactly one disconnect', () => {
  const { clock, srv, ev, conn } = session();
  srv.accept();
  srv.deliver(new Uint8Array([...OPENED(0, 1000), ...encodeFrame(MSG_CLOSE_NOTICE, new Uint8Array([4]))]));
  assert.equal(ev.messages.length, 0); // reserved ids reach no handler
  srv.end(true);
  clock.advance(0);
  assert.deepEqual(ev.disconnect, [Reason.KICKED]);
  assert.equal(conn.close(), false);
  srv.end(true);
  clock.advance(10);
  assert.deepEqual(ev.disconnect, [Reason.KICKED]);
});

test('an end without a notice: NORMAL if clean, CONN_RESET if not', () => {
  for (const [clean, want] of [[true, Reason.NORMAL], [false, Reason.CONN_RESET]]) {
    const { clock, srv, ev } = session();
    srv.accept();
    srv.deliver(OPENED(0, 1000));
    srv.end(clean);
    clock.advance(0);
    assert.deepEqual(ev.disconnect, [want]);
  }
});

test('close() sends the notice with reason 0, then disconnect(NORMAL)', () => {
  const { clock, srv, ev, conn } = session();
  srv.accept();
  srv.deliver(OPENED(0, 1000));
  assert.equal(conn.close(), true);
  assert.deepEqual(ev.disconnect, []); // never inside the caller's call
  clock.advance(0);
  assert.deepEqual(ev.disconnect, [Reason.NORMAL]);
  assert.equal(srv.frames.at(-1).msgId, MSG_CLOSE_NOTICE);
  assert.deepEqual(srv.frames.at(-1).body, new Uint8Array([0]));
  assert.equal(conn.send(5, new Uint8Array(1)), Err.STATE);
});

test('handshake outcomes: REJECT, timeout, refused, not kite', () => {
  let s = session();
  s.srv.accept();
  const reject = new Uint8Array(17);
  reject.set([0x4b, 0x49, 0x54, 0x45, 5, 1]);
  reject[16] = 3;
  s.srv.deliver(reject);
  s.clock.advance(0);
  assert.deepEqual(s.ev.disconnect, [Reason.REJECTED_SHUTDOWN]);
  assert.equal(s.ev.connect, 0);

  s = session({ connectTimeoutMs: 500 });
  s.srv.accept();
  s.clock.advance(499);
  assert.deepEqual(s.ev.disconnect, []);
  s.clock.advance(1);
  s.clock.advance(0);
  assert.deepEqual(s.ev.disconnect, [Reason.CONNECT_TIMEOUT]);

  s = session();
  s.srv.end(false); // the WebSocket never opened
  s.clock.advance(0);
  assert.deepEqual(s.ev.disconnect, [Reason.CONNECT_FAILED]);

  s = session();
  s.srv.socket.onerror({}); // a failed upgrade, before any close
  s.clock.advance(0);
  assert.deepEqual(s.ev.disconnect, [Reason.CONNECT_FAILED]);
  s.srv.end(false);
  s.clock.advance(0);
  assert.deepEqual(s.ev.disconnect, [Reason.CONNECT_FAILED]);

  s = session();
  s.srv.accept();
  s.srv.deliver(new TextEncoder().encode('HTTP/1.1 200 OK\r\n'));
  s.clock.advance(0);
  assert.deepEqual(s.ev.disconnect, [Reason.PROTOCOL]);
});

test('a bad frame from the server: notice 2, disconnect(PROTOCOL)', () => {
  const { clock, srv, ev } = session({ maxFrame: 100 });
  srv.accept();
  srv.deliver(OPENED(0, 1000)); // the client's own limit is smaller
  srv.deliver(encodeFrame(9, new Uint8Array(101)).subarray(0, 12));
  clock.advance(0);
  assert.deepEqual(ev.disconnect, [Reason.PROTOCOL]);
  assert.deepEqual(srv.frames.at(-1).body, new Uint8Array([Reason.PROTOCOL]));
});

test('sends past sendMax are refused whole; CRC when asked', () => {
  const { srv, conn } = session({ sendMax: 100, crc: true });
  srv.accept();
  srv.deliver(OPENED(0, 1000));
  srv.socket.bufferedAmount = 50;
  assert.equal(conn.send(5, new Uint8Array(38)), Err.OK); // 50 + 12 + 38
  assert.equal(srv.frames.at(-1).flags & 1, 1);
  const n = srv.sent.length;
  assert.equal(conn.send(5, new Uint8Array(39)), Err.FULL);
  assert.equal(srv.sent.length, n);
});
