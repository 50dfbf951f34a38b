// e2e_arena_browser: the arena page (web/arena) in a real browser. Debian's
// chromium, headless, driven over the DevTools protocol (on a pipe: no
// port, no npm package), opens two pages on a running kited's one URL,
// http://127.0.0.1:PORT/, beside two kite-cli players, one over KCP and one
// over TCP. The pages log in (one through the name prompt and the room
// list, as a person would), join the room, move with the keyboard, chat;
// each side checks what it saw of the others. A screenshot of the arena is
// saved (OUTDIR/arena.png) and checked not blank (and the lobby's, as bob
// saw it, in OUTDIR/lobby.png). First, kited with
// --no-http or --http-root '' serves nothing (GET / is 404, no URL).
//
// usage: node arena_browser.mjs KITED KITE_CLI OUTDIR
//        (CHROMIUM: the browser, `chromium` on PATH by default)
// Exit 0 passed, 1 failed, 77 skipped: only when chromium is there but
// cannot start in this environment (said loudly). Every process started
// is killed by PID (chromium by its process group), on every path out.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

const [kitedBin, cliBin, outDir] = process.argv.slice(2);
const chromiumBin = process.env.CHROMIUM || 'chromium';
const DEADLINE_MS = 150000; // the whole test; ctest's TIMEOUT is above it
const WAIT_MS = 30000; // one condition, under a loaded machine

const procs = []; // {name, child, group}: every process started
const profile = mkdtempSync(join(tmpdir(), 'kite-arena-chromium-'));
let kitedOut = '';

function cleanup() {
  for (const p of procs.reverse()) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
    try {
      if (p.group) process.kill(-p.child.pid, 'SIGKILL');
      else p.child.kill(p.name === 'kited' ? 'SIGTERM' : 'SIGKILL');
    } catch { /* gone already */ }
  }
  rmSync(profile, { recursive: true, force: true });
}
process.on('exit', cleanup);

function fail(why) {
  console.error(`arena_browser: FAIL: ${why}`);
  for (const p of procs) if (p.out) console.error(`--- ${p.name}\n${p.out}`);
  console.error(`--- kited\n${kitedOut}`);
  process.exit(1);
}

function skip(why) {
  const bar = '*'.repeat(72);
  console.log(`${bar}\n* SKIPPED: chromium cannot start here: ${why}\n` +
    '* the arena page was NOT tested in a browser\n' + bar);
  process.exit(77);
}

setTimeout(() => fail(`not done within ${DEADLINE_MS} ms`), DEADLINE_MS).unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls |fn| (sync or async) until it returns a truthy value; that value.
async function until(what, fn, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// ---- kited and the kite-cli players ----

async function startKited() {
  const child = spawn(kitedBin, ['--udp', '127.0.0.1:0', '--threads', '2', '--workers', '2'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push({ name: 'kited', child });
  child.stderr.on('data', (d) => { kitedOut += d; });
  child.stdout.on('data', (d) => { kitedOut += d; });
  const url = await until('kited to print its URL', () => {
    if (child.exitCode !== null) fail('kited exited');
    const m = /arena in a browser: (http:\/\/127\.0\.0\.1:(\d+)\/)/.exec(kitedOut);
    return m && { url: m[1], port: Number(m[2]) };
  });
  return url;
}

// kited told to serve no files (|flag|): no URL printed, GET / is 404.
async function checkNoFiles(flag) {
  const child = spawn(kitedBin, ['--udp', '127.0.0.1:0', '--threads', '1', '--workers', '1', ...flag],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const p = { name: `kited ${flag.join(' ')}`, child, out: '' };
  procs.push(p);
  child.stdout.on('data', (d) => { p.out += d; });
  child.stderr.on('data', (d) => { p.out += d; });
  const port = await until(`${p.name} to listen`, () => Number(/tcp port (\d+)/.exec(p.out)?.[1]));
  const r = await fetch(`http://127.0.0.1:${port}/`);
  if (r.status !== 404) fail(`${p.name}: GET / answered ${r.status}, not 404`);
  if (p.out.includes('arena in a browser')) fail(`${p.name} printed a URL`);
  child.kill('SIGTERM');
}

function startCli(name, port, tcp) {
  const args = ['--server', `127.0.0.1:${port}`, '--name', name, '--join', 'arena'];
  if (tcp) args.push('--tcp');
  const child = spawn(cliBin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const p = { name: `kite-cli ${name}`, child, out: '' };
  child.stdout.on('data', (d) => { p.out += d; });
  child.stderr.on('data', (d) => { p.out += d; });
  procs.push(p);
  p.say = (line) => child.stdin.write(`${line}\n`);
  p.saw = (text) => until(`${name} (kite-cli) to print "${text}"`, () => p.out.includes(text));
  return p;
}

// ---- chromium over the DevTools protocol, on fds 3 and 4 ----

function startChromium() {
  const args = ['--headless', '--remote-debugging-pipe', `--user-data-dir=${profile}`,
    '--no-first-run', '--no-default-browser-check', '--disable-gpu',
    '--disable-dev-shm-usage', '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
    '--window-size=1000,760', 'about:blank'];
  if (process.getuid && process.getuid() === 0) args.unshift('--no-sandbox'); // root has no sandbox
  const child = spawn(chromiumBin, args,
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true }); // its own group
  const p = { name: 'chromium', child, group: true, log: '' };
  procs.push(p);
  child.stderr.on('data', (d) => { p.log = (p.log + d).slice(-4000); });
  const cdp = { next: 1, calls: new Map(), events: [] };
  let buf = Buffer.alloc(0);
  child.stdio[4].on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    let z;
    while ((z = buf.indexOf(0)) >= 0) {
      const msg = JSON.parse(buf.subarray(0, z).toString());
      buf = buf.subarray(z + 1);
      const call = msg.id && cdp.calls.get(msg.id);
      if (call) {
        cdp.calls.delete(msg.id);
        if (msg.error) call.reject(new Error(`${call.method}: ${msg.error.message}`));
        else call.resolve(msg.result);
      } else if (msg.method) {
        cdp.events.push(msg);
      }
    }
  });
  child.stdio[3].on('error', () => {}); // a browser that died: its calls time out
  cdp.send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const id = cdp.next++;
    cdp.calls.set(id, { resolve, reject, method });
    child.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + '\0');
  });
  cdp.child = child;
  cdp.proc = p;
  return cdp;
}

