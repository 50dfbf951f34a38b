/*
 * A server-side WebSocket connection over wslay's frame API: why this API
 * and not the event API, and what is refused how, are in ws.h.
 *
 * wslay_frame_recv() pulls input through recv_cb, which copies from the
 * feed in progress into wslay's buffer, and returns one payload piece at a
 * time (a header is never returned alone, but a frame of 0 bytes returns a
 * piece of 0 bytes). It checks the frame's shape (control frames of at
 * most 125 bytes and never fragmented, minimal length encodings); the
 * rules of the connection (masking, RSV bits, opcodes, continuations, the
 * limits) are checked here, on a frame's first piece, before any of its
 * payload goes on. (wslay returns a frame's header only with its first
 * payload byte, or alone for an empty frame: a header that claims 2^62
 * bytes is refused when its first byte comes, having held nothing.)
 *
 * wslay_frame_send() pushes output through send_cb, which keeps the header
 * it is given and claims every payload byte as sent: the caller's iovecs go
 * to |write| untouched, after that header, as one unit.
 */
#include "net/ws.h"

#include <string.h>

#include <wslay/wslay.h>

#include "kite/error.h"

/* wslay's callbacks. */

static ssize_t recv_cb(uint8_t *buf, size_t len, int flags, void *user) {
  kite__ws *ws = user;
  size_t n = ws->in_len - ws->in_off;
  if (n > len)
    n = len;
  if (n == 0)
    return 0; /* wslay: WSLAY_ERR_WANT_READ */
  memcpy(buf, ws->in + ws->in_off, n);
  ws->in_off += n;
  return (ssize_t)n;
}

static ssize_t send_cb(const uint8_t *data, size_t len, int flags,
                       void *user) {
  kite__ws *ws = user;
  if (ws->capture) { /* the first call of a frame is its header */
    if (len > sizeof(ws->ohdr))
      return -1;
    memcpy(ws->ohdr, data, len);
    ws->ohdr_len = (uint8_t)len;
    ws->capture = false;
  }
  return (ssize_t)len;
}

static int genmask_cb(uint8_t *buf, size_t len, void *user) {
  return -1; /* a server never masks (RFC 6455 section 5.1) */
}

int kite__ws_init(kite__ws *ws, uint32_t max_message, kite__ws_write_fn write,
                  void *user, kite__ws_stats *stats) {
  memset(ws, 0, sizeof(*ws));
  if (max_message == 0 || !write || !stats)
    return KITE_EINVAL;
  struct wslay_frame_callbacks cb = {send_cb, recv_cb, genmask_cb};
  if (wslay_frame_context_init(&ws->fr, &cb, ws) != 0)
    return KITE_ENOMEM;
  ws->max_message = max_message;
  ws->write = write;
  ws->user = user;
  ws->stats = stats;
  return 0;
}

void kite__ws_free(kite__ws *ws) {
  if (ws->fr)
    wslay_frame_context_free(ws->fr);
  ws->fr = NULL;
}

/* Writes one unmasked frame, fin set, of opcode |op|: its header (encoded
 * by wslay) then the |n| buffers of |iov|, through |write| as one unit. */
static int write_frame(kite__ws *ws, uint8_t op, const struct iovec *iov,
                       int n) {
  uint64_t total = 0;
  for (int i = 0; i < n; i++)
    total += iov[i].iov_len;
  struct wslay_frame_iocb io = {
      .fin = 1, .opcode = op, .payload_length = total};
  ws->capture = true;
  ws->ohdr_len = 0;
  /* The header, then each piece claimed sent (send_cb), so wslay's output
   * state is back at a frame's start when this returns, whatever |write|
   * does with the unit. */
  if (wslay_frame_send(ws->fr, &io) < 0 || ws->ohdr_len == 0)
    return KITE_EINVAL;
  for (int i = 0; i < n; i++) {
    if (!iov[i].iov_len)
      continue;
    io.data = iov[i].iov_base;
    io.data_length = iov[i].iov_len;
    if (wslay_frame_send(ws->fr, &io) < 0)
      return KITE_EINVAL;
  }
  struct iovec v[KITE__WS_IOV_MAX + 1];
  v[0].iov_base = ws->ohdr;
  v[0].iov_len = ws->ohdr_len;
  if (n)
    memcpy(v + 1, iov, (size_t)n * sizeof(*iov));
  return ws->write(ws->user, v, n + 1);
}

