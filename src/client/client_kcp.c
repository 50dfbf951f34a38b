/*
 * The KCP transport (PROTOCOL.md sections 2 and 3): once ACCEPT arrives, a
 * KCP block on the client's shared UDP socket carries the session's frame
 * stream; CLOSE ends it either way. The handshake before it is
 * client_handshake.c's, the datagram routing client_udp.c's.
 */
#include "client/client_internal.h"

#include "kite/error.h"

#include <sodium.h>
#include <string.h>

static void kcp_output(kite__kcp *kcp, const uint8_t *buf, size_t len,
                       void *user) {
  (void)kcp;
  kite_conn *conn = user;
  kite__udp_tx_add(conn->cli->tx, &conn->server, NULL, buf, len);
}

/* From inside kite__kcp_flush(): closing does not touch the block (the
 * flush in kcp_close is for normal closes only). */
void kite__cli_kcp_dead(kite__kcp *kcp, void *user) {
  (void)kcp;
  kite_conn *conn = user;
  kite__logf(&conn->cli->log, KITE_LOG_DEBUG, "conv %08x: dead link",
             conn->conv);
  kite__cli_conn_close(conn, KITE_CLOSE_DEAD_LINK, KITE__CLOSE_DEAD_LINK);
}

static const kite__kcp_ops kcp_ops = {kcp_output, kite__cli_kcp_dead};

static void protocol_error(kite_conn *conn, const char *why) {
  kite__logf(&conn->cli->log, KITE_LOG_DEBUG, "conv %08x: protocol error: %s",
             conn->conv, why);
  kite__cli_conn_close(conn, KITE_CLOSE_PROTOCOL, KITE__CLOSE_PROTOCOL);
}

int kite__cli_kcp_start(kite_conn *conn, uint32_t mtu, uint16_t peer_wnd,
                        const kite__kcp_ops *ops) {
  kite_client *cli = conn->cli;
  const kite_client_config *cfg = &cli->cfg;
  kite__kcp_config kc;
  kite__kcp_config_default(&kc);
  kc.mtu = mtu;
  kc.snd_wnd = cfg->snd_wnd;
  kc.rcv_wnd = cfg->rcv_wnd;
  kc.peer_rcv_wnd = peer_wnd;
  kc.interval_ms = cfg->interval_ms;
  kc.dead_link_ms = cfg->dead_link_ms;
  kc.snd_queue_max = cfg->send_queue_max;
  int rc = kite__kcp_create(&conn->kcp, conn->conv, &kc, cli->pool, ops, conn);
  if (rc < 0) {
    kite__cli_conn_close(
        conn, rc == KITE_ENOMEM ? KITE_CLIENT_NOMEM : KITE_CLOSE_PROTOCOL,
        rc == KITE_ENOMEM ? KITE__CLOSE_NORMAL : KITE__CLOSE_PROTOCOL);
    return -1;
  }
  rc = kite__map_put(&cli->by_conv,
                     kite__cli_conv_key(conn->conv, &conn->server), conn->slot);
  if (rc == KITE_ENOMEM) { /* the map could not grow */
    kite__cli_conn_close(conn, KITE_CLIENT_NOMEM, KITE__CLOSE_NORMAL);
    return -1;
  }
  if (rc < 0) {
    /* Another live session of ours has this conv from this server, which
     * the server promises never to do (section 2). */
    protocol_error(conn, "ACCEPT with the conv of a live session");
    return -1;
  }
  conn->in_conv_map = true;
  return 0;
}

void kite__cli_kcp_open(kite_conn *conn, const kite__ctrl *acc) {
  const kite_client_config *cfg = &conn->cli->cfg;
  /* The mtu to use is the smaller of both (section 2, step 4): a server
   * answering more than we offered gets what we offered. */
  uint32_t mtu = acc->mtu < cfg->mtu ? acc->mtu : cfg->mtu;
  if (acc->conv == KITE__CTRL_MAGIC || mtu < 50 || acc->rcv_wnd == 0) {
    protocol_error(conn, "ACCEPT with an unusable conv, mtu or window");
    return;
  }
  if (kite__cli_kcp_start(conn, mtu, acc->rcv_wnd, &kcp_ops) < 0)
    return;
  kite__cli_frames_opened(conn, acc->idle_timeout_ms, acc->max_frame);
}

void kite__cli_kcp_input(kite_conn *conn, const uint8_t *p, size_t len) {
  kite_client *cli = conn->cli;
  int rc = kite__kcp_input(conn->kcp, p, len, cli->now);
  if (rc == 0) {
    conn->last_rx_ms = cli->now;
  } else {
    /* Bad segments are dropped, never fatal: anyone who can send from the
     * server's address could forge them, and a CLOSE needs the token. */
    cli->stats.drop_kcp++;
  }
  kite__cli_touch(conn);
}

