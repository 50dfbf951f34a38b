/*
 * Version 2 (PROTOCOL-v2.md), what both transports share: the connect
 * token, read and kept until the attempt ends, and its addresses tried in
 * order, once each, until one accepts, the last fails, or the token's
 * lifetime has passed by our own clock (section 2). Also the UDP
 * handshake (section 3):
 *
 *   HELLO v2(nonce)      ->          state HELLO, retransmitted
 *                        <-  CHALLENGE(nonce, cookie)
 *   CONNECT v2(nonce, cookie, mtu, wnd, the token's sealed part)
 *                        ->          state CONNECT, retransmitted
 *                        <-  ACCEPT(nonce, accept_nonce, sealed body)
 *                            | REJECT(nonce, reason)
 *
 * Each address gets a fresh nonce, registered in by_nonce for as long as
 * the session lives: an ACCEPT that opens under the token's
 * server-to-client key wins from any address tried (client_v2dg.c opens
 * the session), while CHALLENGE and REJECT count only for the current
 * attempt. An ACCEPT that does not open is ignored and counted (anyone can
 * forge one), and CONNECT goes on being resent as usual. A TCP attempt
 * (client_v2tcp.c) is a connection per address.
 */
#include "client/client_internal.h"

#include "base/time.h"
#include "kite/error.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* The longest wait a token may ask for: its lifetime is at most 300 s by
 * the contract; a longer one is the server's to refuse, not a reason to
 * wait past what the 32-bit clock can tell. */
#define KITE__V2_GIVE_UP_MAX_S 86400u

static bool is_tcp(const kite_conn *conn) {
  return conn->tp == &kite__cli_tcp_transport;
}

static void drop_token(kite__cli_v2 *v2) {
  if (v2->have_tok)
    kite__v2tok_wipe(&v2->tok);
  v2->have_tok = false;
}

int kite__cli_v2_new(kite_conn *conn, const uint8_t *token, size_t len) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = calloc(1, sizeof(*v2));
  if (!v2)
    return KITE_ENOMEM;
  conn->v2 = v2;
  if (kite__v2tok_read(token, len, &v2->tok) < 0)
    return KITE_EINVAL;
  v2->have_tok = true;
  if (!is_tcp(conn) && !cli->v6) {
    /* An IPv4 socket reaches IPv4 servers only: one is needed. */
    bool any = false;
    for (int i = 0; i < v2->tok.addr_count; i++)
      any |= v2->tok.addrs[i].type == KITE__V2ADDR_IPV4;
    if (!any)
      return KITE_EINVAL;
  }
  uint64_t life = v2->tok.expire_ts - v2->tok.create_ts; /* read: > 0 */
  if (life > KITE__V2_GIVE_UP_MAX_S)
    life = KITE__V2_GIVE_UP_MAX_S;
  v2->give_up_ms = cli->now + (uint32_t)life * 1000u;
  v2->fail_reason = KITE_CONNECT_TIMEOUT;
  return 0;
}

void kite__cli_v2_free(kite_conn *conn) {
  kite__cli_v2 *v2 = conn->v2;
  if (!v2)
    return;
  if (v2->rd_live)
    kite__v2rec_reader_free(&v2->rd);
  drop_token(v2);
  kite__v2seq_out_free(&v2->seq_out);
  sodium_memzero(v2, sizeof(*v2));
  free(v2);
  conn->v2 = NULL;
}

uint32_t kite__cli_v2_due(const kite_conn *conn, uint32_t due) {
  return kite__ms_min(due, conn->v2->give_up_ms);
}

/* Ends a session that never opened: no wire word, the token wiped. */
static void give_up(kite_conn *conn, int reason) {
  drop_token(conn->v2);
  kite__cli_conn_close(conn, reason, -1);
}

bool kite__cli_v2_expired(kite_conn *conn) {
  kite_client *cli = conn->cli;
  if (!kite__ms_reached(cli->now, conn->v2->give_up_ms))
    return false;
  kite__logf(&cli->log, KITE_LOG_DEBUG,
             "v2 connect: the token's lifetime ran out");
  cli->stats.connect_timeouts++;
  give_up(conn, KITE_CONNECT_EXPIRED);
  return true;
}

/* ---- the UDP handshake ---- */

