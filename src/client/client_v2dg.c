/*
 * Version 2 over UDP once ACCEPT opened (PROTOCOL-v2.md sections 4, 5 and
 * 9): the KCP block of client_kcp.c, with every output sealed as one KCP
 * item in a protected datagram, and every datagram of the server opened,
 * checked against the replay window and read item by item.
 *
 * Sending: items are written at cli->v2_out + 12 and sealed in place under
 * the client-to-server traffic key with the next packet number (from 0);
 * nothing is allocated per packet. The KCP mtu is the accepted mtu - 31,
 * so one KCP output (3 bytes of item header, 28 of datagram) fits one
 * datagram. Numbers 2^48 - 3 on carry a CLOSE 7 and end the session.
 *
 * Receiving, in the contract's order, every drop counted and never
 * answered: size and packet number (v2_drop_size); the sender, which
 * by_conv already matched to the accepted server's address (a datagram
 * from any other is drop_unknown); the replay window (v2_drop_replay); the
 * tag (v2_drop_auth); then the window records it, and the items are
 * checked whole before any is acted on (a malformed one: CLOSE 2).
 */
#include "client/client_internal.h"

#include "kite/error.h"
#include "proto/v2item.h"

#include <sodium.h>
#include <string.h>

#define ITEMS_AT KITE__V2PKT_HDR

/* Seals the |len| bytes of items at cli->v2_out + 12 into a datagram to
 * the server. |close| says they are a CLOSE already. */
static void send_items(kite_conn *conn, size_t len, bool close) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  uint8_t *items = cli->v2_out + ITEMS_AT;
  size_t room = v2->mtu - KITE__V2PKT_OVERHEAD;
  uint64_t pn;
  int st = kite__v2pn_take(&v2->pn, &pn);
  if (st < 0)
    return; /* no number left: the session has ended */
  if (st == KITE__V2PN_CLOSING && !close) {
    /* Section 9: this number carries CLOSE 7, beside the rest if it
     * fits, in its place if not. */
    if (len + KITE__V2ITEM_HDR + 1 > room)
      len = 0;
    len += (size_t)kite__v2item_put_close(items + len, room - len,
                                          KITE__CLOSE_KEY_EXHAUSTED);
  }
  int n = kite__v2pkt_seal(cli->v2_out, sizeof(cli->v2_out), conn->conv, pn,
                           v2->keys.c2s, items, len);
  if (n > 0)
    kite__udp_tx_add(cli->tx, &conn->server, NULL, cli->v2_out, (size_t)n);
  if (st == KITE__V2PN_CLOSING && conn->state != KITE__CONN_CLOSED) {
    kite__logf(&cli->log, KITE_LOG_INFO,
               "v2 %08x: packet numbers exhausted, closing", conn->conv);
    kite__cli_conn_close(conn, KITE__CLOSE_KEY_EXHAUSTED,
                         KITE__CLOSE_KEY_EXHAUSTED);
  }
}

static void v2_output(kite__kcp *kcp, const uint8_t *buf, size_t len,
                      void *user) {
  (void)kcp;
  kite_conn *conn = user;
  kite_client *cli = conn->cli;
  if (conn->v2->done)
    return; /* after our CLOSE nothing more goes */
  int n = kite__v2item_put(cli->v2_out + ITEMS_AT,
                           sizeof(cli->v2_out) - KITE__V2PKT_OVERHEAD,
                           KITE__V2ITEM_KCP, buf, len);
  if (n > 0)
    send_items(conn, (size_t)n, false);
}

static const kite__kcp_ops v2_ops = {v2_output, kite__cli_kcp_dead};

