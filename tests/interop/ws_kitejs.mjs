// interop_ws_kitejs: clients/js/kite.js over Node's own WebSocket against
// ws_echo_peer (kite's HTTP head parser, 101 and kite__ws). Sends frames of
// sizes that take every WebSocket length encoding (7, 16 and 64 bits), with
// CRC, checks each echo, then closes and expects the peer to exit 0.
// Exit 77 (skipped) when this Node has no WebSocket class.
//
// usage: node [--experimental-websocket] ws_kitejs.mjs PEER_BINARY
import { spawn } from 'node:child_process';
import { connect, Reason } from '../../clients/js/kite.js';

if (typeof WebSocket !== 'function') {
  console.log('no WebSocket in this Node: skipped');
  process.exit(77);
}

const sizes = [0, 1, 113, 114, 1000, 65523, 65524, 65536, 4096, 7];
const body = (i, n) => Uint8Array.from({ length: n }, (_, k) => (k * 31 + i) & 0xff);

const peer = spawn(process.argv[2], ['20'], { stdio: ['ignore', 'pipe', 'inherit'] });
const deadline = setTimeout(() => fail('timed out'), 20000);
function fail(why) {
  console.error(`ws_kitejs: ${why}`);
  peer.kill('SIGKILL');
  process.exit(1);
}

const port = await new Promise((resolve) => {
  let out = '';
  peer.stdout.on('data', (d) => {
    out += d;
    if (out.includes('\n')) resolve(parseInt(out, 10));
  });
  peer.on('exit', () => resolve(0));
});
if (!port) fail('the peer did not start');

const peerExit = new Promise((resolve) => peer.on('exit', (code) => resolve(code)));
let next = 0;
const reason = await new Promise((resolve) => {
  connect(`ws://127.0.0.1:${port}/kite`, {
    crc: true,
    onConnect(conn) {
      sizes.forEach((n, i) => {
        const rc = conn.send(100 + i, body(i, n));
        if (rc !== 0) fail(`send ${i} (${n} bytes): ${rc}`);
      });
    },
    onMessage(msgId, b, conn) {
      const i = next++;
      if (msgId !== 100 + i) fail(`echo ${i}: msg_id ${msgId}`);
      const want = body(i, sizes[i]);
      if (b.length !== want.length || !b.every((x, k) => x === want[k]))
        fail(`echo ${i}: ${b.length} bytes differ`);
      if (next === sizes.length) conn.close();
    },
    onDisconnect: resolve,
  });
});
if (reason !== Reason.NORMAL) fail(`disconnect reason ${reason}`);
if (next !== sizes.length) fail(`${next} echoes of ${sizes.length}`);
const code = await peerExit;
clearTimeout(deadline);
if (code !== 0) fail(`the peer exited ${code}`);
console.log(`1 passed, 0 failed (${sizes.length} frames echoed)`);
