/*
 * An open session: its KCP block, and the byte stream of frames it carries
 * both ways (PROTOCOL.md sections 3 and 4), pings and pongs included. The
 * frame half (opening, frames in, frames out) serves TCP sessions too;
 * client_tcp.c moves their bytes.
 */
#include "client/client_internal.h"

#include "base/time.h"
#include "kite/error.h"

#include <string.h>
#include <sys/uio.h>

#define KITE__PING_BODY 4 /* our pings carry their send time, u32 LE */

static void kcp_output(kite__kcp *kcp, const uint8_t *buf, size_t len,
                       void *user) {
  (void)kcp;
  kite_conn *conn = user;
  kite__udp_tx_add(conn->cli->tx, &conn->server, NULL, buf, len);
}

/* From inside kite__kcp_flush(): closing does not touch the block (the
 * flush in kite__conn_close is for normal closes only). */
static void kcp_dead(kite__kcp *kcp, void *user) {
  (void)kcp;
  kite_conn *conn = user;
  kite__logf(&conn->cli->log, KITE_LOG_DEBUG, "conv %08x: dead link",
             conn->conv);
  kite__conn_close(conn, KITE_CLOSE_DEAD_LINK, KITE__CLOSE_DEAD_LINK);
}

static const kite__kcp_ops kcp_ops = {kcp_output, kcp_dead};

static void protocol_error(kite_conn *conn, const char *why) {
  kite__logf(&conn->cli->log, KITE_LOG_DEBUG, "conv %08x: protocol error: %s",
             conn->conv, why);
  kite__conn_close(conn, KITE_CLOSE_PROTOCOL, KITE__CLOSE_PROTOCOL);
}

void kite__stream_open(kite_conn *conn, const kite__ctrl *acc) {
  kite_client *cli = conn->cli;
  const kite_client_config *cfg = &cli->cfg;
  /* The mtu to use is the smaller of both (section 2, step 4): a server
   * answering more than we offered gets what we offered. */
  uint32_t mtu = acc->mtu < cfg->mtu ? acc->mtu : cfg->mtu;
  if (acc->conv == KITE__CTRL_MAGIC || mtu < 50 || acc->rcv_wnd == 0) {
    protocol_error(conn, "ACCEPT with an unusable conv, mtu or window");
    return;
  }
  kite__kcp_config kc;
  kite__kcp_config_default(&kc);
  kc.mtu = mtu;
  kc.snd_wnd = cfg->snd_wnd;
  kc.rcv_wnd = cfg->rcv_wnd;
  kc.peer_rcv_wnd = acc->rcv_wnd;
  kc.interval_ms = cfg->interval_ms;
  kc.dead_link_ms = cfg->dead_link_ms;
  kc.snd_queue_max = cfg->send_queue_max;
  int rc = kite__kcp_create(&conn->kcp, conn->conv, &kc, cli->pool, &kcp_ops,
                            conn);
  if (rc < 0) {
    kite__conn_close(conn, rc == KITE_ENOMEM ? KITE_CLIENT_NOMEM
                                             : KITE_CLOSE_PROTOCOL,
                     rc == KITE_ENOMEM ? KITE__CLOSE_NORMAL
                                       : KITE__CLOSE_PROTOCOL);
    return;
  }
  if (kite__map_put(&cli->by_conv,
                    kite__client_conv_key(conn->conv, &conn->server),
                    conn->slot) < 0) {
    /* Another live session of ours has this conv from this server, which
     * the server promises never to do (section 2). */
    protocol_error(conn, "ACCEPT with the conv of a live session");
    return;
  }
  conn->in_conv_map = true;
  kite__stream_opened(conn, acc->idle_timeout_ms, acc->max_frame);
}

void kite__stream_opened(kite_conn *conn, uint32_t idle_timeout_ms,
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
  kite__stream_ping(conn);
  if (conn->state != KITE__CONN_OPEN)
    return; /* a TCP write found the connection broken */
  cli->stats.connected++;
  if (cfg->on_connect)
    cfg->on_connect(conn, cfg->user);
}

void kite__stream_input(kite_conn *conn, const uint8_t *p, size_t len) {
  kite_client *cli = conn->cli;
  int rc = kite__kcp_input(conn->kcp, p, len, cli->now);
  if (rc == 0) {
    conn->last_rx_ms = cli->now;
  } else {
    /* Bad segments are dropped, never fatal: anyone who can send from the
     * server's address could forge them, and a CLOSE needs the token. */
    cli->stats.drop_kcp++;
  }
  kite__client_touch(conn);
}

