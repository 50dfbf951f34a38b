/*
 * kite sessions over WebSocket (--ws), on kite's TCP port (docs/WEBSOCKET.md):
 * the load and checks of --tcp, with each session's kite stream carried in
 * binary WebSocket messages. A session is one TCP connection: the HTTP
 * upgrade (ws_hs.c checks the 101 and its Sec-WebSocket-Accept), then
 * OPEN in a message, OPENED back, then one kite frame per message each way
 * (PROTOCOL.md sections 4 and 5), pinging when it has sent nothing for a
 * while, as the client library does.
 *
 * Frames out are binary, fin set and masked (RFC 6455 section 5.1: a client
 * MUST mask), each key from the kernel's random bytes (ws_hs.h); wslay's
 * frame API encodes the header and masks the payload, through send_cb, into
 * one staging buffer. Frames in are parsed by wslay too, one context per
 * session: a masked frame, RSV bits, a text frame or an unknown opcode end
 * the session (counted as corrupt, the session as failed); a ping is
 * answered with a pong, a close ends the session. Message payloads are
 * bytes of the kite stream, cut anywhere: OPENED, then frames, reassembled
 * in a buffer of one frame per session (12 + the larger of --size and a
 * ping's 32 bytes); a frame that cannot fit is refused likewise.
 *
 * One epoll set for every connection, one thread. Memory is allocated when
 * a session is set up, never per message: wslay's context (about 4.2 KiB)
 * and one block holding the response head (1 KiB), the frame being
 * reassembled and what the kernel has not taken of the output (two
 * frames' worth, and at least the upgrade request: beyond that the driver's
 * send is refused and its seq reused at the next period, as a full kite
 * connection refuses with KITE_EFULL). The file is split by job: the
 * WebSocket frames out and in are load_ws_io.c, the handshake ws_hs.c.
 */
#include "load_ws.h"

#include "base/clock.h"
#include "kite/error.h"
#include "proto/control.h"
#include "proto/frame.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wslay/wslay.h>

static int ws_send(void *transport, uint32_t session, const uint8_t *body,
                   uint32_t len) {
  ws_io *io = transport;
  return send_kite(io, &io->s[session], BENCH_MSG_ID, 0, body, len);
}

/* ---- the kite stream in ---- */

/* A whole frame: 0, or -1 when the session ended. */
static int on_frame(ws_io *io, ws_sess *s, const uint8_t *p) {
  kite__frame_hdr h;
  kite__frame_hdr_decode(p, &h);
  const uint8_t *body = p + KITE__FRAME_HDR;
  if (kite__frame_check_body(&h, body) != KITE__FRAME_OK) {
    io->d->res->corrupt++;
    sess_end(io, s, "a frame with a bad CRC");
    return -1;
  }
  if (h.msg_id == BENCH_MSG_ID) {
    driver_echo(io->d, sid(io, s), body, h.len, kite__now_us());
  } else if (h.msg_id == KITE__MSG_PING) {
    if (!(h.flags & KITE__FRAME_F_PONG)) /* the server's ping: answer it */
      send_kite(io, s, KITE__MSG_PING, KITE__FRAME_F_PONG, body, h.len);
  } else if (h.msg_id == KITE__MSG_CLOSE_NOTICE) {
    sess_end(io, s, "the server closed it (close notice)");
    return -1;
  } else if (h.msg_id < KITE__MSG_RESERVED_MIN) {
    io->d->res->corrupt++; /* kite-echo echoes only what we send */
  }
  return 0;
}

/* OPENED (or REJECT) from the first 16 stream bytes in s->acc. */
static int on_opened(ws_io *io, ws_sess *s) {
  kite__ctrl c;
  if (kite__ctrl_decode(s->acc, KITE__CTRL_HDR + 8, &c) < 0 ||
      c.type != KITE__CTRL_OPENED) {
    sess_end(io, s, "no OPENED after OPEN (REJECT, or not kite)");
    return -1;
  }
  if (!io->max_frame) {
    io->max_frame = c.max_frame;
    if (!io->cfg->ping_ms && c.idle_timeout_ms / 3 * 1000ull < io->ping_us)
      io->ping_us = c.idle_timeout_ms / 3 * 1000ull;
  }
  s->state = WS_READY;
  s->acc_len = 0;
  io->pending--;
  io->d->sess[sid(io, s)].ready = true;
  io->d->res->connected++;
  return 0;
}

/* Stream bytes: OPENED, then frames, reassembled in s->acc only when they
 * span messages. 0, or -1 when the session ended. */