// A browser that answers within a bound, or a skip: it cannot start here.
async function browserUp(cdp) {
  const exited = new Promise((r) => cdp.child.on('exit', (code, sig) => r(`exited (${code ?? sig})`)));
  const spawnErr = new Promise((r) => cdp.child.on('error', (e) => r(e)));
  const timeout = sleep(30000).then(() => 'no answer on the DevTools pipe in 30 s');
  const r = await Promise.race([cdp.send('Browser.getVersion'), exited, spawnErr, timeout]);
  if (r instanceof Error) {
    if (r.code === 'ENOENT') fail(`${chromiumBin} not found: scripts/deps.sh installs chromium`);
    skip(`${r.message}\n${cdp.proc.log}`);
  }
  if (typeof r === 'string') skip(`${r}\n${cdp.proc.log}`);
  return r.product;
}

// A page: its own window (so neither is a background tab), attached.
async function openPage(cdp, url) {
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank', newWindow: true });
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  const page = {
    send: (m, p) => cdp.send(m, p, sessionId),
    async eval(expr) {
      const r = await this.send('Runtime.evaluate',
        { expression: expr, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) fail(`page threw: ${r.exceptionDetails.text} in ${expr}`);
      return r.result.value;
    },
    async key(type, code, key, vk) {
      await this.send('Input.dispatchKeyEvent',
        { type, code, key, windowsVirtualKeyCode: vk, nativeVirtualKeyCode: vk });
    },
    async press(code, key, vk, text) {
      await this.send('Input.dispatchKeyEvent', { type: 'keyDown', code, key,
        windowsVirtualKeyCode: vk, nativeVirtualKeyCode: vk, text });
      await this.key('keyUp', code, key, vk);
    },
    // Types |text| into the input |sel| (what was there replaced), then Enter.
    async type(sel, text) {
      await this.eval(`(() => { const e = document.querySelector(${JSON.stringify(sel)});
        e.focus(); e.select(); return 1; })()`);
      await this.send('Input.insertText', { text });
      await this.press('Enter', 'Enter', 13, '\r');
    },
  };
  await page.send('Page.enable');
  await page.send('Runtime.enable');
  await page.send('Page.navigate', { url });
  return page;
}

// ---- the screenshot: a PNG decoded (8-bit RGB or RGBA, not interlaced) ----

function decodePng(png) {
  if (png.readUInt32BE(0) !== 0x89504e47) fail('the screenshot is not a PNG');
  let off = 8, w = 0, h = 0, type = 0;
  const idat = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off), kind = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (kind === 'IHDR') {
      w = data.readUInt32BE(0);
      h = data.readUInt32BE(4);
      type = data[9];
      if (data[8] !== 8 || (type !== 2 && type !== 6) || data[12] !== 0)
        fail(`a PNG this check does not read (depth ${data[8]}, type ${type})`);
    } else if (kind === 'IDAT') {
      idat.push(data);
    }
    off += 12 + len;
  }
  const bpp = type === 6 ? 4 : 3, stride = w * bpp, raw = inflateSync(Buffer.concat(idat));
  const px = Buffer.alloc(h * stride);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp] : 0;
      let v = line[x];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + x] = v & 0xff;
    }
  }
  return { w, h, bpp, px };
}

