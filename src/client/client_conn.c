/*
 * A session's life, whatever its transport: created by
 * kite_client_connect() (KCP) or kite_client_connect_tcp(), one timer for
 * everything it waits for, closed (by either side, or by a timeout) with
 * its on_disconnect deferred to a safe point, then freed. Also the public
 * kite_conn_* calls, which check state and arguments here and leave the
 * frames to client_frames.c and the wire to the session's transport.
 */
#include "client/client_internal.h"

#include "base/time.h"
#include "kite/error.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* An IPv4 address as a dual-stack socket reports its datagrams
 * (::ffff:a.b.c.d), so that replies compare equal to it. */
void kite__cli_v4_mapped(kite__addr *a) {
  struct sockaddr_in v4 = a->v4;
  memset(a, 0, sizeof(*a));
  a->v6.sin6_family = AF_INET6;
  a->v6.sin6_port = v4.sin_port;
  a->v6.sin6_addr.s6_addr[10] = 0xff;
  a->v6.sin6_addr.s6_addr[11] = 0xff;
  memcpy(&a->v6.sin6_addr.s6_addr[12], &v4.sin_addr, 4);
}

/* A fresh random nonce, registered. Nonces are never reused (PROTOCOL.md
 * section 2, step 1): 64 random bits, and a clash with a live session's
 * (or the all-zero nonce of TCP's REJECT) draws again. */
int kite__cli_conn_nonce(kite_conn *conn) {
  kite_client *cli = conn->cli;
  for (int i = 0; i < 16; i++) {
    uint64_t key;
    randombytes_buf(conn->nonce, sizeof(conn->nonce));
    memcpy(&key, conn->nonce, sizeof(key));
    if (key == 0)
      continue;
    int rc = kite__map_put(&cli->by_nonce, key, conn->slot);
    if (rc != KITE_ESTATE)
      return rc;
  }
  return KITE_EFULL; /* 16 clashes in 2^64: the generator is broken */
}

kite_conn *kite__cli_conn_new(kite_client *cli, const kite__cli_transport *tp,
                              void *user, int *rc) {
  if (cli->nfree == 0) {
    *rc = KITE_EFULL;
    return NULL;
  }
  kite_conn *conn = calloc(1, sizeof(*conn));
  if (!conn) {
    *rc = KITE_ENOMEM;
    return NULL;
  }
  conn->cli = cli;
  conn->tp = tp;
  conn->user = user;
  conn->fd = -1;
  conn->slot = cli->free_slots[--cli->nfree];
  cli->conns[conn->slot] = conn;
  cli->stats.sessions++;
  return conn;
}

/* The arguments both connects share: a client and "HOST:PORT", port not 0. */
static int connect_args(kite_client *c, const char *server_addr,
                        kite_conn **out, kite__addr *server) {
  if (out)
    *out = NULL;
  if (!c || !server_addr || kite__addr_parse(server, server_addr) < 0 ||
      kite__addr_port(server) == 0)
    return KITE_EINVAL;
  return 0;
}

int kite_client_connect(kite_client *c, const char *server_addr,
                        void *conn_user, kite_conn **out) {
  kite__addr server;
  if (connect_args(c, server_addr, out, &server) < 0)
    return KITE_EINVAL;
  if (server.sa.sa_family == AF_INET6 && !c->v6)
    return KITE_EINVAL;
  if (server.sa.sa_family == AF_INET && c->v6)
    kite__cli_v4_mapped(&server);
  int rc;
  kite_conn *conn =
      kite__cli_conn_new(c, &kite__cli_kcp_transport, conn_user, &rc);
  if (!conn)
    return rc;
  conn->server = server;
  rc = kite__cli_conn_nonce(conn);
  if (rc < 0) {
    kite__cli_conn_free(conn);
    return rc;
  }
  kite__cli_time(c);
  kite__cli_hs_start(conn);
  if (out)
    *out = conn;
  return 0;
}

int kite_client_connect_tcp(kite_client *c, const char *server_addr,
                            void *conn_user, kite_conn **out) {
  /* Its own socket, of the server's family: no v4-mapping, and an IPv6
   * server is fine whatever the UDP socket is. */
  kite__addr server;
  if (connect_args(c, server_addr, out, &server) < 0)
    return KITE_EINVAL;
  int rc;
  kite_conn *conn =
      kite__cli_conn_new(c, &kite__cli_tcp_transport, conn_user, &rc);
  if (!conn)
    return rc;
  conn->server = server;
  kite__cli_time(c);
  kite__cli_tcp_start(conn);
  if (out)
    *out = conn;
  return 0;
}

/* Both token connects: the session, its token read, its first address
 * started. */
