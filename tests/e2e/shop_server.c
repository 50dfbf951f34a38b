/*
 * The shop test's server side (test_shop.c runs it): BUY gets BOUGHT with
 * the session's count, KICK gets a reply and then kite_session_close(),
 * JOIN enters the group that a repeating timer broadcasts ticks to; every
 * callback counts what it saw, and checks that no two callbacks of one
 * session ever run at once.
 */
#include "shop.h"
#include "shop_peer.h"

#include <string.h>

srv_rec recs[MAX_REC]; /* owners: shop.h */
_Atomic kite_session_id sid_of[MAX_PEERS];
kite_group *shop_group;
atomic_int nrecs, s_connects, s_disconnects, s_orphans, s_overlaps,
    s_no_user, s_joined, s_join_fails, s_kicks, s_kick_reply_fails,
    s_kick_close_fails, s_ticks, s_tick_fails, s_reasons[8];
static atomic_uint_fast64_t tick_no; /* the timer's executor only */

static void enter(srv_rec *r) {
  if (atomic_exchange(&r->busy, 1) != 0)
    atomic_fetch_add(&s_overlaps, 1); /* two callbacks of one session at once */
}
static void leave(srv_rec *r) { atomic_store(&r->busy, 0); }

void shop_on_connect(kite_server *srv, kite_session_id id, void *u) {
  (void)u;
  atomic_fetch_add(&s_connects, 1);
  int i = atomic_fetch_add(&nrecs, 1);
  if (i >= MAX_REC)
    return;
  srv_rec *r = &recs[i];
  r->id = id;
  r->idx = -1;
  r->connects = 1;
  kite_session_set_user(srv, id, r);
}

void shop_on_disconnect(kite_server *srv, kite_session_id id, int reason,
                        void *u) {
  (void)u;
  srv_rec *r = kite_session_user(srv, id);
  atomic_fetch_add(&s_disconnects, 1);
  atomic_fetch_add(&s_reasons[reason & 7], 1);
  if (!r) {
    atomic_fetch_add(&s_orphans, 1);
    return;
  }
  enter(r);
  r->disconnects++;
  r->reason = reason;
  leave(r);
}

void shop_on_join(const kite_request *q) {
  srv_rec *r = q->session_user;
  if (!r || q->len != 4) {
    atomic_fetch_add(&s_no_user, 1);
    return;
  }
  enter(r);
  r->idx = (int)shop_get32(q->body);
  if (kite_group_join(shop_group, q->session) != 0)
    atomic_fetch_add(&s_join_fails, 1);
  if (r->idx >= 0 && r->idx < MAX_PEERS)
    atomic_store(&sid_of[r->idx], q->session);
  atomic_fetch_add(&s_joined, 1);
  leave(r);
}

void shop_on_buy(const kite_request *q) {
  srv_rec *r = q->session_user;
  if (!r || q->len != 4) {
    atomic_fetch_add(&s_no_user, 1);
    return;
  }
  enter(r);
  uint32_t seq = shop_get32(q->body);
  if (seq != r->buys)
    r->seq_errors++;
  r->buys++;
  uint8_t b[8];
  shop_put32(b, seq);
  shop_put32(b + 4, r->buys);
  if (kite_reply(q, MSG_BOUGHT, b, sizeof(b)) != 0)
    r->reply_fails++;
  leave(r);
}

void shop_on_kick(const kite_request *q) {
  srv_rec *r = q->session_user;
  if (!r) {
    atomic_fetch_add(&s_no_user, 1);
    return;
  }
  enter(r);
  atomic_fetch_add(&s_kicks, 1);
  if (kite_reply(q, MSG_KICK_OK, "bye", 3) != 0)
    atomic_fetch_add(&s_kick_reply_fails, 1);
  if (kite_session_close(q->srv, q->session) != 0)
    atomic_fetch_add(&s_kick_close_fails, 1);
  leave(r);
}

atomic_int tick_budget;

void shop_on_tick(kite_server *srv, kite_timer_id id, void *u) {
  (void)srv; (void)id; (void)u;
  if (atomic_load(&tick_budget) <= 0)
    return;
  atomic_fetch_sub(&tick_budget, 1);
  uint64_t n = atomic_fetch_add(&tick_no, 1) + 1;
  uint8_t b[8];
  shop_put32(b, (uint32_t)n);
  shop_put32(b + 4, (uint32_t)(n >> 32));
  atomic_fetch_add(&s_ticks, 1);
  if (kite_group_broadcast(shop_group, MSG_TICK, b, sizeof(b)) < 0)
    atomic_fetch_add(&s_tick_fails, 1);
}

void shop_server_reset(void) {
  memset(recs, 0, sizeof(recs));
  for (int i = 0; i < MAX_PEERS; i++)
    atomic_store(&sid_of[i], 0);
  atomic_int *counters[] = {&nrecs, &s_connects, &s_disconnects, &s_orphans,
                            &s_overlaps, &s_no_user, &s_joined, &s_join_fails,
                            &s_kicks, &s_kick_reply_fails, &s_kick_close_fails,
                            &s_ticks, &s_tick_fails, &tick_budget};
  for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
    atomic_store(counters[i], 0);
  for (int i = 0; i < 8; i++)
    atomic_store(&s_reasons[i], 0);
  atomic_store(&tick_no, 0);
}