static void send_request(kite_conn *conn) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  kite__v2ctl k;
  memset(&k, 0, sizeof(k));
  k.type = conn->state == KITE__CONN_HELLO ? KITE__CTRL_HELLO
                                           : KITE__CTRL_CONNECT;
  memcpy(k.nonce, conn->nonce, sizeof(k.nonce));
  if (k.type == KITE__CTRL_CONNECT) {
    memcpy(k.cookie, conn->cookie, sizeof(k.cookie));
    k.mtu = (uint16_t)cli->cfg.mtu; /* 576..2048 */
    k.rcv_wnd =
        (uint16_t)(cli->cfg.rcv_wnd > 65535 ? 65535 : cli->cfg.rcv_wnd);
    k.expire_ts = v2->tok.expire_ts;
    k.token_nonce = v2->tok.nonce;
    k.sealed = v2->tok.sealed;
    cli->stats.connect_sent++;
  } else {
    cli->stats.hello_sent++;
  }
  uint8_t buf[KITE__V2CTL_MAX];
  int n = kite__v2ctl_encode(buf, sizeof(buf), &k);
  if (n > 0) /* our own packets always encode */
    kite__udp_tx_add(cli->tx, &conn->server, NULL, buf, (size_t)n);
  conn->tries++;
  conn->retry_due_ms = cli->now + cli->cfg.retry_ms;
}

/* Starts a UDP attempt at |a|: false when this socket cannot reach it. */
static bool start_udp(kite_conn *conn, const kite__addr *a) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  kite__addr to = *a;
  if (to.sa.sa_family == AF_INET6 && !cli->v6)
    return false;
  if (to.sa.sa_family == AF_INET && cli->v6)
    kite__cli_v4_mapped(&to);
  int rc = kite__cli_conn_nonce(conn);
  if (rc < 0) {
    give_up(conn, KITE_CLIENT_NOMEM);
    return true;
  }
  kite__cli_v2try *t = &v2->tried[v2->ntried - 1];
  memcpy(t->nonce, conn->nonce, sizeof(t->nonce));
  t->addr = to;
  t->registered = true;
  conn->server = to;
  conn->state = KITE__CONN_HELLO;
  conn->tries = 0;
  send_request(conn);
  kite__cli_conn_schedule(conn);
  return true;
}

/* The current UDP attempt is over: its nonce stays routed for a late
 * ACCEPT while the client's old nonces are under max_sessions (so that
 * every session's current nonce always fits by_nonce), else it goes. */
static void retire_nonce(kite_conn *conn) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  if (v2->ntried == 0)
    return;
  kite__cli_v2try *t = &v2->tried[v2->ntried - 1];
  if (!t->registered || t->old)
    return;
  if (cli->v2_old_nonces < cli->cfg.max_sessions) {
    t->old = true;
    cli->v2_old_nonces++;
    return;
  }
  uint64_t key;
  memcpy(&key, t->nonce, sizeof(key));
  kite__map_del(&cli->by_nonce, key);
  t->registered = false;
}

/* Tries the next address; closes with v2->fail_reason when none is left. */
static void next_address(kite_conn *conn) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  if (!is_tcp(conn))
    retire_nonce(conn);
  while (v2->ntried < v2->tok.addr_count) {
    const kite__v2addr *ta = &v2->tok.addrs[v2->ntried++];
    struct sockaddr_storage ss;
    socklen_t len;
    kite__addr a;
    if (kite__v2addr_to_sockaddr(ta, &ss, &len) < 0 ||
        !kite__addr_from(&a, (const struct sockaddr *)&ss, len))
      continue; /* read checked every entry: not reached */
    cli->stats.v2_attempts++;
    if (is_tcp(conn)) {
      v2->tried[v2->ntried - 1].addr = a;
      conn->server = a;
      conn->reply_have = 0;
      conn->notice_heard = false;
      conn->stream_cut = false;
      kite__cli_tcp_start(conn); /* a failure comes back here */
      return;
    }
    if (start_udp(conn, &a))
      return;
    v2->fail_reason = KITE_CONNECT_FAILED; /* IPv6 on an IPv4 socket */
  }
  give_up(conn, v2->fail_reason);
}

void kite__cli_v2_start(kite_conn *conn) { next_address(conn); }

void kite__cli_v2_attempt_failed(kite_conn *conn, int reason) {
  kite__cli_v2 *v2 = conn->v2;
  if (conn->state == KITE__CONN_CLOSED)
    return;
  v2->fail_reason = reason;
  if (is_tcp(conn))
    kite__cli_tcp_release(conn);
  if (kite__cli_v2_expired(conn))
    return;
  next_address(conn);
}

void kite__cli_v2_hs_on_timer(kite_conn *conn) {
  kite_client *cli = conn->cli;
  if (kite__cli_v2_expired(conn))
    return;
  if (!kite__ms_reached(cli->now, conn->retry_due_ms)) {
    kite__cli_conn_schedule(conn);
    return;
  }
  if (conn->tries > cli->cfg.retries) {
    kite__logf(&cli->log, KITE_LOG_DEBUG,
               "v2 handshake: no %s after %u sends, address %u",
               conn->state == KITE__CONN_HELLO ? "CHALLENGE" : "ACCEPT",
               conn->tries, conn->v2->ntried);
    cli->stats.connect_timeouts++;
    kite__cli_v2_attempt_failed(conn, KITE_CONNECT_TIMEOUT);
    return;
  }
  send_request(conn);
  kite__cli_conn_schedule(conn);
}