static int connect_token(kite_client *c, const uint8_t *token, void *user,
                         kite_conn **out, const kite__cli_transport *tp) {
  if (out)
    *out = NULL;
  if (!c || !token)
    return KITE_EINVAL;
  if (tp == &kite__cli_v2udp_transport && c->cfg.mtu < KITE__V2_MTU_MIN)
    return KITE_EINVAL;
  if (tp == &kite__cli_tcp_transport &&
      c->cfg.tcp_send_max < KITE__V2CTL_MAX) /* OPEN v2 must fit */
    return KITE_EINVAL;
  if (tp == &kite__cli_tcp_transport && !c->v2rec) {
    /* One sealing buffer for every v2 TCP session, at the first. */
    c->v2rec = malloc(KITE__V2REC_OVERHEAD + KITE__V2REC_MAX);
    if (!c->v2rec)
      return KITE_ENOMEM;
  }
  int rc;
  kite_conn *conn = kite__cli_conn_new(c, tp, user, &rc);
  if (!conn)
    return rc;
  kite__cli_time(c);
  rc = kite__cli_v2_new(conn, token, KITE_TOKEN_BYTES);
  if (rc < 0) {
    kite__cli_conn_free(conn);
    return rc;
  }
  kite__cli_v2_start(conn);
  if (out)
    *out = conn;
  return 0;
}

int kite_client_connect_token(kite_client *c,
                              const uint8_t token[KITE_TOKEN_BYTES],
                              void *conn_user, kite_conn **out) {
  return connect_token(c, token, conn_user, out, &kite__cli_v2udp_transport);
}

int kite_client_connect_token_tcp(kite_client *c,
                                  const uint8_t token[KITE_TOKEN_BYTES],
                                  void *conn_user, kite_conn **out) {
  return connect_token(c, token, conn_user, out, &kite__cli_tcp_transport);
}

/* Whether this client closes the session when the server is silent for
 * its idle timeout. Not over v2 datagrams: the client keeps no idle timer
 * of its own there, it pings and learns of an idle close from the
 * server's CLOSE 1 (PROTOCOL-v2.md section 4); a dead server is KCP's
 * dead link. */
static bool idle_watched(const kite_conn *conn) {
  return conn->idle_timeout_ms && conn->tp != &kite__cli_v2udp_transport;
}

void kite__cli_conn_schedule(kite_conn *conn) {
  kite_client *cli = conn->cli;
  uint32_t now = cli->now;
  uint32_t due;
  switch (conn->state) {
  case KITE__CONN_HELLO:
  case KITE__CONN_CONNECT:
  case KITE__CONN_TCP_CONNECT:
  case KITE__CONN_TCP_OPENING:
    due = conn->retry_due_ms;
    if (conn->v2)
      due = kite__cli_v2_due(conn, due);
    break;
  case KITE__CONN_OPEN: {
    /* An idle session wakes for its ping only: the idle deadline lies
     * beyond it unless ping_ms was set above the server's idle timeout. */
    due = conn->ping_due_ms;
    if (idle_watched(conn))
      due = kite__ms_min(due, conn->last_rx_ms + conn->idle_timeout_ms);
    uint32_t tp_due;
    if (conn->tp->next_due && conn->tp->next_due(conn, now, &tp_due))
      due = kite__ms_min(due, tp_due);
    break;
  }
  default:
    kite__wheel_del(&cli->wheel, &conn->timer);
    return;
  }
  kite__wheel_add(&cli->wheel, &conn->timer, due);
}

void kite__cli_conn_on_timer(kite_conn *conn) {
  kite_client *cli = conn->cli;
  uint32_t now = cli->now;
  if (conn->state == KITE__CONN_CLOSED)
    return;
  if (conn->state != KITE__CONN_OPEN) {
    conn->tp->on_timer(conn); /* the handshake's retransmission or deadline */
    return;
  }
  if (idle_watched(conn) &&
      kite__ms_reached(now, conn->last_rx_ms + conn->idle_timeout_ms)) {
    kite__logf(&cli->log, KITE_LOG_DEBUG, "%s %08x: idle timeout",
               conn->tp->name, conn->conv);
    kite__cli_conn_close(conn, KITE_CLOSE_IDLE, KITE__CLOSE_IDLE);
    return;
  }
  if (kite__ms_reached(now, conn->ping_due_ms)) {
    /* A full send queue is no reason to fail: the data in it keeps the
     * session alive as well as a ping would, once acked. */
    kite__cli_frames_ping(conn);
    conn->ping_due_ms = now + conn->ping_ms;
  }
  /* The transport's flush and the re-arm happen at the safe point. */
  kite__cli_touch(conn);
}

