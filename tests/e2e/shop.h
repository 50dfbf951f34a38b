/*
 * The shop test (test_shop.c): what its run and its verdict
 * (shop_verdict.c) share. Every failed expectation is collected, so that
 * one run lists them all with their counts.
 */
#ifndef KITE_TESTS_E2E_SHOP_H
#define KITE_TESTS_E2E_SHOP_H

#include "kite/kite.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { MSG_JOIN = 1, MSG_BUY = 2, MSG_BOUGHT = 3, MSG_KICK = 4,
       MSG_KICK_OK = 5, MSG_TICK = 6 };

#define MAX_PEERS 1024 /* players and raw peers, all rounds */
#define MAX_REC 2048   /* server sessions */

typedef struct sizes {
  int kcp, tcp, killers, burst, killer_burst, rounds, tick_ms, kick_every;
  int round_ticks, stop_ticks;
} sizes;

typedef struct srv_rec {
  atomic_int busy;    /* a callback of this session is running */
  kite_session_id id;
  int idx;            /* from JOIN; -1 before */
  int connects, disconnects, reason;
  uint32_t buys, seq_errors, reply_fails;
} srv_rec;

/* Each record is owned by its session's executor while the server runs;
 * the test thread reads them once kite_server_stop() has returned. */
extern srv_rec recs[MAX_REC];
/* Any executor adds, the test thread reads. s_reasons: on_disconnect's. */
extern atomic_int nrecs, s_connects, s_disconnects, s_orphans, s_overlaps,
    s_no_user, s_joined, s_join_fails, s_kicks, s_kick_reply_fails,
    s_kick_close_fails, s_ticks, s_tick_fails, s_reasons[8];
/* A peer's session id by its JOIN index: the JOIN handler (any executor)
 * writes it, the test thread reads it. */
extern _Atomic kite_session_id sid_of[MAX_PEERS];
/* Created by the test thread before kite_server_start(), destroyed after
 * kite_server_stop(); the handlers and the tick use it in between. */
extern kite_group *shop_group;
/* Ticks left to broadcast: the test thread sets it while it is 0, the
 * timer's executor counts it down. A bounded number of ticks keeps every
 * player's backlog under send_queue_max however slow the machine, so no
 * one is closed as a slow peer for the machine's sake. */
extern atomic_int tick_budget;

/* The server's callbacks, handlers and tick (shop_server.c). */
void shop_on_connect(kite_server *srv, kite_session_id id, void *u);
void shop_on_disconnect(kite_server *srv, kite_session_id id, int reason,
                        void *u);
void shop_on_join(const kite_request *q);
void shop_on_buy(const kite_request *q);
void shop_on_kick(const kite_request *q);
void shop_on_tick(kite_server *srv, kite_timer_id id, void *u);
/* Zeroes the records and counters before a run (no server running). */
void shop_server_reset(void);

typedef struct player {
  int idx;
  bool tcp;
  kite_conn *conn;
  int connects, disconnects, reason;
  int kick_round;            /* the round it asks to be kicked in; -1 never */
  bool kick_sent;
  int kick_oks;              /* KICK_OK frames received */
  uint32_t buys_sent, bought, bought_errors, send_fails, unknown;
  uint32_t ticks, tick_errors;
  uint64_t last_tick;
} player;

/* The test thread's only (the client is polled there). */
extern player players[MAX_PEERS];

/* Failed expectations of the current run (the test thread's). */
extern char shop_fails[16384];
extern int shop_nfails;
extern const char *shop_mode;
void shop_fails_reset(const char *mode);
void shop_expect_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
#define EXPECT(cond, ...)                                                     \
  do {                                                                        \
    if (!(cond))                                                              \
      shop_expect_fail(__VA_ARGS__);                                          \
  } while (0)

/* Checks every expectation once the run is over and prints its figures. */
void shop_verdict(const sizes *z, int nplayers, int nkillers,
                  const kite_server_stats *st, const kite_client_stats *cst,
                  uint64_t stop_ms);

#endif