void kite__cli_v2dg_open(kite_conn *conn, int i, const kite__v2accept *a,
                         const uint8_t accept_nonce[8]) {
  kite__cli_v2 *v2 = conn->v2;
  /* The winning attempt's address and nonce are the session's; the
   * others stop here (their nonces no longer route). */
  conn->server = v2->tried[i].addr;
  memcpy(conn->nonce, v2->tried[i].nonce, sizeof(conn->nonce));
  kite__cli_v2_unregister(conn, i);
  conn->conv = a->conv;
  conn->accepted = true;
  kite__v2_traffic_keys(&v2->keys, v2->tok.c2s_key, v2->tok.s2c_key, false,
                        conn->nonce, accept_nonce);
  kite__cli_v2_drop_token(conn);
  v2->mtu = a->mtu;
  v2->max_unreliable = a->max_unreliable;
  kite__replay_init(&v2->win);
  v2->pn.next = 0;
  kite__v2seq_init(&v2->seq_in);
  kite__v2seq_out_free(&v2->seq_out); /* a fresh count, from 0 */
  if (kite__cli_kcp_start(conn, a->mtu - KITE__V2PKT_MIN, a->rcv_wnd,
                          &v2_ops) < 0)
    return;
  kite__cli_frames_opened(conn, a->idle_timeout_ms, a->max_frame);
}

static void protocol_error(kite_conn *conn, const char *why) {
  kite__logf(&conn->cli->log, KITE_LOG_DEBUG, "v2 %08x: protocol error: %s",
             conn->conv, why);
  kite__cli_conn_close(conn, KITE_CLOSE_PROTOCOL, KITE__CLOSE_PROTOCOL);
}

/* An UNRELIABLE item: the server's pings answered on the same lane, its
 * pongs timed; messages to the application, a sequenced one only when it
 * is newer than the newest of its msg_id (section 6). */
static void on_unreliable(kite_conn *conn, const kite__v2item *it) {
  kite_client *cli = conn->cli;
  if (it->msg_id >= KITE__MSG_RESERVED_MIN) {
    cli->stats.v2_unreliable_dropped++; /* none defined */
    return;
  }
  if (it->msg_id != KITE__MSG_PING) {
    unsigned f = 0;
    if (it->flags & KITE__V2U_F_SEQ) {
      if (!kite__v2seq_accept(&conn->v2->seq_in, it->msg_id, it->seq)) {
        cli->stats.unreliable_drop_stale++;
        return;
      }
      f = KITE_UNRELIABLE_SEQUENCED;
    }
    kite__cli_deliver_unreliable(conn, it->msg_id, f, it->body, it->body_len);
    return;
  }
  if (it->flags & KITE__V2U_F_PONG) {
    kite__cli_frames_pong(conn, it->body, it->body_len);
    return;
  }
  /* The item check held the body to 32 bytes. */
  int n = kite__v2item_put_unreliable(
      cli->v2_out + ITEMS_AT, sizeof(cli->v2_out) - KITE__V2PKT_OVERHEAD,
      KITE__MSG_PING, KITE__V2U_F_PONG, 0, it->body, it->body_len,
      conn->v2->max_unreliable);
  if (n > 0 && !conn->v2->done) {
    send_items(conn, (size_t)n, false);
    cli->stats.pongs_sent++;
  }
}

int kite__cli_v2dg_send_unreliable(kite_conn *conn, uint16_t msg_id,
                                   unsigned flags, const void *body,
                                   size_t len) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  if (v2->done)
    return KITE_ESTATE;
  uint8_t f = 0;
  uint16_t seq = 0;
  if (flags & KITE_UNRELIABLE_SEQUENCED) {
    f = KITE__V2U_F_SEQ;
    if (kite__v2seq_next(&v2->seq_out, msg_id, &seq) < 0)
      return KITE_ENOMEM; /* a first msg_id, no memory to count it */
  }
  int n = kite__v2item_put_unreliable(
      cli->v2_out + ITEMS_AT, sizeof(cli->v2_out) - KITE__V2PKT_OVERHEAD,
      msg_id, f, seq, body, len, v2->max_unreliable);
  if (n < 0)
    return n;
  send_items(conn, (size_t)n, false);
  cli->stats.unreliable_out++;
  return 0;
}

static void on_challenge(kite_conn *conn, const uint8_t *data) {
  kite_client *cli = conn->cli;
  if (conn->v2->done)
    return;
  int n = kite__v2item_put_path(cli->v2_out + ITEMS_AT,
                                sizeof(cli->v2_out) - KITE__V2PKT_OVERHEAD,
                                KITE__V2ITEM_PATH_RESPONSE, data);
  if (n > 0) {
    send_items(conn, (size_t)n, false);
    cli->stats.v2_path_responses++;
  }
}

