// The arena page's script (docs/DEMO.md): a kite player in a browser. It
// speaks the demo's messages (examples/kited/demo_proto.h) through kite.js
// over a WebSocket to the host and port that served the page, so it plays
// in the same rooms as kite-cli players over KCP and TCP.
//
// The server moves everyone 20 times a second and broadcasts STATE; the
// canvas draws the players a little in the past (INTERP_MS), between the
// two snapshots around that moment, so motion is smooth whatever the
// jitter. The page sends MOVE only when the keys held change direction.
//
// window.arena is the page's state, read by the browser test
// (tests/e2e/arena_browser.mjs) and handy in a console.
import { connect, Reason } from './kite.js';

const LOGIN = 1, ROOMS = 2, JOIN = 3, LEAVE = 4, CHAT = 5, MOVE = 6;
const WELCOME = 101, ROOM_LIST = 102, JOINED = 103, ENTER = 104, EXIT = 105,
  SAID = 106, STATE = 107, LEFT = 108, ERROR = 199;
const ARENA = 1000; // positions are 0..ARENA on both axes
const INTERP_MS = 100; // two ticks behind: there is nearly always a next one
const SNAPSHOTS = 16;
const NAME_RE = /^[!-~]{1,16}$/; // demo_name_ok(): printable, no space

const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();
const dec = new TextDecoder();
const u32 = (b, o) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(o, true);
const reasonName = (r) => Object.keys(Reason).find((k) => Reason[k] === r) || `reason ${r}`;

const params = new URLSearchParams(location.search);
const game = {
  state: 'connecting', // 'connecting', 'open', 'closed'
  closeReason: null,
  me: null, // {id, name} after WELCOME
  room: null, // its name once JOINED
  names: new Map(), // player id -> name, for the room's players (ENTER)
  snaps: [], // {t, pos: Map(id -> [x, y])}, oldest first
  tick: 0,
  states: 0, // STATE messages received
  said: [], // {id, name, text}
  errors: [],
  rooms: [], // {name, players} from the last ROOM_LIST
  dir: [0, 0], // the direction last sent
  moves: 0, // MOVE messages sent
  rttMs: -1,
  drawn: 0, // canvas frames drawn
  /** Where each player is now, by the newest STATE: {name: [x, y]}. */
  positions() {
    const s = this.snaps[this.snaps.length - 1], out = {};
    if (s) for (const [id, p] of s.pos) out[this.names.get(id) ?? `#${id}`] = p;
    return out;
  },
};
window.arena = game;

// ---- the log and the status line ----

function log(text, cls) {
  const el = $('log'), line = document.createElement('div');
  line.textContent = text;
  if (cls) line.className = cls;
  const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
  el.append(line);
  while (el.childElementCount > 300) el.firstElementChild.remove();
  if (atEnd) el.scrollTop = el.scrollHeight;
}

function status(text, bad = false) {
  $('status').textContent = text;
  $('status').className = bad ? 'bad' : 'dim';
}

function show(view) {
  $('login-box').hidden = view !== 'login';
  $('lobby').hidden = view !== 'lobby';
  $('arena-box').hidden = view !== 'arena';
}

// ---- the session ----

const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
const conn = connect(url, {
  onConnect() {
    game.state = 'open';
    status(`connected to ${location.host}`);
    show('login');
    const name = params.get('name');
    if (name) {
      login(name);
    } else {
      $('name').value ||= `player${Math.floor(Math.random() * 1000)}`;
      $('name').focus();
    }
  },
  onMessage,
  onDisconnect(reason) {
    game.state = 'closed';
    game.closeReason = reason;
    status(`disconnected: ${reasonName(reason)}; reload to play again`, true);
    show('none');
    log(`! disconnected (${reasonName(reason)})`, 'err');
  },
});

function send(msgId, body) {
  const rc = conn.send(msgId, body);
  if (rc < 0 && game.state === 'open') log(`! could not send (${rc})`, 'err');
  return rc === 0;
}