// ---- the test ----

await checkNoFiles(['--no-http']);
await checkNoFiles(['--http-root', '']);
const { url, port } = await startKited();
console.log(`kited: ${url}`);
const cdp = startChromium();
console.log(`browser: ${await browserUp(cdp)}`);

// carol plays over KCP, dave over TCP, from the start.
const carol = startCli('carol', port, false);
await carol.saw('* you are in arena');
const dave = startCli('dave', port, true);
await dave.saw('* you are in arena');

// alice: straight in by the URL's parameters.
const alice = await openPage(cdp, `${url}?name=alice&room=arena`);
await until('alice to be in arena', () => alice.eval('window.arena?.room === "arena"'));

// bob: the name prompt, then the room list, as a person would.
const bob = await openPage(cdp, url);
await until('bob\'s name prompt', () =>
  bob.eval('window.arena?.state === "open" && !document.getElementById("login-box").hidden'));
await bob.type('#name', 'bob');
await until('bob\'s room list to show arena', () =>
  bob.eval('[...document.querySelectorAll("#rooms li")].some((li) => li.textContent.startsWith("arena"))'));
// The lobby as bob sees it, kept beside the arena's screenshot.
mkdirSync(outDir, { recursive: true });
await bob.send('Page.bringToFront');
writeFileSync(join(outDir, 'lobby.png'),
  Buffer.from((await bob.send('Page.captureScreenshot', { format: 'png' })).data, 'base64'));
await bob.eval('[...document.querySelectorAll("#rooms li")].find((li) => li.textContent.startsWith("arena")).click(), 1');
await until('bob to be in arena', () => bob.eval('window.arena.room === "arena"'));

// Everyone sees everyone: names from ENTER, positions from STATE.
const everyone = ['alice', 'bob', 'carol', 'dave'];
for (const [n, pg] of [['alice', alice], ['bob', bob]])
  await until(`${n} to see all four players move about`, () =>
    pg.eval(`(() => { const p = window.arena.positions();
      return ${JSON.stringify(everyone)}.every((k) => k in p); })()`));
await carol.saw('* alice is here');
await carol.saw('* bob is here');
await dave.saw('* bob is here');

// alice holds the right arrow; bob holds S (WASD): both move, everyone sees.
const pos = (pg, who) => pg.eval(`window.arena.positions()[${JSON.stringify(who)}]`);
const a0 = await pos(bob, 'alice'), b0 = await pos(alice, 'bob');
await alice.send('Page.bringToFront');
await alice.key('keyDown', 'ArrowRight', 'ArrowRight', 39);
await until('bob to see alice move right by 100', async () => (await pos(bob, 'alice'))[0] >= a0[0] + 100);
await alice.key('keyUp', 'ArrowRight', 'ArrowRight', 39);
await bob.send('Page.bringToFront');
await bob.key('keyDown', 'KeyS', 's', 83);
await until('alice to see bob move down by 100', async () => (await pos(alice, 'bob'))[1] >= b0[1] + 100);
await bob.key('keyUp', 'KeyS', 's', 83);
// Both stopped: a position that holds across three ticks or more.
const seen = (pg, who) => pg.eval(`[window.arena.tick, window.arena.positions()[${JSON.stringify(who)}]]`);
const still = async (pg, who) => {
  const [t0, p] = await seen(pg, who);
  const [t1, q] = await until(`three more ticks on ${who}`, async () => {
    const r = await seen(pg, who);
    return r[0] >= t0 + 3 && r;
  });
  return t1 >= t0 + 3 && p[0] === q[0] && p[1] === q[1] && q;
};
const a1 = await until('alice to stop', () => still(bob, 'alice'));
const b1 = await until('bob to stop', () => still(alice, 'bob'));
if (a1[1] !== a0[1]) fail(`alice moved off her row: ${a0} -> ${a1}`);
// The KCP player's view: /who prints where alice and bob stand, the same.
carol.say('/who');
await carol.saw(`*   alice at (${a1[0]}, ${a1[1]})`);
await carol.saw(`*   bob at (${b1[0]}, ${b1[1]})`);
// carol moves up: the pages see a kite-cli player move.
const c0 = await pos(alice, 'carol');
carol.say('/move 0 -1');
await until('alice to see carol move up', async () => (await pos(alice, 'carol'))[1] <= c0[1] - 60);
carol.say('/stop');