void kite__cli_conn_close(kite_conn *conn, int reason, int wire_reason) {
  kite_client *cli = conn->cli;
  if (conn->state == KITE__CONN_CLOSED)
    return;
  bool open = conn->state == KITE__CONN_OPEN;
  /* CLOSED first: a dead link found by a flush in the transport's close
   * must not close the session a second time. */
  conn->state = KITE__CONN_CLOSED;
  conn->reason = reason;
  conn->tp->close(conn, open, wire_reason);
  kite__wheel_del(&cli->wheel, &conn->timer);
  conn->closed_next = NULL;
  if (cli->closing_tail)
    cli->closing_tail->closed_next = conn;
  else
    cli->closing = conn;
  cli->closing_tail = conn;
}

void kite__cli_conn_detach(kite_conn *conn) {
  kite_client *cli = conn->cli;
  if (conn->slot == KITE__CONN_NO_SLOT)
    return;
  cli->conns[conn->slot] = NULL;
  cli->free_slots[cli->nfree++] = conn->slot;
  cli->stats.sessions--;
  conn->slot = KITE__CONN_NO_SLOT;
}

void kite__cli_conn_free(kite_conn *conn) {
  kite__wheel_del(&conn->cli->wheel, &conn->timer);
  conn->tp->free(conn);
  kite__cli_v2_free(conn);
  kite__frame_reader_free(&conn->reader);
  kite__cli_conn_detach(conn);
  free(conn);
}

/* ---- the public session calls ---- */

int kite_conn_send(kite_conn *conn, uint16_t msg_id, const void *body,
                   size_t len) {
  if (!conn || (len && !body))
    return KITE_EINVAL;
  if (conn->state != KITE__CONN_OPEN)
    return KITE_ESTATE;
  if (msg_id == KITE__MSG_PING || msg_id >= KITE__MSG_RESERVED_MIN)
    return KITE_EINVAL;
  if (len > conn->max_frame)
    return KITE_EMSGSIZE;
  int rc = kite__cli_frames_send(conn, msg_id, 0, body, len);
  if (rc == 0) {
    conn->frames_out++;
    conn->cli->stats.frames_out++;
  }
  return rc;
}

int kite_conn_send_unreliable(kite_conn *conn, uint16_t msg_id,
                              const void *body, size_t len, unsigned flags) {
  if (!conn || (len && !body) || (flags & ~KITE_UNRELIABLE_SEQUENCED))
    return KITE_EINVAL;
  if (conn->state != KITE__CONN_OPEN)
    return KITE_ESTATE;
  if (msg_id == KITE__MSG_PING || msg_id >= KITE__MSG_RESERVED_MIN)
    return KITE_EINVAL;
  if (!conn->v2) /* version 1: no lane, a reliable frame */
    return kite_conn_send(conn, msg_id, body, len);
  if (len > conn->v2->max_unreliable || len > conn->max_frame)
    return KITE_EMSGSIZE;
  kite_client *cli = conn->cli;
  if (conn->tp != &kite__cli_v2udp_transport) {
    int rc = kite__cli_frames_send(conn, msg_id, KITE__FRAME_F_UNRELIABLE,
                                   body, len);
    if (rc == 0) {
      conn->frames_out++;
      cli->stats.frames_out++;
    }
    return rc;
  }
  kite__cli_time(cli);
  int rc = kite__cli_v2dg_send_unreliable(conn, msg_id, flags, body, len);
  if (rc == 0) {
    conn->frames_out++;
    cli->stats.frames_out++;
    if (!cli->in_poll) /* sent now, not with the next poll's batch */
      kite__udp_tx_flush(cli->tx);
  }
  return rc;
}

int kite_conn_ping(kite_conn *conn) {
  if (!conn)
    return KITE_EINVAL;
  if (conn->state != KITE__CONN_OPEN)
    return KITE_ESTATE;
  return kite__cli_frames_ping(conn);
}

int kite_conn_close(kite_conn *conn) {
  if (!conn)
    return KITE_EINVAL;
  if (conn->state == KITE__CONN_CLOSED)
    return KITE_ECLOSED;
  kite_client *cli = conn->cli;
  kite__cli_time(cli);
  kite__cli_conn_close(conn, KITE_CLOSE_NORMAL, KITE__CLOSE_NORMAL);
  /* Outside poll nothing else would send it soon: a close is often the
   * application's last word (before it stops polling, or its server), so
   * it leaves now rather than with the next poll's batch. */
  if (!cli->in_poll)
    kite__udp_tx_flush(cli->tx);
  return 0;
}

void *kite_conn_user(const kite_conn *conn) { return conn->user; }

void kite_conn_get_stats(const kite_conn *conn, kite_conn_stats *out) {
  memset(out, 0, sizeof(*out));
  conn->tp->stats(conn, out);
  out->last_rtt_ms = conn->last_rtt_ms;
  out->frames_in = conn->frames_in;
  out->frames_out = conn->frames_out;
  out->conv = conn->accepted ? conn->conv : 0;
  out->version = conn->v2 ? 2 : 1;
  out->max_unreliable = conn->v2 ? conn->v2->max_unreliable : 0;
}