int kite__ws_send(kite__ws *ws, const struct iovec *iov, int n) {
  if (ws->state != KITE__WS_OPEN)
    return KITE_ECLOSED;
  if (n < 0 || n > KITE__WS_IOV_MAX)
    return KITE_EINVAL;
  int rc = write_frame(ws, WSLAY_BINARY_FRAME, iov, n);
  if (rc == 0)
    ws->stats->messages_out++;
  return rc;
}

/* The close frame: |code| big-endian and |reason|; code 0: empty. */
static int write_close(kite__ws *ws, uint16_t code, const char *reason,
                       size_t len) {
  uint8_t be[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  struct iovec v[2] = {{be, code ? 2u : 0u}, {(void *)(uintptr_t)reason, len}};
  int rc = write_frame(ws, WSLAY_CONNECTION_CLOSE, v, len ? 2 : 1);
  ws->close_sent = code ? code : 1005;
  return rc;
}

/* Codes a peer may put in a close frame (RFC 6455 section 7.4; 1004,
 * 1005, 1006 and 1015 never travel). */
static bool code_valid(uint16_t c) {
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
         (c >= 3000 && c <= 4999);
}

int kite__ws_close(kite__ws *ws, uint16_t code, const char *reason,
                   size_t len) {
  if (ws->state != KITE__WS_OPEN)
    return KITE_ECLOSED;
  if (!code_valid(code) || len > 123)
    return KITE_EINVAL;
  int rc = write_close(ws, code, reason, len);
  ws->state = rc == 0 || rc == KITE_EFULL ? KITE__WS_CLOSE_SENT
                                          : KITE__WS_FAILED;
  return rc;
}

/* A refusal: the close with |code| (whatever the output does with it:
 * the connection ends either way), counted, and the feed's sticky end. */
static int refuse(kite__ws *ws, uint16_t code, uint64_t *counter) {
  (*counter)++;
  if (ws->state == KITE__WS_OPEN)
    write_close(ws, code, NULL, 0);
  ws->state = KITE__WS_FAILED;
  ws->held_len = 0;
  return ws->err = KITE_EPROTO;
}

/* A frame's first piece: judges its header. 0 or KITE_EPROTO. */
static int frame_start(kite__ws *ws, const struct wslay_frame_iocb *io) {
  kite__ws_stats *st = ws->stats;
  if (!io->mask)
    return refuse(ws, KITE__WS_PROTOCOL, &st->refused_unmasked);
  if (io->rsv) /* no extension is ever negotiated */
    return refuse(ws, KITE__WS_PROTOCOL, &st->refused_proto);
  switch (io->opcode) {
  case WSLAY_CONTINUATION_FRAME:
    if (!ws->in_msg)
      return refuse(ws, KITE__WS_PROTOCOL, &st->refused_proto);
    st->fragments_in++;
    break;
  case WSLAY_TEXT_FRAME:
  case WSLAY_BINARY_FRAME:
    if (ws->in_msg) /* section 5.4: no message inside another */
      return refuse(ws, KITE__WS_PROTOCOL, &st->refused_proto);
    if (io->opcode == WSLAY_TEXT_FRAME)
      return refuse(ws, KITE__WS_UNSUPPORTED, &st->refused_text);
    ws->in_msg = true;
    ws->msg_len = 0;
    break;
  case WSLAY_CONNECTION_CLOSE:
  case WSLAY_PING:
  case WSLAY_PONG:
    ws->ctl_len = 0; /* wslay refused any over 125 bytes or fragmented */
    break;
  default:
    return refuse(ws, KITE__WS_PROTOCOL, &st->refused_proto);
  }
  if (!wslay_is_ctrl_frame(io->opcode) &&
      io->payload_length > ws->max_message - ws->msg_len)
    return refuse(ws, KITE__WS_TOO_BIG, &st->refused_too_big);
  ws->in_frame = true;
  ws->frame_op = io->opcode;
  ws->frame_fin = io->fin;
  ws->frame_len = io->payload_length;
  ws->frame_off = 0;
  return 0;
}

/* A control frame is whole. 0, KITE_ECLOSED or KITE_EPROTO. */
static int control_end(kite__ws *ws) {
  kite__ws_stats *st = ws->stats;
  if (ws->frame_op == WSLAY_PING) {
    st->pings_in++;
    if (ws->state != KITE__WS_OPEN)
      return 0; /* nothing goes out after our close */
    struct iovec v = {ws->ctl, ws->ctl_len};
    int rc = write_frame(ws, WSLAY_PONG, &v, 1);
    if (rc == KITE_EFULL) {
      st->pongs_dropped++; /* section 5.5.3: a later ping gets the next */
    } else if (rc < 0) {
      ws->state = KITE__WS_FAILED;
      return ws->err = rc;
    } else {
      st->pongs_out++;
    }
    return 0;
  }
  if (ws->frame_op == WSLAY_PONG) {
    st->pongs_in++;
    return 0;
  }
  /* Close: empty, or a valid code and a reason (section 5.5.1). */
  st->closes_in++;
  uint16_t code = 1005;
  if (ws->ctl_len == 1)
    return refuse(ws, KITE__WS_PROTOCOL, &st->refused_proto);
  if (ws->ctl_len >= 2) {
    code = (uint16_t)(ws->ctl[0] << 8 | ws->ctl[1]);
    if (!code_valid(code))
      return refuse(ws, KITE__WS_PROTOCOL, &st->refused_proto);
  }
  ws->close_received = code;
  if (ws->state == KITE__WS_OPEN) /* answered with the same code */
    write_close(ws, code == 1005 ? 0 : code, NULL, 0);
  ws->state = KITE__WS_CLOSED;
  return ws->err = KITE_ECLOSED;
}

/* Passes the held piece to |fn|; then, if it ended its frame, ends the
 * data message it belongs to. 0, 1 when |fn| stopped, or |fn|'s error. */
static int pass_held(kite__ws *ws, kite__ws_data_fn fn, void *user) {
  if (ws->held_len) {
    ptrdiff_t k = fn(user, ws->held, ws->held_len);
    if (k < 0) { /* the stream above broke; the connection may still close */
      ws->held_len = 0;
      return ws->err = (int)k;
    }
    if ((size_t)k > ws->held_len)
      k = (ptrdiff_t)ws->held_len;
    ws->stats->bytes_in += (uint64_t)k;
    ws->held += k;
    ws->held_len -= (size_t)k;
    if (ws->held_len)
      return 1;
  }
  if (ws->held_ends_frame) {
    ws->held_ends_frame = false;
    if (ws->frame_fin) {
      ws->in_msg = false;
      ws->stats->messages_in++;
    }
  }
  return 0;
}

/* One piece from wslay. 0, 1 when |fn| stopped, or a negative code. */
static int on_piece(kite__ws *ws, const struct wslay_frame_iocb *io,
                    kite__ws_data_fn fn, void *user) {
  int rc;
  if (!ws->in_frame && (rc = frame_start(ws, io)) != 0)
    return rc;
  size_t n = io->data_length;
  ws->frame_off += n;
  bool ends = ws->frame_off == ws->frame_len;
  if (ends)
    ws->in_frame = false;
  if (wslay_is_ctrl_frame(ws->frame_op)) {
    memcpy(ws->ctl + ws->ctl_len, io->data, n); /* at most 125 in all */
    ws->ctl_len = (uint8_t)(ws->ctl_len + n);
    return ends ? control_end(ws) : 0;
  }
  ws->msg_len += n;
  if (ws->state != KITE__WS_OPEN) {
    ws->stats->discarded_in += n; /* after our close: read, not used */
    if (ends && ws->frame_fin)
      ws->in_msg = false;
    return 0;
  }
  ws->held = io->data;
  ws->held_len = n;
  ws->held_ends_frame = ends;
  return pass_held(ws, fn, user);
}

ptrdiff_t kite__ws_feed(kite__ws *ws, const uint8_t *data, size_t len,
                        kite__ws_data_fn fn, void *user) {
  if (ws->err)
    return ws->err;
  int rc = pass_held(ws, fn, user);
  if (rc)
    return rc < 0 ? rc : 0;
  ws->in = data;
  ws->in_len = len;
  ws->in_off = 0;
  while (rc == 0) {
    struct wslay_frame_iocb io;
    memset(&io, 0, sizeof(io));
    ssize_t r = wslay_frame_recv(ws->fr, &io);
    if (r == WSLAY_ERR_WANT_READ)
      break;
    if (r < 0) { /* WSLAY_ERR_PROTO: a frame of the wrong shape */
      rc = refuse(ws, KITE__WS_PROTOCOL, &ws->stats->refused_proto);
      break;
    }
    rc = on_piece(ws, &io, fn, user);
  }
  ws->in = NULL;
  if (rc < 0) {
    if (!ws->err)
      ws->err = rc;
    return rc;
  }
  return (ptrdiff_t)ws->in_off;
}
