/*
 * What every transport carries: the byte stream of frames both ways
 * (PROTOCOL.md section 4), pings and pongs, and the close notice of
 * transports without a CLOSE packet (section 5). The transports move the
 * bytes; this file cuts and builds the frames.
 */
#include "client/client_internal.h"

#include "base/time.h"
#include "kite/error.h"

#include <string.h>
#include <sys/uio.h>

#define KITE__PING_BODY 4 /* our pings carry their send time, u32 LE */

static void protocol_error(kite_conn *conn, const char *why) {
  kite__logf(&conn->cli->log, KITE_LOG_DEBUG, "%s %08x: protocol error: %s",
             conn->tp->name, conn->conv, why);
  kite__cli_conn_close(conn, KITE_CLOSE_PROTOCOL, KITE__CLOSE_PROTOCOL);
}

void kite__cli_frames_opened(kite_conn *conn, uint32_t idle_timeout_ms,
                             uint32_t max_frame) {
  kite_client *cli = conn->cli;
  const kite_client_config *cfg = &cli->cfg;
  conn->max_frame = max_frame;
  conn->idle_timeout_ms = idle_timeout_ms;
  uint32_t limit = cfg->max_frame < max_frame ? cfg->max_frame : max_frame;
  kite__frame_reader_init(&conn->reader, limit);
  conn->ping_ms = cfg->ping_ms;
  if (!conn->ping_ms) {
    /* Section 4: at least every min(idle_timeout_ms / 3, 15 s). */
    conn->ping_ms = 15000;
    if (idle_timeout_ms && idle_timeout_ms / 3 < conn->ping_ms)
      conn->ping_ms = idle_timeout_ms / 3;
    if (!conn->ping_ms)
      conn->ping_ms = 1;
  }
  conn->state = KITE__CONN_OPEN;
  conn->last_rx_ms = cli->now;
  conn->ping_due_ms = cli->now + conn->ping_ms;
  /* The server opens a KCP session on its first segment (section 2, step
   * 5): the ping goes first, ahead of anything on_connect sends. TCP needs
   * no such thing, but gets the same first RTT sample. */
  kite__cli_frames_ping(conn);
  if (conn->state != KITE__CONN_OPEN)
    return; /* a TCP write found the connection broken */
  cli->stats.connected++;
  if (cfg->on_connect)
    cfg->on_connect(conn, cfg->user);
}

static uint32_t get_u32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

void kite__cli_frames_pong(kite_conn *conn, const uint8_t *body, size_t len) {
  if (len != KITE__PING_BODY)
    return; /* not one of ours */
  int32_t rtt = kite__ms_diff(conn->cli->now, get_u32le(body));
  if (rtt >= 0 && rtt < 600000)
    conn->last_rtt_ms = (uint32_t)rtt;
}

/* The server's close notice: its reason is kept for the end of stream; a
 * body other than 1 byte is counted and ignored. Version 2's CLOSE frame
 * is the same frame (PROTOCOL-v2.md section 8), read as 0 when unknown;
 * over KCP, where no end of stream follows, it ends the session now. */
static void on_close_notice(kite_conn *conn, const kite__frame_hdr *h,
                            const uint8_t *body) {
  if (h->len != 1) {
    conn->cli->stats.drop_reserved++;
    return;
  }
  conn->notice_heard = true;
  conn->notice_reason =
      conn->v2 ? kite__v2_close_frame_reason(body, h->len) : body[0];
  if (conn->tp == &kite__cli_v2udp_transport) {
    conn->cli->stats.closed_by_server++;
    kite__cli_conn_close(conn, conn->notice_reason, -1);
  }
}

/* The frame reader's callback (user: the session). Nonzero once the
 * session is closed, which stops the reader. */
static int on_frame(void *user, const kite__frame_hdr *h, const uint8_t *body) {
  kite_conn *conn = user;
  kite_client *cli = conn->cli;
  if (h->msg_id == KITE__MSG_PING) {
    if (h->flags & KITE__FRAME_F_PONG) {
      kite__cli_frames_pong(conn, body, h->len);
    } else if (kite__cli_frames_send(conn, KITE__MSG_PING, KITE__FRAME_F_PONG,
                                     body, h->len) == 0) {
      cli->stats.pongs_sent++; /* a full queue skips one; the next goes */
    }
    return 0;
  }
  if (h->msg_id == KITE__MSG_CLOSE_NOTICE && conn->tp->close_notice) {
    on_close_notice(conn, h, body);
    return conn->state == KITE__CONN_OPEN ? 0 : 1;
  }
  if (conn->v2 && kite__v2_frame_check(h, conn->v2->max_unreliable) < 0) {
    protocol_error(conn, "unreliable frame over max_unreliable");
    return 1;
  }
  if (h->msg_id >= KITE__MSG_RESERVED_MIN) {
    cli->stats.drop_reserved++; /* none other defined in version 1 */
    return 0;
  }
  if (conn->v2 && (h->flags & KITE__FRAME_F_UNRELIABLE)) {
    /* Version 2's unreliable flag (TCP; a KCP receiver alike). */
    kite__cli_deliver_unreliable(conn, h->msg_id, 0, body, h->len);
    return conn->state == KITE__CONN_OPEN ? 0 : 1;
  }
  conn->frames_in++;
  cli->stats.frames_in++;
  if (cli->cfg.on_message)
    cli->cfg.on_message(conn, h->msg_id, body, h->len, cli->cfg.user);
  /* Closed by the callback: stop here, the rest of the stream is moot. */
  return conn->state == KITE__CONN_OPEN ? 0 : 1;
}

void kite__cli_deliver_unreliable(kite_conn *conn, uint16_t msg_id,
                                  unsigned flags, const uint8_t *body,
                                  size_t len) {
  kite_client *cli = conn->cli;
  conn->frames_in++;
  cli->stats.frames_in++;
  cli->stats.unreliable_in++;
  if (cli->cfg.on_unreliable)
    cli->cfg.on_unreliable(conn, msg_id, flags, body, len, cli->cfg.user);
  else if (cli->cfg.on_message)
    cli->cfg.on_message(conn, msg_id, body, len, cli->cfg.user);
}

size_t kite__cli_frames_feed(kite_conn *conn, const uint8_t *p, size_t n) {
  int why = 0;
  ptrdiff_t used =
      kite__frame_reader_feed(&conn->reader, p, n, on_frame, conn, &why);
  if (used == KITE_ENOMEM) {
    kite__cli_conn_close(conn, KITE_CLIENT_NOMEM, KITE__CLOSE_NORMAL);
    return 0;
  }
  if (used < 0) {
    protocol_error(conn, kite__frame_strerror(why));
    return 0;
  }
  return (size_t)used;
}

int kite__cli_frames_send(kite_conn *conn, uint16_t msg_id, uint16_t flags,
                          const void *body, size_t len) {
  uint8_t hdr[KITE__FRAME_HDR];
  kite__frame_header(hdr, msg_id, flags, body, (uint32_t)len,
                     conn->cli->cfg.crc);
  struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)(uintptr_t)body, len}};
  return conn->tp->send(conn, iov, len ? 2 : 1);
}

int kite__cli_frames_ping(kite_conn *conn) {
  uint32_t now = kite__cli_time(conn->cli);
  uint8_t body[KITE__PING_BODY] = {(uint8_t)now, (uint8_t)(now >> 8),
                                   (uint8_t)(now >> 16), (uint8_t)(now >> 24)};
  int rc = kite__cli_frames_send(conn, KITE__MSG_PING, 0, body, sizeof(body));
  if (rc == 0)
    conn->cli->stats.pings_sent++;
  return rc;
}
