/*
 * The shop test's verdict: every expectation of test_shop.c, counted over
 * the players (client side) and the sessions (server side), each failure
 * listed with its counts.
 */
#include "shop.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

char shop_fails[16384];
int shop_nfails;
const char *shop_mode;
static size_t fails_len;

void shop_fails_reset(const char *mode) {
  shop_mode = mode;
  shop_fails[0] = 0;
  fails_len = 0;
  shop_nfails = 0;
}

void shop_expect_fail(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  fprintf(stderr, "shop[%s] FAILED: %s\n", shop_mode, line);
  shop_nfails++;
  if (fails_len < sizeof(shop_fails) - 1)
    fails_len += (size_t)snprintf(shop_fails + fails_len,
                                  sizeof(shop_fails) - fails_len, "  %s\n",
                                  line);
}

/* ---- the verdict: every expectation, counted, on the test thread */

void shop_verdict(const sizes *z, int nplayers, int nkillers,
                  const kite_server_stats *st, const kite_client_stats *cst,
                  uint64_t stop_ms) {
  /* The client's side, per player. */
  int c_once = 0, bought_short = 0, bought_order = 0, send_fails = 0;
  int unknown = 0, tick_less = 0, tick_gaps = 0;
  int kicked[2] = {0, 0}, kick_reply_lost[2] = {0, 0};
  int kick_reason_wrong[2] = {0, 0}, kick_bought_short[2] = {0, 0};
  int survivors[2] = {0, 0}, shutdown_wrong[2] = {0, 0};
  int reasons[2][8] = {{0}};
  char kick_reasons[2][96] = {"", ""}, stop_reasons[2][96] = {"", ""};
  for (int i = 0; i < nplayers; i++) {
    player *p = &players[i];
    int t = p->tcp;
    if (p->connects != 1 || p->disconnects != 1)
      c_once++;
    reasons[t][p->reason >= 0 && p->reason < 7 ? p->reason : 7]++;
    send_fails += (int)p->send_fails;
    unknown += (int)p->unknown;
    bought_order += p->bought_errors != 0;
    tick_less += p->connects == 1 && p->ticks == 0;
    tick_gaps += p->tick_errors != 0;
    if (p->kick_sent) {
      kicked[t]++;
      kick_bought_short[t] += p->bought != p->buys_sent;
      kick_reply_lost[t] += p->kick_oks != 1;
      if (p->reason != KITE_CLOSE_KICKED) {
        kick_reason_wrong[t]++;
        size_t n = strlen(kick_reasons[t]);
        if (n < 80)
          snprintf(kick_reasons[t] + n, sizeof(kick_reasons[t]) - n, " %s",
                   kite_client_reason_name(p->reason));
      }
    } else if (p->connects == 1) {
      survivors[t]++;
      bought_short += p->bought != p->buys_sent ||
                      p->buys_sent != (uint32_t)(z->burst * z->rounds);
      if (p->reason != KITE_CLOSE_SHUTDOWN) {
        shutdown_wrong[t]++;
        size_t n = strlen(stop_reasons[t]);
        if (n < 80)
          snprintf(stop_reasons[t] + n, sizeof(stop_reasons[t]) - n, " %s",
                   kite_client_reason_name(p->reason));
      }
    }
  }
  EXPECT(c_once == 0, "players whose client on_connect/on_disconnect did not run exactly once each: %d of %d",
         c_once, nplayers);
  EXPECT(send_fails == 0, "kite_conn_send() failures: %d", send_fails);
  EXPECT(bought_short == 0, "surviving players missing BOUGHTs (sent %d each): %d of %d",
         z->burst * z->rounds, bought_short, survivors[0] + survivors[1]);
  EXPECT(bought_order == 0, "players with a BOUGHT out of order or repeated: %d", bought_order);
  for (int t = 0; t < 2; t++) {
    const char *tr = t ? "TCP" : "KCP";
    EXPECT(kick_bought_short[t] == 0, "%s kicked players missing a BOUGHT sent before the kick: %d of %d",
           tr, kick_bought_short[t], kicked[t]);
    EXPECT(kick_reply_lost[t] == 0, "%s kicked players without the reply sent just before kite_session_close(): %d of %d",
           tr, kick_reply_lost[t], kicked[t]);
    EXPECT(kick_reason_wrong[t] == 0, "%s kicked players told another reason than \"kicked\": %d of %d (got:%s)",
           tr, kick_reason_wrong[t], kicked[t], kick_reasons[t]);
    EXPECT(shutdown_wrong[t] == 0, "%s survivors told another reason than \"shutdown\" at the stop: %d of %d (got:%s)",
           tr, shutdown_wrong[t], survivors[t], stop_reasons[t]);
  }
  EXPECT(unknown == 0, "frames of an unknown kind received: %d", unknown);
  EXPECT(tick_less == 0, "players that never got a tick: %d", tick_less);
  EXPECT(tick_gaps == 0, "players whose ticks had a gap or came out of order: %d", tick_gaps);

  /* The server's side, per session (every thread has been joined). */
  int n = atomic_load(&nrecs), s_once = 0, seq_errors = 0, reply_fails = 0;
  int buys_wrong = 0;
  EXPECT(n <= MAX_REC, "server sessions over the test's table: %d", n);
  if (n > MAX_REC)
    n = MAX_REC;
  for (int i = 0; i < n; i++) {
    srv_rec *r = &recs[i];
    s_once += r->connects != 1 || r->disconnects != 1;
    seq_errors += r->seq_errors != 0;
    if (r->idx >= 0 && r->idx < nplayers) {
      player *p = &players[r->idx];
      reply_fails += r->reply_fails != 0;
      buys_wrong += r->buys != p->buys_sent;
    }
  }
  int expected = nplayers + nkillers;
  EXPECT(atomic_load(&s_connects) == expected, "server on_connect calls: %d, sessions opened: %d (players %d + raw peers %d)",
         atomic_load(&s_connects), expected, nplayers, nkillers);
  EXPECT(atomic_load(&s_disconnects) == atomic_load(&s_connects),
         "server on_disconnect calls: %d for %d on_connect calls", atomic_load(&s_disconnects),
         atomic_load(&s_connects));
  EXPECT(s_once == 0, "server sessions without exactly one on_connect and one on_disconnect: %d of %d", s_once, n);
  EXPECT(atomic_load(&s_orphans) == 0, "server on_disconnect calls for a session with no user pointer: %d",
         atomic_load(&s_orphans));
  EXPECT(atomic_load(&s_overlaps) == 0, "server callbacks of one session running at once: %d",
         atomic_load(&s_overlaps));
  EXPECT(atomic_load(&s_no_user) == 0, "server handlers run with no user pointer: %d", atomic_load(&s_no_user));
  EXPECT(seq_errors == 0, "server sessions that saw BUYs out of order: %d", seq_errors);
  EXPECT(buys_wrong == 0, "players whose BUY count on the server differs from what they sent: %d", buys_wrong);
  EXPECT(reply_fails == 0, "players for whom a kite_reply(BOUGHT) failed: %d", reply_fails);
  int kicks = kicked[0] + kicked[1];
  EXPECT(atomic_load(&s_kicks) == kicks, "KICK handler calls: %d, KICKs sent: %d", atomic_load(&s_kicks), kicks);
  EXPECT(atomic_load(&s_kick_reply_fails) == 0 && atomic_load(&s_kick_close_fails) == 0,
         "in the KICK handler kite_reply failed %d times, kite_session_close %d times",
         atomic_load(&s_kick_reply_fails), atomic_load(&s_kick_close_fails));
  EXPECT(st->closed_kicked == (uint64_t)kicks, "server closed_kicked: %llu, kicks: %d",
         (unsigned long long)st->closed_kicked, kicks);
  EXPECT(atomic_load(&s_reasons[KITE_CLOSE_KICKED]) == kicks,
         "server on_disconnect(kicked) calls: %d, kicks: %d", atomic_load(&s_reasons[KITE_CLOSE_KICKED]), kicks);
  EXPECT(atomic_load(&s_join_fails) == 0, "kite_group_join failures: %d", atomic_load(&s_join_fails));
  EXPECT(atomic_load(&s_ticks) > 0 && atomic_load(&s_tick_fails) == 0,
         "ticks: %d, of which kite_group_broadcast failed: %d", atomic_load(&s_ticks),
         atomic_load(&s_tick_fails));
  EXPECT(st->closed_slow_peer == 0, "sessions closed as slow peers: %llu (the load outran the players)",
         (unsigned long long)st->closed_slow_peer);
  EXPECT(st->sessions == 0, "server sessions left after the stop: %llu", (unsigned long long)st->sessions);

  fprintf(stderr,
          "shop[%s]: %d kcp + %d tcp players, %d raw peers killed, burst %d x "
          "%d rounds, tick %d ms: %d ticks broadcast, %d kicks, stop %llu ms\n"
          "  server on_disconnect reasons: normal %d idle %d protocol %d "
          "shutdown %d kicked %d dead %d slow %d\n",
          shop_mode, z->kcp, z->tcp, nkillers, z->burst, z->rounds,
          z->tick_ms, atomic_load(&s_ticks), kicks, (unsigned long long)stop_ms,
          atomic_load(&s_reasons[0]), atomic_load(&s_reasons[1]),
          atomic_load(&s_reasons[2]), atomic_load(&s_reasons[3]),
          atomic_load(&s_reasons[4]), atomic_load(&s_reasons[5]),
          atomic_load(&s_reasons[6]));
  for (int t = 0; t < 2; t++)
    fprintf(stderr,
            "  %s players' reasons: normal %d idle %d protocol %d shutdown %d "
            "kicked %d dead %d slow %d other %d\n",
            t ? "TCP" : "KCP", reasons[t][0], reasons[t][1], reasons[t][2],
            reasons[t][3], reasons[t][4], reasons[t][5], reasons[t][6],
            reasons[t][7]);
  fprintf(stderr,
          "  server: dgrams out %llu (kernel refused %llu), retransmits %llu, "
          "backpressure %llu, tcp accepted %llu; client: dgrams in %llu, "
          "out refused %llu, tcp resets %llu\n",
          (unsigned long long)st->dgrams_out,
          (unsigned long long)st->dgrams_out_dropped,
          (unsigned long long)st->retransmits,
          (unsigned long long)st->backpressure,
          (unsigned long long)st->tcp_accepted,
          (unsigned long long)cst->dgrams_in,
          (unsigned long long)cst->dgrams_out_dropped,
          (unsigned long long)cst->tcp_resets);
}