int on_stream(ws_io *io, ws_sess *s, const uint8_t *p, size_t n) {
  while (n) {
    if (s->state == WS_OPENING) {
      size_t need = KITE__CTRL_HDR + 8 - s->acc_len, take = n < need ? n : need;
      memcpy(s->acc + s->acc_len, p, take);
      s->acc_len += (uint32_t)take;
      p += take;
      n -= take;
      if (s->acc_len == KITE__CTRL_HDR + 8 && on_opened(io, s) < 0)
        return -1;
      continue;
    }
    if (s->state != WS_READY)
      return -1;
    const uint8_t *f = p; /* the frame's start, here or in acc */
    size_t have = n;
    if (s->acc_len) {
      f = s->acc;
      have = s->acc_len;
    }
    if (have >= KITE__FRAME_HDR) {
      kite__frame_hdr h;
      kite__frame_hdr_decode(f, &h);
      if (kite__frame_check_hdr(&h, io->max_frame) != KITE__FRAME_OK ||
          h.len > io->acc_cap - KITE__FRAME_HDR) {
        io->d->res->corrupt++;
        sess_end(io, s, "a frame over its limits");
        return -1;
      }
      size_t whole = KITE__FRAME_HDR + h.len;
      if (!s->acc_len && n >= whole) { /* whole in this piece: no copy */
        if (on_frame(io, s, p) < 0)
          return -1;
        p += whole;
        n -= whole;
        continue;
      }
      if (s->acc_len) {
        size_t take = whole - s->acc_len < n ? whole - s->acc_len : n;
        memcpy(s->acc + s->acc_len, p, take);
        s->acc_len += (uint32_t)take;
        p += take;
        n -= take;
        if (s->acc_len == whole) {
          s->acc_len = 0;
          if (on_frame(io, s, s->acc) < 0)
            return -1;
        }
        continue;
      }
    } else if (s->acc_len) { /* a header spanning pieces: complete it */
      size_t take = KITE__FRAME_HDR - s->acc_len < n ? KITE__FRAME_HDR - s->acc_len : n;
      memcpy(s->acc + s->acc_len, p, take);
      s->acc_len += (uint32_t)take;
      p += take;
      n -= take;
      continue;
    }
    /* The start of a frame that does not end in this piece. */
    memcpy(s->acc, p, n); /* n < 12 + h.len <= acc_cap */
    s->acc_len = (uint32_t)n;
    n = 0;
  }
  return 0;
}

static void on_head(ws_io *io, ws_sess *s, const uint8_t *p, size_t n) {
  size_t room = HEAD_MAX - s->head_len, take = n < room ? n : room;
  memcpy(s->head + s->head_len, p, take);
  size_t end = ws_hs_head_end(s->head, s->head_len + take);
  if (!end) {
    s->head_len += (uint32_t)take;
    if (s->head_len == HEAD_MAX)
      sess_end(io, s, "the server's answer to the upgrade is over 1 KiB");
    return;
  }
  const char *why = ws_hs_check(s->head, end, s->accept);
  if (why) {
    sess_end(io, s, why);
    return;
  }
  size_t used = end - s->head_len; /* bytes of |p| in the head */
  s->head_len = 0;
  s->state = WS_OPENING;
  kite__ctrl open = {.type = KITE__CTRL_OPEN};
  int len = kite__ctrl_encode(io->msg, KITE__CTRL_MAX, &open);
  if (len < 0 || send_frame(io, s, WSLAY_BINARY_FRAME, (size_t)len) < 0) {
    sess_end(io, s, "OPEN could not be sent");
    return;
  }
  if (used < n)
    feed(io, s, p + used, n - used);
}

static void on_readable(ws_io *io, ws_sess *s) {
  for (int k = 0; k < 4 && s->fd >= 0; k++) {
    ssize_t r = recv(s->fd, io->rbuf, sizeof(io->rbuf), MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      sess_end(io, s, r == 0 ? "the server closed the connection" : "recv failed");
      return;
    }
    if (s->state == WS_UPGRADING)
      on_head(io, s, io->rbuf, (size_t)r);
    else
      feed(io, s, io->rbuf, (size_t)r);
    if ((size_t)r < sizeof(io->rbuf))
      return;
  }
}

/* The connect finished: send the upgrade request. */
static void on_connected(ws_io *io, ws_sess *s) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
    sess_end(io, s, "connect failed");
    return;
  }
  char key[25], req[512];
  int n = ws_hs_key(&io->rnd, key, s->accept);
  if (n == 0)
    n = ws_hs_request(req, sizeof(req), io->cfg->server, io->path, key);
  if (n < 0) {
    sess_end(io, s, "no upgrade request (random bytes, or a path too long)");
    return;
  }
  s->state = WS_UPGRADING;
  arm(io, s, false);
  write_out(io, s, (const uint8_t *)req, (size_t)n);
}

static void on_event(ws_io *io, ws_sess *s, uint32_t events) {
  if (s->fd < 0)
    return;
  if (s->state == WS_CONNECTING) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
      on_connected(io, s);
    return;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
    on_readable(io, s);
  if (s->fd >= 0 && (events & EPOLLOUT))
    flush_out(io, s);
}

/* ---- setup, the wait, the run ---- */

/* Starts session |i|'s connect. 0, or -1 when it could not (a descriptor,
 * memory): the run stops. */