/* Feeds the stream KCP holds to the frame reader. Copied out, not read in
 * place with kite__kcp_peek_contig(): callbacks send on this same block,
 * and a pointer into it is only valid until the next call on it. */
void kite__cli_kcp_read_frames(kite_conn *conn) {
  kite_client *cli = conn->cli;
  size_t avail;
  while (conn->state == KITE__CONN_OPEN &&
         (avail = kite__kcp_readable(conn->kcp)) > 0) {
    size_t n = avail < cli->scratch_cap ? avail : cli->scratch_cap;
    n = kite__kcp_peek(conn->kcp, cli->scratch, n);
    size_t used = kite__cli_frames_feed(conn, cli->scratch, n);
    if (conn->state != KITE__CONN_OPEN)
      return;
    kite__kcp_consume(conn->kcp, used);
  }
}

void kite__cli_kcp_flush(kite_conn *conn) {
  kite__cli_kcp_read_frames(conn);
  if (conn->state == KITE__CONN_OPEN)
    kite__kcp_flush(conn->kcp, conn->cli->now);
}

bool kite__cli_kcp_next_due(const kite_conn *conn, uint32_t now, uint32_t *due) {
  return kite__kcp_next_due(conn->kcp, now, due);
}

int kite__cli_kcp_send(kite_conn *conn, const struct iovec *iov, int n) {
  int rc = kite__kcp_sendv(conn->kcp, iov, n);
  if (rc == KITE_EDEAD)
    return KITE_ESTATE; /* closing: the dead callback has run */
  if (rc == 0)
    kite__cli_touch(conn);
  return rc;
}

void kite__cli_kcp_on_close(kite_conn *conn, const kite__ctrl *k) {
  kite_client *cli = conn->cli;
  if (sodium_memcmp(k->token, conn->token, sizeof(conn->token)) != 0) {
    cli->stats.drop_close++;
    return;
  }
  kite__logf(&cli->log, KITE_LOG_DEBUG, "conv %08x: CLOSE from server (%s)",
             conn->conv, kite_close_reason_name(k->reason));
  /* What arrived before the CLOSE, in this receive batch, still waits in
   * KCP for the safe point: deliver it first (a reply sent just before a
   * kick). A callback that closes the session there closed it first. */
  if (conn->state == KITE__CONN_OPEN)
    kite__cli_kcp_read_frames(conn);
  if (conn->state == KITE__CONN_CLOSED)
    return;
  cli->stats.closed_by_server++;
  kite__cli_conn_close(conn, k->reason, -1);
}

static void kcp_close(kite_conn *conn, bool was_open, int wire_reason) {
  kite_client *cli = conn->cli;
  if (was_open && conn->reason == KITE_CLOSE_NORMAL &&
      !kite__kcp_is_dead(conn->kcp))
    kite__kcp_flush(conn->kcp, cli->now); /* one transmission of the tail */
  if (conn->accepted && wire_reason >= 0) {
    kite__ctrl k = {.type = KITE__CTRL_CLOSE,
                    .conv = conn->conv,
                    .reason = (uint8_t)wire_reason};
    memcpy(k.token, conn->token, sizeof(k.token));
    /* Three copies back to back (PROTOCOL.md section 2: no ack). */
    kite__cli_udp_send_ctrl(conn, &k, 3);
    cli->stats.closed_by_client++;
  }
  uint64_t key;
  memcpy(&key, conn->nonce, sizeof(key));
  kite__map_del(&cli->by_nonce, key);
  if (conn->in_conv_map) {
    kite__map_del(&cli->by_conv, kite__cli_conv_key(conn->conv, &conn->server));
    conn->in_conv_map = false;
  }
}

void kite__cli_kcp_free(kite_conn *conn) {
  kite__kcp_destroy(conn->kcp);
  conn->kcp = NULL;
}

void kite__cli_kcp_stats(const kite_conn *conn, kite_conn_stats *out) {
  if (!conn->kcp)
    return;
  kite__kcp_stats ks;
  kite__kcp_get_stats(conn->kcp, &ks);
  out->srtt_ms = ks.srtt_ms;
  out->rto_ms = ks.rto_ms;
  out->retransmits = ks.retransmits + ks.fast_retransmits;
}

const kite__cli_transport kite__cli_kcp_transport = {
    .name = "kcp",
    .input = kite__cli_kcp_input,
    .on_timer = kite__cli_hs_on_timer,
    .send = kite__cli_kcp_send,
    .flush = kite__cli_kcp_flush,
    .next_due = kite__cli_kcp_next_due,
    .close = kcp_close,
    .free = kite__cli_kcp_free,
    .stats = kite__cli_kcp_stats,
};