static uint32_t get_u32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void on_pong(kite_conn *conn, const kite__frame_hdr *h,
                    const uint8_t *body) {
  if (h->len != KITE__PING_BODY)
    return; /* not one of ours */
  int32_t rtt = kite__ms_diff(conn->cli->now, get_u32le(body));
  if (rtt >= 0 && rtt < 600000)
    conn->last_rtt_ms = (uint32_t)rtt;
}

int kite__stream_on_frame(void *user, const kite__frame_hdr *h,
                          const uint8_t *body) {
  kite_conn *conn = user;
  kite_client *cli = conn->cli;
  if (h->msg_id == KITE__MSG_PING) {
    if (h->flags & KITE__FRAME_F_PONG) {
      on_pong(conn, h, body);
    } else if (kite__stream_send(conn, KITE__MSG_PING, KITE__FRAME_F_PONG,
                                 body, h->len) == 0) {
      cli->stats.pongs_sent++; /* a full queue skips one; the next goes */
    }
    return 0;
  }
  if (h->msg_id == KITE__MSG_CLOSE_NOTICE && conn->tcp) {
    kite__tcp_on_notice(conn, h, body);
    return 0;
  }
  if (h->msg_id >= KITE__MSG_RESERVED_MIN) {
    cli->stats.drop_reserved++; /* none other defined in version 1 */
    return 0;
  }
  conn->frames_in++;
  cli->stats.frames_in++;
  if (cli->cfg.on_message)
    cli->cfg.on_message(conn, h->msg_id, body, h->len, cli->cfg.user);
  /* Closed by the callback: stop here, the rest of the stream is moot. */
  return conn->state == KITE__CONN_OPEN ? 0 : 1;
}

/* Feeds the stream KCP holds to the frame reader. Copied out, not read in
 * place with kite__kcp_peek_contig(): callbacks send on this same block,
 * and a pointer into it is only valid until the next call on it. */
void kite__stream_read(kite_conn *conn) {
  kite_client *cli = conn->cli;
  size_t avail;
  while (conn->state == KITE__CONN_OPEN &&
         (avail = kite__kcp_readable(conn->kcp)) > 0) {
    size_t n = avail < cli->scratch_cap ? avail : cli->scratch_cap;
    n = kite__kcp_peek(conn->kcp, cli->scratch, n);
    int why = 0;
    ptrdiff_t used = kite__frame_reader_feed(&conn->reader, cli->scratch, n,
                                             kite__stream_on_frame, conn, &why);
    if (used == KITE_ENOMEM) {
      kite__conn_close(conn, KITE_CLIENT_NOMEM, KITE__CLOSE_NORMAL);
      return;
    }
    if (used < 0) {
      protocol_error(conn, kite__frame_strerror(why));
      return;
    }
    if (conn->state != KITE__CONN_OPEN)
      return;
    kite__kcp_consume(conn->kcp, (size_t)used);
  }
}

void kite__stream_service(kite_conn *conn) {
  kite__stream_read(conn);
  if (conn->state == KITE__CONN_OPEN)
    kite__kcp_flush(conn->kcp, conn->cli->now);
}

int kite__stream_send(kite_conn *conn, uint16_t msg_id, uint16_t flags,
                      const void *body, size_t len) {
  uint8_t hdr[KITE__FRAME_HDR];
  kite__frame_header(hdr, msg_id, flags, body, (uint32_t)len,
                     conn->cli->cfg.crc);
  struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)(uintptr_t)body, len}};
  if (conn->tcp)
    return kite__tcp_sendv(conn, iov, len ? 2 : 1);
  int rc = kite__kcp_sendv(conn->kcp, iov, len ? 2 : 1);
  if (rc == KITE_EDEAD)
    return KITE_ESTATE; /* closing: the dead callback has run */
  if (rc == 0)
    kite__client_touch(conn);
  return rc;
}

int kite__stream_ping(kite_conn *conn) {
  uint32_t now = kite__client_time(conn->cli);
  uint8_t body[KITE__PING_BODY] = {(uint8_t)now, (uint8_t)(now >> 8),
                                   (uint8_t)(now >> 16), (uint8_t)(now >> 24)};
  int rc = kite__stream_send(conn, KITE__MSG_PING, 0, body, sizeof(body));
  if (rc == 0)
    conn->cli->stats.pings_sent++;
  return rc;
}