static int sess_start(ws_io *io, uint32_t i) {
  ws_sess *s = &io->s[i];
  s->head = malloc(HEAD_MAX + io->acc_cap + io->out_cap);
  if (!s->head || wslay_frame_context_init(&s->fr, &ws_callbacks, io) != 0)
    return -1;
  s->acc = s->head + HEAD_MAX;
  s->out = s->acc + io->acc_cap;
  s->fd = socket(io->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    perror("kite-bench: socket");
    return -1;
  }
  int one = 1;
  setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  s->state = WS_CONNECTING;
  s->out_armed = true;
  io->pending++;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = i};
  epoll_ctl(io->ep, EPOLL_CTL_ADD, s->fd, &ev);
  if (connect(s->fd, &io->addr.sa, kite__addr_len(&io->addr)) < 0 &&
      errno != EINPROGRESS)
    sess_end(io, s, "connect failed");
  return 0;
}

/* Pings sessions that have sent nothing for a ping period, as the client
 * library does (PROTOCOL.md section 4), so that idle ones stay open. */
static void ping_scan(ws_io *io, uint64_t now) {
  if (now < io->next_scan_us)
    return;
  io->next_scan_us = now + PING_SCAN_US;
  for (uint32_t i = 0; i < io->cfg->sessions; i++) {
    ws_sess *s = &io->s[i];
    if (s->fd >= 0 && s->state == WS_READY && now - s->last_send_us >= io->ping_us)
      send_kite(io, s, KITE__MSG_PING, 0, NULL, 0);
  }
}

static void ws_wait(void *transport, int timeout_ms) {
  ws_io *io = transport;
  struct epoll_event ev[EVENTS_MAX];
  int n = epoll_wait(io->ep, ev, EVENTS_MAX, timeout_ms);
  for (int k = 0; k < n; k++)
    on_event(io, &io->s[ev[k].data.u32], ev[k].events);
  ping_scan(io, kite__now_us());
}

/* Ends each open session with a close frame (1000), then frees them. */
static void ws_close_all(ws_io *io) {
  for (uint32_t i = 0; i < io->cfg->sessions; i++) {
    ws_sess *s = &io->s[i];
    if (s->fd >= 0 && s->state == WS_READY) {
      io->msg[0] = 1000 >> 8;
      io->msg[1] = 1000 & 0xff;
      send_frame(io, s, WSLAY_CONNECTION_CLOSE, 2);
    }
    if (s->fd >= 0)
      close(s->fd);
    if (s->fr)
      wslay_frame_context_free(s->fr);
    free(s->head);
  }
}

int bench_run_ws(const bench_config *cfg, bench_result *res) {
  static ws_io io; /* its read buffer is large: not on the stack */
  driver d;
  memset(&io, 0, sizeof(io));
  if (kite__addr_parse(&io.addr, cfg->server) < 0) {
    fprintf(stderr, "kite-bench: bad address %s\n", cfg->server);
    return -1;
  }
  if (driver_init(&d, cfg, res) < 0)
    return -1;
  d.send = ws_send;
  d.transport = &io;
  io.d = &d;
  io.cfg = cfg;
  io.path = cfg->ws_path ? cfg->ws_path : "/kite";
  uint32_t body_max = cfg->size > KITE__PING_BODY_MAX ? cfg->size : KITE__PING_BODY_MAX;
  io.acc_cap = KITE__FRAME_HDR + body_max;
  io.out_cap = 2 * (WS_HDR_MAX + io.acc_cap);
  if (io.out_cap < 1024)
    io.out_cap = 1024; /* the upgrade request, whatever --size */
  size_t msg_cap = io.acc_cap > 125 ? io.acc_cap : 125;
  io.stage_cap = WS_HDR_MAX + msg_cap;
  io.msg = malloc(msg_cap);
  io.stage = malloc(io.stage_cap);
  io.s = calloc(cfg->sessions, sizeof(*io.s));
  io.ep = epoll_create1(EPOLL_CLOEXEC);
  io.ping_us = cfg->ping_ms ? cfg->ping_ms * 1000ull : PING_DEFAULT_US;
  ws_random_init(&io.rnd);
  int rc = 0;
  if (!io.msg || !io.stage || !io.s || io.ep < 0) {
    fprintf(stderr, "kite-bench: out of memory\n");
    rc = -1;
    goto out;
  }
  for (uint32_t i = 0; i < cfg->sessions; i++)
    io.s[i].fd = -1;

  /* Connect, at most CONNECTING_MAX handshakes in flight. */
  uint64_t t0 = kite__now_us();
  uint32_t next = 0;
  while (res->connected + res->failed < cfg->sessions) {
    while (next < cfg->sessions && io.pending < CONNECTING_MAX) {
      if (sess_start(&io, next++) < 0) {
        rc = -1;
        goto out;
      }
    }
    ws_wait(&io, 10);
    if (kite__now_us() - t0 > 120000000) {
      fprintf(stderr, "kite-bench: sessions still connecting after 120 s\n");
      break;
    }
  }
  res->connect_s = (double)(kite__now_us() - t0) / 1e6;
  driver_run(&d, ws_wait);
out:
  if (io.s)
    ws_close_all(&io);
  if (io.ep >= 0)
    close(io.ep);
  driver_free(&d);
  free(io.s);
  free(io.msg);
  free(io.stage);
  return rc;
}
