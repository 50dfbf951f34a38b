/*
 * kite-bench --ws: WebSocket frames out and in (load_ws.h). Out: wslay
 * encodes a masked frame into io->stage (send_cb), which goes straight to
 * the socket; what the kernel does not take waits in the session's bounded
 * output. In: wslay parses what was read (recv_cb) and each binary payload
 * piece goes on to the kite stream.
 */
#include "load_ws.h"

#include "base/clock.h"
#include "kite/error.h"
#include "proto/frame.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wslay/wslay.h>

/* ---- wslay's callbacks ---- */

static ssize_t recv_cb(uint8_t *buf, size_t len, int flags, void *user) {
  (void)flags;
  ws_io *io = user;
  size_t n = io->in_len - io->in_off;
  if (n > len)
    n = len;
  if (n == 0)
    return 0; /* wslay: WSLAY_ERR_WANT_READ */
  memcpy(buf, io->in + io->in_off, n);
  io->in_off += n;
  return (ssize_t)n;
}

static ssize_t send_cb(const uint8_t *data, size_t len, int flags, void *user) {
  (void)flags;
  ws_io *io = user;
  if (io->stage_cap - io->stage_len < len)
    return -1;
  memcpy(io->stage + io->stage_len, data, len);
  io->stage_len += len;
  return (ssize_t)len;
}

static int genmask_cb(uint8_t *buf, size_t len, void *user) {
  return ws_random_fill(&((ws_io *)user)->rnd, buf, len);
}

const struct wslay_frame_callbacks ws_callbacks = {send_cb, recv_cb, genmask_cb};

/* ---- a session's end and its output ---- */


void sess_end(ws_io *io, ws_sess *s, const char *why) {
  if (s->fd < 0)
    return;
  if (s->state != WS_READY)
    io->pending--;
  io->d->sess[sid(io, s)].ready = false;
  io->d->res->failed++;
  epoll_ctl(io->ep, EPOLL_CTL_DEL, s->fd, NULL);
  close(s->fd);
  s->fd = -1;
  if (!io->cfg->quiet)
    fprintf(stderr, "kite-bench: session %u ended: %s\n", sid(io, s), why);
}

void arm(ws_io *io, ws_sess *s, bool out) {
  if (s->out_armed == out)
    return;
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0),
                           .data.u32 = sid(io, s)};
  epoll_ctl(io->ep, EPOLL_CTL_MOD, s->fd, &ev);
  s->out_armed = out;
}

/* Writes |n| bytes, all or nothing: straight to the socket when nothing
 * waits, the rest kept. 0, KITE_EFULL (nothing written), or KITE_ECLOSED
 * (the session ended). */
int write_out(ws_io *io, ws_sess *s, const uint8_t *p, size_t n) {
  if (s->fd < 0)
    return KITE_ECLOSED;
  if (s->out_len) {
    if (io->out_cap - s->out_len < n)
      return KITE_EFULL;
    memcpy(s->out + s->out_len, p, n);
    s->out_len += (uint32_t)n;
    return 0;
  }
  ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    w = 0;
  if (w < 0) {
    sess_end(io, s, "send failed");
    return KITE_ECLOSED;
  }
  if ((size_t)w < n) { /* n <= out_cap: the rest fits */
    memcpy(s->out, p + w, n - (size_t)w);
    s->out_len = (uint32_t)(n - (size_t)w);
    s->out_off = 0;
    arm(io, s, true);
  }
  return 0;
}

void flush_out(ws_io *io, ws_sess *s) {
  while (s->out_off < s->out_len) {
    ssize_t w = send(s->fd, s->out + s->out_off, s->out_len - s->out_off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      sess_end(io, s, "send failed");
      return;
    }
    s->out_off += (uint32_t)w;
  }
  s->out_len = s->out_off = 0;
  arm(io, s, false);
}