static void v2_input(kite_conn *conn, const uint8_t *p, size_t len) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  uint32_t conv;
  uint64_t pn;
  if (len > v2->mtu || kite__v2pkt_peek(p, len, &conv, &pn) < 0) {
    cli->stats.v2_drop_size++;
    return;
  }
  if (kite__replay_check(&v2->win, pn) < 0) {
    cli->stats.v2_drop_replay++;
    return;
  }
  int n = kite__v2pkt_open(cli->v2_in, p, len, v2->keys.s2c);
  if (n < 0) {
    cli->stats.v2_drop_auth++;
    return;
  }
  if (kite__replay_record(&v2->win, pn) < 0) {
    cli->stats.v2_drop_replay++;
    return;
  }
  /* It verified: only the server could have sent it. */
  conn->last_rx_ms = cli->now;
  kite__v2item_rules rules = {.conv = conn->conv,
                              .max_unreliable = v2->max_unreliable,
                              .from_server = true};
  kite__v2item_scan scan;
  if (kite__v2item_check(cli->v2_in, (size_t)n, &rules, &scan) < 0) {
    protocol_error(conn, kite__v2item_strerror(scan.why));
    return;
  }
  cli->stats.v2_items_skipped += scan.reserved + scan.wrong_way;
  kite__v2item_iter it;
  kite__v2item item;
  kite__v2item_iter_init(&it, cli->v2_in, scan.end, true);
  while (conn->state == KITE__CONN_OPEN && kite__v2item_next(&it, &item)) {
    switch (item.type) {
    case KITE__V2ITEM_KCP:
      if (kite__kcp_input(conn->kcp, item.value, item.len, cli->now) < 0)
        cli->stats.drop_kcp++;
      break;
    case KITE__V2ITEM_UNRELIABLE:
      on_unreliable(conn, &item);
      break;
    case KITE__V2ITEM_PATH_CHALLENGE:
      on_challenge(conn, item.value);
      break;
    case KITE__V2ITEM_CLOSE:
      kite__logf(&cli->log, KITE_LOG_DEBUG, "v2 %08x: CLOSE from server (%s)",
                 conn->conv, kite_close_reason_name(item.reason));
      /* What came before it, in this datagram or earlier, first. */
      kite__cli_kcp_read_frames(conn);
      if (conn->state != KITE__CONN_OPEN)
        return;
      cli->stats.closed_by_server++;
      kite__cli_conn_close(conn, item.reason, -1);
      return;
    }
  }
  kite__cli_touch(conn);
}

static void v2_close(kite_conn *conn, bool was_open, int wire_reason) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  if (was_open && conn->reason == KITE_CLOSE_NORMAL && conn->kcp &&
      !kite__kcp_is_dead(conn->kcp))
    kite__kcp_flush(conn->kcp, cli->now); /* one transmission of the tail */
  if (conn->accepted && wire_reason >= 0 && !v2->done) {
    /* Three datagrams, each a CLOSE under a number of its own (section 5:
     * as v1, no ack). */
    for (int i = 0; i < 3; i++) {
      int n = kite__v2item_put_close(cli->v2_out + ITEMS_AT,
                                     sizeof(cli->v2_out) -
                                         KITE__V2PKT_OVERHEAD,
                                     (uint8_t)wire_reason);
      if (n > 0)
        send_items(conn, (size_t)n, true);
    }
    v2->done = true;
    cli->stats.closed_by_client++;
  }
  v2->done = true;
  kite__cli_v2_unregister(conn, -1);
  kite__cli_v2_drop_token(conn);
  if (conn->in_conv_map) {
    kite__map_del(&cli->by_conv, kite__cli_conv_key(conn->conv, &conn->server));
    conn->in_conv_map = false;
  }
}

const kite__cli_transport kite__cli_v2udp_transport = {
    .name = "kcp v2",
    .input = v2_input,
    .on_timer = kite__cli_v2_hs_on_timer,
    .send = kite__cli_kcp_send,
    .flush = kite__cli_kcp_flush,
    .next_due = kite__cli_kcp_next_due,
    .close = v2_close,
    .free = kite__cli_kcp_free,
    .stats = kite__cli_kcp_stats,
    .close_notice = true, /* a CLOSE frame over KCP acts as on TCP */
};
