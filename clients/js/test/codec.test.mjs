// The codec parts of kite.js against known values: CRC-32 as zlib computes
// it (python3 -c 'import zlib; print(hex(zlib.crc32(b"...")))'), and frames
// byte for byte as PROTOCOL.md section 4 and src/proto/frame.c lay them out.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  crc32, encodeFrame, FrameReader, FrameError, ProtocolError, encodeOpen,
  decodeReply, pingPeriod, FLAG_CRC, FLAG_PONG, FRAME_HDR,
} from '../kite.js';

const enc = (s) => new TextEncoder().encode(s);

test('crc32 matches zlib', () => {
  assert.equal(crc32(new Uint8Array(0)), 0x00000000);
  assert.equal(crc32(enc('a')), 0xe8b7be43);
  assert.equal(crc32(enc('123456789')), 0xcbf43926);
  assert.equal(crc32(enc('kite')), 0xfcee7694);
  assert.equal(crc32(enc('The quick brown fox jumps over the lazy dog')), 0x414fa339);
  const all = new Uint8Array(256).map((_, i) => i);
  assert.equal(crc32(all), 0x29058c73);
  // Going on from a previous value, as zlib's crc32(crc, ...) does.
  assert.equal(crc32(enc('56789'), crc32(enc('1234'))), 0xcbf43926);
});

test('frames are encoded as section 4 lays them out', () => {
  // len 4, msg_id 0x1234, flags CRC, crc32("kite") = 0xfcee7694.
  assert.deepEqual(
    encodeFrame(0x1234, enc('kite'), 0, true),
    new Uint8Array([4, 0, 0, 0, 0x34, 0x12, 1, 0, 0x94, 0x76, 0xee, 0xfc, 0x6b, 0x69, 0x74, 0x65]));
  // Without CRC, the flag and the field are clear whatever flags said.
  assert.deepEqual(
    encodeFrame(7, enc('kite'), FLAG_CRC | 0x8000),
    new Uint8Array([4, 0, 0, 0, 7, 0, 0, 0x80, 0, 0, 0, 0, 0x6b, 0x69, 0x74, 0x65]));
  // A pong of an empty ping; an empty body's CRC is 0.
  assert.deepEqual(encodeFrame(0, undefined, FLAG_PONG, true),
    new Uint8Array([0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0]));
  // The close notice, reason 2.
  assert.deepEqual(encodeFrame(0xff01, new Uint8Array([2])),
    new Uint8Array([1, 0, 0, 0, 1, 0xff, 0, 0, 0, 0, 0, 0, 2]));
});

function collect(reader, pieces) {
  const got = [];
  for (const p of pieces)
    reader.push(p, (h, body) => got.push({ ...h, body: Uint8Array.from(body) }));
  return got;
}

test('the reader cuts a stream fed in any pieces', () => {
  const bodies = [enc(''), enc('x'), enc('hello kite'), new Uint8Array(5000).fill(7)];
  const parts = bodies.map((b, i) => encodeFrame(100 + i, b, 0, i % 2 === 1));
  const stream = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { stream.set(p, o); o += p.length; }
  for (const step of [1, 2, 5, 11, 12, 13, 100, 4096, stream.length]) {
    const pieces = [];
    for (let i = 0; i < stream.length; i += step) pieces.push(stream.subarray(i, i + step));
    const r = new FrameReader(8192);
    const got = collect(r, pieces);
    assert.equal(got.length, bodies.length, `step ${step}`);
    got.forEach((f, i) => {
      assert.equal(f.msgId, 100 + i);
      assert.deepEqual(f.body, bodies[i]);
    });
    assert.equal(r.buffered, 0);
  }
});

test('a partial frame is held, at most one frame', () => {
  const r = new FrameReader(100);
  const f = encodeFrame(9, enc('abcdef'));
  assert.deepEqual(collect(r, [f.subarray(0, 15)]), []);
  assert.equal(r.buffered, 15);
  const got = collect(r, [f.subarray(15)]);
  assert.equal(got.length, 1);
  assert.deepEqual(got[0].body, enc('abcdef'));
});

test('protocol errors: length, CRC, pong flag, long ping', () => {
  const bad = (frame, max, why) => {
    const r = new FrameReader(max);
    assert.throws(() => r.push(frame, () => {}), (e) => e instanceof ProtocolError && e.why === why);
    // Sticky.
    assert.throws(() => r.push(new Uint8Array(0), () => {}), ProtocolError);
  };
  // Refused from the header alone: no body byte needed.
  bad(encodeFrame(5, new Uint8Array(101)).subarray(0, FRAME_HDR), 100, FrameError.TOO_LONG);
  const f = encodeFrame(5, enc('kite'), 0, true);
  f[FRAME_HDR] ^= 1;
  bad(f, 100, FrameError.CRC);
  bad(encodeFrame(5, enc('x'), FLAG_PONG), 100, FrameError.PONG);
  bad(encodeFrame(0, new Uint8Array(33)), 100, FrameError.PING_LONG);
  // The limits themselves pass.
  assert.equal(collect(new FrameReader(100), [encodeFrame(5, new Uint8Array(100))]).length, 1);
  assert.equal(collect(new FrameReader(100), [encodeFrame(0, new Uint8Array(32))]).length, 1);
});

test('OPEN, OPENED and REJECT', () => {
  assert.deepEqual(encodeOpen(), new Uint8Array([0x4b, 0x49, 0x54, 0x45, 7, 1, 0, 0]));
  const opened = new Uint8Array([0x4b, 0x49, 0x54, 0x45, 8, 1, 0, 0,
    0x30, 0x75, 0, 0, 0, 0, 1, 0]);
  assert.deepEqual(decodeReply(opened.subarray(0, 3)), { size: 8 });
  assert.deepEqual(decodeReply(opened.subarray(0, 8)), { size: 16 });
  assert.deepEqual(decodeReply(opened), { type: 'opened', idleTimeoutMs: 30000, maxFrame: 65536 });
  const reject = new Uint8Array(17);
  reject.set([0x4b, 0x49, 0x54, 0x45, 5, 1]);
  reject[16] = 1;
  assert.deepEqual(decodeReply(reject.subarray(0, 10)), { size: 17 });
  assert.deepEqual(decodeReply(reject), { type: 'rejected', reason: 1 });
  const v2 = Uint8Array.from(reject);
  v2[5] = 2;
  assert.deepEqual(decodeReply(v2.subarray(0, 8)), { type: 'rejected', reason: 2 });
  assert.deepEqual(decodeReply(enc('HTTP/1.1 400')), { type: 'bad' });
  assert.deepEqual(decodeReply(new Uint8Array([0x4b, 0x49, 0x54, 0x45, 2, 1, 0, 0])), { type: 'bad' });
});

test('the ping period', () => {
  assert.equal(pingPeriod(0, 30000), 10000);
  assert.equal(pingPeriod(0, 60000), 15000);
  assert.equal(pingPeriod(0, 0), 15000);
  assert.equal(pingPeriod(0, 2), 1);
  assert.equal(pingPeriod(250, 30000), 250);
});