/* One masked frame, fin set, of opcode |op| and payload io->msg[0, n). */
int send_frame(ws_io *io, ws_sess *s, uint8_t op, size_t n) {
  if (s->fd < 0)
    return KITE_ECLOSED;
  if (s->out_len && io->out_cap - s->out_len < WS_HDR_MAX + n)
    return KITE_EFULL; /* before wslay, whose state must not be left midway */
  struct wslay_frame_iocb f = {.fin = 1, .opcode = op, .mask = 1,
                               .payload_length = n, .data = io->msg,
                               .data_length = n};
  io->stage_len = 0;
  ssize_t r = wslay_frame_send(s->fr, &f);
  if (r < 0 || (size_t)r != n) {
    sess_end(io, s, "wslay could not encode a frame");
    return KITE_ECLOSED;
  }
  int rc = write_out(io, s, io->stage, io->stage_len);
  if (rc == 0)
    s->last_send_us = kite__now_us();
  return rc;
}

/* A kite frame in one binary message. */
int send_kite(ws_io *io, ws_sess *s, uint16_t msg_id, uint16_t flags,
                     const uint8_t *body, uint32_t len) {
  kite__frame_header(io->msg, msg_id, flags, body, len, false);
  if (len)
    memcpy(io->msg + KITE__FRAME_HDR, body, len);
  return send_frame(io, s, WSLAY_BINARY_FRAME, KITE__FRAME_HDR + len);
}


/* ---- WebSocket frames in ---- */

/* A control frame's whole payload is in s->ctl. 0, or -1 (ended). */
static int on_control(ws_io *io, ws_sess *s) {
  if (s->frame_op == WSLAY_PING) {
    memcpy(io->msg, s->ctl, s->ctl_len);
    send_frame(io, s, WSLAY_PONG, s->ctl_len);
    return s->fd < 0 ? -1 : 0;
  }
  if (s->frame_op == WSLAY_CONNECTION_CLOSE) {
    sess_end(io, s, "the server sent a close frame");
    return -1;
  }
  return 0; /* a pong */
}

/* Bytes read after the 101: parsed by wslay, payloads on to the stream. */
void feed(ws_io *io, ws_sess *s, const uint8_t *p, size_t n) {
  io->in = p;
  io->in_len = n;
  io->in_off = 0;
  while (s->fd >= 0) {
    struct wslay_frame_iocb f;
    ssize_t r = wslay_frame_recv(s->fr, &f);
    if (r == WSLAY_ERR_WANT_READ)
      break;
    if (r < 0) {
      io->d->res->corrupt++;
      sess_end(io, s, "a malformed WebSocket frame");
      break;
    }
    if (!s->in_frame) { /* a frame's first piece: judge its header */
      bool data = f.opcode == WSLAY_BINARY_FRAME || f.opcode == WSLAY_CONTINUATION_FRAME;
      bool ctl = f.opcode == WSLAY_PING || f.opcode == WSLAY_PONG ||
                 f.opcode == WSLAY_CONNECTION_CLOSE;
      if (f.mask || f.rsv || (!data && !ctl)) {
        io->d->res->corrupt++; /* a server MUST NOT mask (section 5.1) */
        sess_end(io, s, f.mask ? "a masked frame from the server"
                               : "a text frame, RSV bits or an unknown opcode");
        break;
      }
      s->in_frame = true;
      s->frame_op = f.opcode;
      s->frame_len = f.payload_length;
      s->frame_off = 0;
      s->ctl_len = 0;
    }
    s->frame_off += f.data_length;
    if (s->frame_op == WSLAY_BINARY_FRAME || s->frame_op == WSLAY_CONTINUATION_FRAME) {
      if (f.data_length && on_stream(io, s, f.data, f.data_length) < 0)
        break;
    } else { /* wslay keeps control payloads to 125 bytes */
      memcpy(s->ctl + s->ctl_len, f.data, f.data_length);
      s->ctl_len += (uint8_t)f.data_length;
    }
    if (s->frame_off == s->frame_len) {
      s->in_frame = false;
      if (s->frame_op >= WSLAY_CONNECTION_CLOSE && on_control(io, s) < 0)
        break;
    }
  }
  io->in = NULL;
}