function onMessage(msgId, body) {
  switch (msgId) {
    case WELCOME:
      game.me = { id: u32(body, 0), name: dec.decode(body.subarray(4)) };
      $('who').textContent = `you are ${game.me.name}`;
      log(`* welcome, ${game.me.name}`, 'sys');
      show('lobby');
      send(ROOMS);
      if (params.get('room')) join(params.get('room'));
      break;
    case ROOM_LIST:
      game.rooms = dec.decode(body).split('\n').filter(Boolean).map((l) => {
        const [name, players] = l.split(' ');
        return { name, players: Number(players) };
      });
      drawRooms();
      break;
    case JOINED:
      game.room = dec.decode(body);
      game.names.clear();
      game.snaps = [];
      game.dir = [0, 0]; // the server starts a player still
      held.clear();
      $('room-name').textContent = game.room;
      log(`* you are in ${game.room}`, 'sys');
      show('arena');
      // The keys are for moving now, not for the form just used.
      if (document.activeElement instanceof HTMLInputElement) document.activeElement.blur();
      break;
    case ENTER: {
      const id = u32(body, 0), name = dec.decode(body.subarray(4));
      game.names.set(id, name);
      if (!game.me || id !== game.me.id) log(`* ${name} is here`, 'sys');
      break;
    }
    case EXIT: {
      const id = u32(body, 0);
      log(`* ${game.names.get(id) ?? `#${id}`} left`, 'sys');
      game.names.delete(id);
      break;
    }
    case SAID: {
      const id = u32(body, 0), text = dec.decode(body.subarray(4));
      const name = game.names.get(id) ?? `#${id}`;
      game.said.push({ id, name, text });
      log(`<${name}> ${text}`);
      break;
    }
    case STATE:
      onState(body);
      break;
    case LEFT:
      game.room = null;
      game.names.clear();
      game.snaps = [];
      log('* you left the room', 'sys');
      show('lobby');
      send(ROOMS);
      break;
    case ERROR: {
      const why = dec.decode(body);
      game.errors.push(why);
      log(`! ${why}`, 'err');
      break;
    }
  }
}

// STATE: u32 tick, u16 n, n x (u32 id, i16 x, i16 y).
function onState(b) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 6) return;
  const n = v.getUint16(4, true);
  if (b.length < 6 + n * 8) return;
  const pos = new Map();
  for (let i = 0, o = 6; i < n; i++, o += 8)
    pos.set(v.getUint32(o, true), [v.getInt16(o + 4, true), v.getInt16(o + 6, true)]);
  game.tick = v.getUint32(0, true);
  game.states++;
  game.snaps.push({ t: performance.now(), pos });
  if (game.snaps.length > SNAPSHOTS) game.snaps.shift();
}

// ---- the lobby ----

function login(name) {
  if (!NAME_RE.test(name)) {
    log('! a name is 1 to 16 printable characters, no spaces', 'err');
    return;
  }
  send(LOGIN, enc.encode(name));
}

function join(room) {
  if (!NAME_RE.test(room)) {
    log('! a room name is 1 to 16 printable characters, no spaces', 'err');
    return;
  }
  send(JOIN, enc.encode(room));
}

function drawRooms() {
  const ul = $('rooms');
  ul.replaceChildren(...game.rooms.map((r) => {
    const li = document.createElement('li'), n = document.createElement('span');
    li.textContent = r.name;
    n.className = 'dim';
    n.textContent = `${r.players} playing`;
    li.append(n);
    li.onclick = () => join(r.name);
    return li;
  }));
  if (!game.rooms.length) ul.textContent = 'no rooms yet: name one below';
}

$('login').onsubmit = (e) => {
  e.preventDefault();
  login($('name').value.trim());
};
$('join').onsubmit = (e) => {
  e.preventDefault();
  join($('room').value.trim());
};
$('refresh').onclick = () => send(ROOMS);
$('leave').onclick = () => send(LEAVE);
setInterval(() => { if (!$('lobby').hidden) send(ROOMS); }, 3000);

// ---- chat ----