/* An ACCEPT with attempt |i|'s nonce, from its address. */
static void on_accept(kite_conn *conn, int i, const uint8_t *p,
                      const kite__v2ctl *k) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  if (!v2->tried[i].connect_sent) {
    cli->stats.drop_control++; /* ACCEPT for a CONNECT never sent */
    return;
  }
  kite__v2accept a;
  if (kite__v2ctl_accept_open(p, v2->tok.s2c_key, &a) < 0) {
    cli->stats.v2_accept_bad++; /* forged, or another token's: ignored */
    return;
  }
  if (kite__v2ctl_accept_check(&a, (uint16_t)cli->cfg.mtu) < 0) {
    /* The server holds the key but breaks the table: that attempt ends
     * (if it is not over already). */
    cli->stats.drop_control++;
    kite__logf(&cli->log, KITE_LOG_DEBUG,
               "v2 handshake: ACCEPT breaks the contract's table");
    if (i == v2->ntried - 1)
      kite__cli_v2_attempt_failed(conn, KITE_CLOSE_PROTOCOL);
    return;
  }
  kite__cli_v2dg_open(conn, i, &a, k->accept_nonce);
}

void kite__cli_v2_on_ctrl(kite_conn *conn, const uint8_t *p, size_t len,
                          const kite__addr *from) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  if (conn->state != KITE__CONN_HELLO && conn->state != KITE__CONN_CONNECT)
    return; /* open (a repeated ACCEPT) or closed: late */
  int i = -1;
  for (int j = 0; j < v2->ntried; j++)
    if (memcmp(v2->tried[j].nonce, p + KITE__CTRL_HDR, KITE__CTRL_NONCE) == 0)
      i = j;
  if (i < 0 || !kite__addr_equal(&v2->tried[i].addr, from)) {
    cli->stats.drop_wrong_addr++;
    return;
  }
  bool current = i == v2->ntried - 1;
  uint8_t type = p[4];
  if (p[5] != KITE__V2_VERSION) {
    /* A server of another version: only its REJECT means anything (its
     * reason, 2, where version 1 puts it). */
    if (type != KITE__CTRL_REJECT || !current) {
      cli->stats.drop_control++;
      return;
    }
    cli->stats.rejected++;
    kite__cli_v2_attempt_failed(
        conn, KITE_CONNECT_REJECTED(len > 16 ? p[16] : KITE__REJECT_VERSION));
    return;
  }
  kite__v2ctl k;
  if (kite__v2ctl_decode(p, len, &k) < 0) {
    cli->stats.drop_control++;
    return;
  }
  switch (type) {
  case KITE__CTRL_CHALLENGE:
    if (!current || conn->state != KITE__CONN_HELLO)
      return; /* a reply to a retransmitted HELLO, or an attempt over */
    memcpy(conn->cookie, k.cookie, sizeof(conn->cookie));
    conn->state = KITE__CONN_CONNECT;
    conn->tries = 0;
    v2->tried[i].connect_sent = true;
    send_request(conn);
    kite__cli_conn_schedule(conn);
    return;
  case KITE__CTRL_ACCEPT:
    on_accept(conn, i, p, &k);
    return;
  case KITE__CTRL_REJECT:
    if (!current)
      return; /* that attempt has ended already */
    kite__logf(&cli->log, KITE_LOG_DEBUG, "v2 handshake: REJECT %u (%s)",
               k.reason,
               kite_client_reason_name(KITE_CONNECT_REJECTED(k.reason)));
    cli->stats.rejected++;
    kite__cli_v2_attempt_failed(conn, KITE_CONNECT_REJECTED(k.reason));
    return;
  }
}

/* Forgets every nonce but |keep|'s (-1: all) in by_nonce. */
void kite__cli_v2_unregister(kite_conn *conn, int keep) {
  kite__cli_v2 *v2 = conn->v2;
  for (int j = 0; j < v2->ntried; j++) {
    if (j == keep || !v2->tried[j].registered)
      continue;
    uint64_t key;
    memcpy(&key, v2->tried[j].nonce, sizeof(key));
    kite__map_del(&conn->cli->by_nonce, key);
    v2->tried[j].registered = false;
    if (v2->tried[j].old)
      conn->cli->v2_old_nonces--;
    v2->tried[j].old = false;
  }
}

/* The token is no longer needed once a session opens. */
void kite__cli_v2_drop_token(kite_conn *conn) { drop_token(conn->v2); }
