/*
 * Outages: a client and a server engine (kite's defaults on both sides)
 * across a seeded link with 20% loss each way and a 3 s blackout every
 * 15 s, for 60 s of simulated time, on many seeds (one seed, one session).
 * The client sends a small message at 20 Hz and the server echoes each;
 * kite-chaos does this to kite-bench. A link whose peer comes back after
 * every blackout is not dead: no session may die, and every echo must
 * come back exactly once, in order, once the link has settled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcp/kcp.h"
#include "kite/error.h"
#include "sim_link.h"

#define MSG_LEN 64
#define SEND_EVERY_MS 50     /* 20 Hz */
#define RUN_MS 60000         /* sending stops here ... */
#define SETTLE_MS 30000      /* ... and the link is clean for this long */

typedef struct peer {
  kite__kcp *kcp;
  sim_link *out; /* datagrams this side sends */
  int dead;      /* ops->dead calls */
} peer;

typedef struct world {
  uint32_t now;
  kite__kcp_pool *pool;
  peer p[2]; /* 0 client, 1 server */
  uint32_t sent, echoed, bad;
} world;

static world *current; /* ops carry the block; the world is one at a time */

static peer *peer_of(kite__kcp *kcp) {
  return kcp == current->p[0].kcp ? &current->p[0] : &current->p[1];
}

static void output(kite__kcp *kcp, const uint8_t *buf, size_t len,
                   void *user) {
  (void)user;
  sim_link_send(peer_of(kcp)->out, buf, len, current->now);
}

static void dead(kite__kcp *kcp, void *user) {
  (void)user;
  peer_of(kcp)->dead++;
}

static const kite__kcp_ops ops = {output, dead};

static void fill(uint8_t *m, uint32_t seq) {
  memset(m, (int)(seq & 0xFF), MSG_LEN);
  memcpy(m, &seq, sizeof(seq));
}

/* Input, then the application's part (the server echoes, the client checks
 * the echoes), then a flush when due. */
static void step(world *w, int me) {
  peer *s = &w->p[me];
  uint8_t buf[2048], m[MSG_LEN];
  int n;
  while ((n = sim_link_recv(w->p[1 - me].out, w->now, buf, sizeof(buf))) >= 0)
    kite__kcp_input(s->kcp, buf, (size_t)n, w->now);
  while ((n = kite__kcp_recv(s->kcp, buf, sizeof(buf))) >= 0) {
    uint32_t seq;
    memcpy(&seq, buf, sizeof(seq));
    if (me == 1) {
      if (kite__kcp_send(s->kcp, buf, (size_t)n) < 0)
        w->bad++; /* a live link drains the server's queue in time */
    } else {
      fill(m, w->echoed);
      if (n != MSG_LEN || memcmp(buf, m, MSG_LEN) != 0)
        w->bad++;
      w->echoed++;
    }
  }
  uint32_t due;
  if (kite__kcp_next_due(s->kcp, w->now, &due) &&
      (int32_t)(due - w->now) <= 0)
    kite__kcp_flush(s->kcp, w->now);
}

static uint32_t next_event(const world *w, uint32_t next_send) {
  uint32_t next = w->now + 1000, t;
  if ((int32_t)(next_send - next) < 0)
    next = next_send;
  for (int i = 0; i < 2; i++) {
    if (sim_link_next(w->p[i].out, &t) && (int32_t)(t - next) < 0)
      next = t;
    if (kite__kcp_next_due(w->p[i].kcp, w->now, &t) &&
        (int32_t)(t - next) < 0)
      next = t;
  }
  return (int32_t)(next - w->now) > 0 ? next : w->now + 1;
}

/* One session on |seed|; returns the number of sides that declared the
 * link dead (0, 1 or 2). */
static int run_session(uint64_t seed, uint32_t start) {
  world *w = calloc(1, sizeof(*w));
  current = w;
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  w->pool = kite__kcp_pool_create(&pc);
  assert_non_null(w->pool);
  w->now = start;
  /* The client's block as src/client makes it, the server's as a shard
   * does: the engine's defaults, with the client's larger send queue. */
  kite__kcp_config cfg[2];
  kite__kcp_config_default(&cfg[0]);
  kite__kcp_config_default(&cfg[1]);
  cfg[0].snd_queue_max = 1024;
  for (int i = 0; i < 2; i++) {
    sim_link_config lc = {.seed = seed * 2 + (uint64_t)i,
                          .loss = 0.20,
                          .delay_ms = 5,
                          .jitter_ms = 10,
                          .blackout_every_ms = 15000,
                          .blackout_ms = 3000,
                          /* outages at a different phase on each seed */
                          .blackout_origin = start + (uint32_t)(seed % 15000)};
    w->p[i].out = sim_link_create(&lc);
    assert_non_null(w->p[i].out);
    assert_int_equal(
        kite__kcp_create(&w->p[i].kcp, 0x0C7A6E, &cfg[i], w->pool, &ops, w),
        0);
  }
  uint32_t next_send = w->now;
  uint8_t m[MSG_LEN];
  while ((int32_t)(w->now - (start + RUN_MS + SETTLE_MS)) < 0) {
    bool sending = (int32_t)(w->now - (start + RUN_MS)) < 0;
    if (sending && (int32_t)(w->now - next_send) >= 0) {
      fill(m, w->sent);
      if (kite__kcp_send(w->p[0].kcp, m, sizeof(m)) == 0)
        w->sent++;
      next_send += SEND_EVERY_MS;
    }
    if (!sending) {
      /* The outages end with the load: what is left must get through. */
      for (int i = 0; i < 2; i++)
        sim_link_set_blackouts(w->p[i].out, 0, 0, 0);
    }
    step(w, 0);
    step(w, 1);
    w->now = next_event(w, sending ? next_send : w->now + 1000);
  }
  int died = (w->p[0].dead > 0) + (w->p[1].dead > 0);
  if (!died) {
    /* Both alive: every echo came back, intact and in order. */
    assert_int_equal(w->bad, 0);
    assert_int_equal(w->echoed, w->sent);
    assert_true(w->sent >= RUN_MS / SEND_EVERY_MS / 2);
  }
  for (int i = 0; i < 2; i++) {
    kite__kcp_destroy(w->p[i].kcp);
    sim_link_destroy(w->p[i].out);
  }
  kite__kcp_pool_destroy(w->pool);
  free(w);
  current = NULL;
  return died;
}

#define SESSIONS 200

static void outages_with_loss_kill_no_session(void **state) {
  (void)state;
  int client_or_server_died = 0;
  for (int s = 1; s <= SESSIONS; s++) {
    int died = run_session((uint64_t)s * 104729u, (uint32_t)s * 7777u);
    if (died) {
      print_message("seed %d: %d side(s) declared the link dead\n", s, died);
      client_or_server_died++;
    }
  }
  assert_int_equal(client_or_server_died, 0);
}

/* The same across the 32-bit clock's wrap. */
static void outages_across_clock_wrap(void **state) {
  (void)state;
  for (int s = 1; s <= 20; s++)
    assert_int_equal(
        run_session((uint64_t)s * 7919u + 3, UINT32_MAX - 20000 + (uint32_t)s),
        0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(outages_with_loss_kill_no_session),
      cmocka_unit_test(outages_across_clock_wrap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