$('chat').onsubmit = (e) => {
  e.preventDefault();
  const text = $('say').value.replace(/[\x00-\x1f\x7f]/g, '').trim();
  const body = enc.encode(text);
  if (!body.length) return;
  if (body.length > 200) {
    log('! a chat line is 1 to 200 bytes', 'err');
    return;
  }
  if (send(CHAT, body)) $('say').value = '';
};

// ---- movement: arrows or WASD; a MOVE when the direction changes ----

const held = new Set();
const KEYS = {
  ArrowLeft: [-1, 0], KeyA: [-1, 0], ArrowRight: [1, 0], KeyD: [1, 0],
  ArrowUp: [0, -1], KeyW: [0, -1], ArrowDown: [0, 1], KeyS: [0, 1],
};

function steer() {
  let dx = 0, dy = 0;
  for (const k of held) {
    dx += KEYS[k][0];
    dy += KEYS[k][1];
  }
  dx = Math.sign(dx);
  dy = Math.sign(dy);
  if (!game.room || (dx === game.dir[0] && dy === game.dir[1])) return;
  if (send(MOVE, new Uint8Array([dx & 0xff, dy & 0xff]))) {
    game.dir = [dx, dy];
    game.moves++;
  }
}

function typing(e) {
  return e.target instanceof HTMLInputElement;
}

addEventListener('keydown', (e) => {
  if (!(e.code in KEYS) || typing(e)) return;
  e.preventDefault();
  held.add(e.code);
  steer();
});
addEventListener('keyup', (e) => {
  if (!(e.code in KEYS)) return;
  held.delete(e.code);
  steer();
});
addEventListener('blur', () => { // keys let go elsewhere never come back up
  held.clear();
  steer();
});

// ---- latency: a ping a second, its round trip shown ----

setInterval(() => {
  if (game.state !== 'open') return;
  conn.ping();
  game.rttMs = conn.lastRttMs;
  $('rtt').textContent = game.rttMs >= 0 ? String(game.rttMs) : '–';
}, 1000);

// ---- the canvas ----

const canvas = $('arena');
const ctx = canvas.getContext('2d');

// Positions at time |t|: between the two snapshots around it.
function positionsAt(t) {
  const s = game.snaps;
  if (!s.length) return new Map();
  let i = s.length - 1;
  while (i > 0 && s[i - 1].t > t) i--;
  const b = s[i], a = i > 0 ? s[i - 1] : null;
  if (!a || t >= b.t) return b.pos;
  const k = Math.min(1, Math.max(0, (t - a.t) / (b.t - a.t || 1)));
  const out = new Map();
  for (const [id, p] of b.pos) {
    const q = a.pos.get(id);
    out.set(id, q ? [q[0] + (p[0] - q[0]) * k, q[1] + (p[1] - q[1]) * k] : p);
  }
  return out;
}

const hue = (id) => (id * 137) % 360;

function draw() {
  requestAnimationFrame(draw);
  if ($('arena-box').hidden) return;
  const w = canvas.width, h = canvas.height, sx = w / ARENA, sy = h / ARENA;
  ctx.fillStyle = '#0b0e13';
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = '#1c2430';
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let g = 0; g <= ARENA; g += 100) {
    ctx.moveTo(g * sx + 0.5, 0);
    ctx.lineTo(g * sx + 0.5, h);
    ctx.moveTo(0, g * sy + 0.5);
    ctx.lineTo(w, g * sy + 0.5);
  }
  ctx.stroke();
  ctx.font = '12px system-ui, sans-serif';
  ctx.textAlign = 'center';
  for (const [id, [x, y]] of positionsAt(performance.now() - INTERP_MS)) {
    const px = x * sx, py = y * sy, mine = game.me && id === game.me.id;
    ctx.beginPath();
    ctx.arc(px, py, 8, 0, Math.PI * 2);
    ctx.fillStyle = `hsl(${hue(id)} 70% 58%)`;
    ctx.fill();
    if (mine) {
      ctx.lineWidth = 3;
      ctx.strokeStyle = '#ffffff';
      ctx.stroke();
    }
    ctx.fillStyle = '#d8dee9';
    ctx.fillText(game.names.get(id) ?? `#${id}`, px, py - 13);
  }
  game.drawn++;
}
requestAnimationFrame(draw);
