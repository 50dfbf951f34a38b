// e2e_ws_kite_echo: clients/js/kite.js over Node's own WebSocket against a
// real kite-echo (the server's WebSocket transport on its TCP port), with
// Node's test runner: frames of every WebSocket length encoding echoed,
// the client's own close (reason 0), a stop of the server (reason 3 in
// kite's close notice), and a plain GET answered 404 without --http-root.
// Exit 77 (skipped) when this Node has no WebSocket class.
//
// usage: node [--experimental-websocket] --test ws_kite_echo.mjs
//        (KITE_ECHO: the kite-echo binary)
import { spawn } from 'node:child_process';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, Reason } from '../../clients/js/kite.js';

if (typeof WebSocket !== 'function') {
  console.log('no WebSocket in this Node: skipped');
  process.exit(77);
}

const children = [];
after(() => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL')));

// A kite-echo on a free port: [process, port].
async function startEcho() {
  const p = spawn(process.env.KITE_ECHO,
    ['--udp', '127.0.0.1:0', '--tcp', '127.0.0.1:0', '--threads', '2'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(p);
  const port = await new Promise((resolve) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /tcp port (\d+)/.exec(out);
      if (m) resolve(parseInt(m[1], 10));
    });
    p.on('exit', () => resolve(0));
  });
  assert.ok(port > 0, 'kite-echo did not start');
  return [p, port];
}

const body = (i, n) => Uint8Array.from({ length: n }, (_, k) => (k * 31 + i) & 0xff);

test('echo, then the client closes: reason 0', { timeout: 20000 }, async () => {
  const [p, port] = await startEcho();
  const sizes = [0, 1, 113, 114, 1000, 4096, 60000, 7];
  let next = 0;
  const reason = await new Promise((resolve) => {
    connect(`ws://127.0.0.1:${port}/`, {
      crc: true,
      onConnect(conn) {
        sizes.forEach((n, i) => assert.equal(conn.send(100 + i, body(i, n)), 0));
      },
      onMessage(msgId, b, conn) {
        const i = next++;
        assert.equal(msgId, 100 + i);
        assert.deepEqual(Array.from(b), Array.from(body(i, sizes[i])));
        if (next === sizes.length) conn.close();
      },
      onDisconnect: resolve,
    });
  });
  assert.equal(reason, Reason.NORMAL);
  assert.equal(next, sizes.length);
  p.kill('SIGTERM');
});

test('a server stop closes the session with reason 3', { timeout: 20000 }, async () => {
  const [p, port] = await startEcho();
  const reason = await new Promise((resolve) => {
    connect(`ws://127.0.0.1:${port}/`, {
      onConnect(conn) { conn.send(7, body(1, 10)); },
      onMessage() { p.kill('SIGTERM'); }, // the echo came: stop the server
      onDisconnect: resolve,
    });
  });
  assert.equal(reason, Reason.SHUTDOWN);
});

test('a plain GET gets 404 without --http-root', { timeout: 20000 }, async () => {
  const [p, port] = await startEcho();
  const r = await fetch(`http://127.0.0.1:${port}/index.html`);
  assert.equal(r.status, 404);
  p.kill('SIGTERM');
});
