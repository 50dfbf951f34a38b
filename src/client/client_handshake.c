/*
 * The client's half of the cookie handshake (PROTOCOL.md section 2):
 *
 *   HELLO(nonce)  ->                     state HELLO, retransmitted
 *                 <-  CHALLENGE(nonce, cookie)
 *   CONNECT(nonce, cookie, mtu, wnd) ->  state CONNECT, retransmitted
 *                 <-  ACCEPT(...) | REJECT(reason)
 *
 * Each request goes out once and then every retry_ms up to |retries| more
 * times; the state's own packet is the only one retransmitted, so a
 * CHALLENGE stops the HELLOs. retry_ms after the last copy without an
 * answer, the session ends with KITE_CONNECT_TIMEOUT. Replies that no
 * longer fit the state (a second CHALLENGE after the first, a repeated
 * ACCEPT, a REJECT after ACCEPT) are duplicates from retransmissions and
 * are ignored.
 */
#include "client/client_internal.h"

#include "base/time.h"

#include <string.h>

static void send_request(kite_conn *conn) {
  kite_client *cli = conn->cli;
  kite__ctrl k = {.type = conn->state == KITE__CONN_HELLO ? KITE__CTRL_HELLO
                                                          : KITE__CTRL_CONNECT};
  memcpy(k.nonce, conn->nonce, sizeof(k.nonce));
  if (k.type == KITE__CTRL_CONNECT) {
    memcpy(k.cookie, conn->cookie, sizeof(k.cookie));
    k.mtu = (uint16_t)cli->cfg.mtu;
    /* The window is a u16 on the wire; the KCP header's wnd is one too. */
    k.rcv_wnd = (uint16_t)(cli->cfg.rcv_wnd > 65535 ? 65535 : cli->cfg.rcv_wnd);
    cli->stats.connect_sent++;
  } else {
    cli->stats.hello_sent++;
  }
  /* Both encode to 64 zero-padded bytes: no reply is larger (no
   * amplification, section 2 step 1). */
  kite__cli_udp_send_ctrl(conn, &k, 1);
  conn->tries++;
  conn->retry_due_ms = cli->now + cli->cfg.retry_ms;
}

void kite__cli_hs_start(kite_conn *conn) {
  conn->state = KITE__CONN_HELLO;
  conn->tries = 0;
  send_request(conn);
  kite__cli_conn_schedule(conn);
}

void kite__cli_hs_on_timer(kite_conn *conn) {
  kite_client *cli = conn->cli;
  if (!kite__ms_reached(cli->now, conn->retry_due_ms)) {
    kite__cli_conn_schedule(conn);
    return;
  }
  if (conn->tries > cli->cfg.retries) {
    kite__logf(&cli->log, KITE_LOG_DEBUG, "handshake: no %s after %u sends",
               conn->state == KITE__CONN_HELLO ? "CHALLENGE" : "ACCEPT",
               conn->tries);
    cli->stats.connect_timeouts++;
    kite__cli_conn_close(conn, KITE_CONNECT_TIMEOUT, -1);
    return;
  }
  send_request(conn);
  kite__cli_conn_schedule(conn);
}

void kite__cli_hs_on_reject(kite_conn *conn, int reason) {
  kite_client *cli = conn->cli;
  kite__logf(&cli->log, KITE_LOG_DEBUG, "handshake: REJECT %d (%s)", reason,
             kite_client_reason_name(KITE_CONNECT_REJECTED(reason)));
  cli->stats.rejected++;
  kite__cli_conn_close(conn, KITE_CONNECT_REJECTED(reason), -1);
}

void kite__cli_hs_on_packet(kite_conn *conn, const kite__ctrl *k,
                            bool version_reject) {
  kite_client *cli = conn->cli;
  switch (k->type) {
  case KITE__CTRL_CHALLENGE:
    if (conn->state != KITE__CONN_HELLO)
      return; /* a reply to a retransmitted HELLO */
    memcpy(conn->cookie, k->cookie, sizeof(conn->cookie));
    conn->state = KITE__CONN_CONNECT;
    conn->tries = 0;
    send_request(conn);
    kite__cli_conn_schedule(conn);
    return;
  case KITE__CTRL_ACCEPT:
    if (conn->state != KITE__CONN_CONNECT) {
      if (conn->state == KITE__CONN_HELLO)
        cli->stats.drop_control++; /* ACCEPT for a CONNECT never sent */
      return; /* else a repeated ACCEPT (PROTOCOL.md section 2, step 4) */
    }
    conn->conv = k->conv;
    memcpy(conn->token, k->token, sizeof(conn->token));
    conn->accepted = true;
    kite__cli_kcp_open(conn, k);
    return;
  case KITE__CTRL_REJECT:
    if (conn->state != KITE__CONN_HELLO && conn->state != KITE__CONN_CONNECT)
      return; /* the server never rejects a nonce it accepted: stale */
    kite__cli_hs_on_reject(conn,
                           version_reject ? KITE__REJECT_VERSION : k->reason);
    return;
  }
}