// Chat: from the page's chat box to the KCP and TCP players and the other
// page; from kite-cli to both pages.
await alice.send('Page.bringToFront');
await alice.type('#say', 'hello from the browser');
await carol.saw('<alice> hello from the browser');
await dave.saw('<alice> hello from the browser');
await until('bob to read alice', () =>
  bob.eval('window.arena.said.some((s) => s.name === "alice" && s.text === "hello from the browser")'));
carol.say('hi browsers, carol here');
dave.say('and dave over tcp');
for (const [n, pg] of [['alice', alice], ['bob', bob]]) {
  await until(`${n} to read carol`, () =>
    pg.eval('window.arena.said.some((s) => s.name === "carol" && s.text === "hi browsers, carol here")'));
  await until(`${n} to read dave`, () =>
    pg.eval('window.arena.said.some((s) => s.name === "dave" && s.text === "and dave over tcp")'));
  await until(`${n}'s chat log to show carol`, () =>
    pg.eval('document.getElementById("log").textContent.includes("<carol> hi browsers, carol here")'));
}

// Latency: pings once a second; the header shows a number.
for (const [n, pg] of [['alice', alice], ['bob', bob]])
  await until(`${n}'s latency`, () =>
    pg.eval('window.arena.rttMs >= 0 && /^\\d+$/.test(document.getElementById("rtt").textContent)'));

// The screenshot: alice's window, the arena drawn, saved and not blank.
await alice.send('Page.bringToFront');
const drawn = await alice.eval('window.arena.drawn');
await until('alice\'s canvas to draw more frames', async () => (await alice.eval('window.arena.drawn')) > drawn + 5);
const box = await alice.eval(`(() => { const r = document.getElementById('arena').getBoundingClientRect();
  return [r.left, r.top, r.width, r.height, devicePixelRatio, innerWidth, innerHeight]; })()`);
const shot = Buffer.from((await alice.send('Page.captureScreenshot', { format: 'png' })).data, 'base64');
writeFileSync(join(outDir, 'arena.png'), shot);
const img = decodePng(shot);
const [bx, by, bw, bh, dpr, vw, vh] = box;
if (img.w !== Math.round(vw * dpr) || img.h !== Math.round(vh * dpr))
  fail(`screenshot ${img.w}x${img.h}, the window is ${vw}x${vh} at ${dpr}x`);
// Inside the canvas: its background (#0b0e13), grid lines, and players:
// pixels of bright, saturated colour. Count colours and bright pixels.
const colours = new Set();
let bright = 0;
for (let y = Math.ceil(by * dpr); y < Math.floor((by + bh) * dpr) && y < img.h; y++)
  for (let x = Math.ceil(bx * dpr); x < Math.floor((bx + bw) * dpr) && x < img.w; x++) {
    const o = (y * img.w + x) * img.bpp, r = img.px[o], g = img.px[o + 1], b = img.px[o + 2];
    colours.add((r << 16) | (g << 8) | b);
    if (Math.max(r, g, b) > 120 && Math.max(r, g, b) - Math.min(r, g, b) > 60) bright++;
  }
if (colours.size < 8) fail(`the arena is blank: ${colours.size} colours in the canvas`);
if (bright < 150) fail(`no players drawn: ${bright} bright pixels in the canvas`);

// bob leaves: the others see it; then everyone goes.
await bob.eval('document.getElementById("leave").click(), 1');
await until('bob\'s lobby', () => bob.eval('window.arena.room === null && !document.getElementById("lobby").hidden'));
await carol.saw('* bob left');
await until('alice to see bob leave', () => alice.eval('!("bob" in window.arena.positions())'));
const errors = [...(await alice.eval('window.arena.errors')), ...(await bob.eval('window.arena.errors'))];
if (errors.length) fail(`the pages were told: ${errors.join('; ')}`);
// The end: the players quit (the end of their input), kited stops gracefully.
const exitOf = (p) => new Promise((r) => {
  if (p.child.exitCode !== null) r(p.child.exitCode);
  else p.child.on('exit', (code, sig) => r(code ?? sig));
});
carol.child.stdin.end();
dave.child.stdin.end();
for (const p of [carol, dave]) {
  const code = await Promise.race([exitOf(p), sleep(WAIT_MS).then(() => 'still running')]);
  if (code !== 0) fail(`${p.name} ended with ${code}`);
}
const kited = procs.find((p) => p.name === 'kited');
kited.child.kill('SIGTERM');
const kcode = await Promise.race([exitOf(kited), sleep(WAIT_MS).then(() => 'still running')]);
if (kcode !== 0) fail(`kited ended with ${kcode}`);
console.log(`arena_browser: passed (screenshot ${join(outDir, 'arena.png')}, ` +
  `${img.w}x${img.h}, ${colours.size} colours and ${bright} bright pixels in the canvas)`);
process.exit(0);
