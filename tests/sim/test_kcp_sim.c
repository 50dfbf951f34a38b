/*
 * Two engines over a seeded lossy link (loss, duplication, jittered delay
 * that reorders) on a simulated clock. Both send messages of mixed sizes,
 * up to many-fragment ones; every message must arrive exactly once, intact
 * and in order, on every seed and link profile, after which both blocks
 * must be idle (never due) and every pooled segment returned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcp/kcp.h"
#include "kite/error.h"
#include "sim_link.h"

#define MSGS_PER_SIDE 600
#define MAX_MSG (60 * 1376)
#define SIM_LIMIT_MS (20 * 60 * 1000)

typedef struct side {
  kite__kcp *kcp;
  sim_link *out;     /* datagrams this side sends */
  uint32_t sent;     /* messages queued so far */
  uint32_t received; /* messages verified so far */
  uint64_t rng;
} side;

typedef struct world {
  uint32_t now;
  kite__kcp_pool *pool;
  side s[2];
  uint8_t buf[MAX_MSG];
} world;

static void output(kite__kcp *kcp, const uint8_t *buf, size_t len, void *user) {
  (void)kcp;
  world *w = user;
  side *from = kcp == w->s[0].kcp ? &w->s[0] : &w->s[1];
  sim_link_send(from->out, buf, len, w->now);
}

static const kite__kcp_ops ops = {output, NULL};

/* Size of message |seq| sent by side |who|: mostly small, some large. */
static size_t msg_size(int who, uint32_t seq) {
  uint32_t x = (seq + 1) * 2654435761u ^ (uint32_t)who * 40503u;
  x ^= x >> 15;
  switch (x % 10) {
  case 0: return 8 + x % (MAX_MSG - 8);        /* up to 60 fragments */
  case 1: case 2: return 8 + x % 5000;         /* a few fragments */
  default: return 8 + x % 200;                 /* one segment */
  }
}

static uint8_t msg_byte(int who, uint32_t seq, size_t i) {
  return (uint8_t)(seq * 31 + (uint32_t)who * 17 + i * 7 + (i >> 8));
}

static void make_msg(uint8_t *buf, int who, uint32_t seq, size_t len) {
  memcpy(buf, &seq, 4);
  uint32_t l = (uint32_t)len;
  memcpy(buf + 4, &l, 4);
  for (size_t i = 8; i < len; i++)
    buf[i] = msg_byte(who, seq, i);
}

static void check_msg(const uint8_t *buf, int n, int who, uint32_t seq) {
  assert_true(n >= 8);
  uint32_t got_seq, got_len;
  memcpy(&got_seq, buf, 4);
  memcpy(&got_len, buf + 4, 4);
  assert_int_equal(got_seq, seq); /* exactly once, in order */
  assert_int_equal(got_len, (uint32_t)n);
  assert_int_equal((size_t)n, msg_size(who, seq));
  for (int i = 8; i < n; i++)
    if (buf[i] != msg_byte(who, seq, (size_t)i))
      fail_msg("message %u from side %d corrupt at byte %d", seq, who, i);
}

static void step_side(world *w, int me) {
  side *s = &w->s[me];
  side *peer = &w->s[1 - me];
  int n;
  while ((n = sim_link_recv(peer->out, w->now, w->buf, sizeof(w->buf))) >= 0)
    kite__kcp_input(s->kcp, w->buf, (size_t)n, w->now);
  while ((n = kite__kcp_recv(s->kcp, w->buf, sizeof(w->buf))) >= 0)
    check_msg(w->buf, n, 1 - me, s->received++);
  assert_int_equal(n, KITE_EAGAIN);
  while (s->sent < MSGS_PER_SIDE) {
    size_t len = msg_size(me, s->sent);
    make_msg(w->buf, me, s->sent, len);
    int rc = kite__kcp_send(s->kcp, w->buf, len);
    if (rc == KITE_EFULL)
      break;
    assert_int_equal(rc, 0);
    s->sent++;
  }
  uint32_t due;
  if (kite__kcp_next_due(s->kcp, w->now, &due) &&
      (int32_t)(due - w->now) <= 0)
    kite__kcp_flush(s->kcp, w->now);
}

static bool done(const world *w) {
  for (int i = 0; i < 2; i++)
    if (w->s[i].received < MSGS_PER_SIDE || kite__kcp_unacked(w->s[i].kcp))
      return false;
  return true;
}

/* The next instant anything can happen, so idle stretches cost nothing. */
static uint32_t next_event(const world *w) {
  uint32_t next = w->now + 1000, t;
  for (int i = 0; i < 2; i++) {
    if (sim_link_next(w->s[i].out, &t) && (int32_t)(t - next) < 0)
      next = t;
    if (kite__kcp_next_due(w->s[i].kcp, w->now, &t) && (int32_t)(t - next) < 0)
      next = t;
  }
  return (int32_t)(next - w->now) > 0 ? next : w->now + 1;
}

/* Runs both sides to the end; returns the simulated milliseconds taken. */
static uint32_t run(const sim_link_config *link, const kite__kcp_config *cfg,
                    uint32_t start) {
  world *w = calloc(1, sizeof(*w));
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  w->pool = kite__kcp_pool_create(&pc);
  w->now = start;
  for (int i = 0; i < 2; i++) {
    sim_link_config lc = *link;
    lc.seed = link->seed * 2 + (uint64_t)i;
    w->s[i].out = sim_link_create(&lc);
    assert_int_equal(kite__kcp_create(&w->s[i].kcp, 0x5EED, cfg, w->pool, &ops, w), 0);
  }
  uint32_t elapsed = 0;
  while (!done(w)) {
    step_side(w, 0);
    step_side(w, 1);
    uint32_t next = next_event(w);
    elapsed += next - w->now;
    w->now = next;
    if (elapsed > SIM_LIMIT_MS)
      fail_msg("seed %llu: stalled (a: %u/%u received, b: %u/%u)",
               (unsigned long long)link->seed, w->s[0].received,
               MSGS_PER_SIDE, w->s[1].received, MSGS_PER_SIDE);
  }
  /* Let the last acks land, then both must be idle and own nothing. */
  for (int i = 0; i < 50; i++) {
    step_side(w, 0);
    step_side(w, 1);
    w->now += 10;
  }
  for (int i = 0; i < 2; i++) {
    uint32_t due;
    assert_false(kite__kcp_next_due(w->s[i].kcp, w->now, &due));
    assert_false(kite__kcp_is_dead(w->s[i].kcp));
  }
  assert_int_equal(w->pool->stats.segs_used, 0);
  assert_int_equal(w->pool->stats.rings_used, 0);
  /* Nothing a conforming peer sends is ever refused. */
  const kite__kcp_pool_stats *ps = &w->pool->stats;
  assert_int_equal(ps->in_bad_len + ps->in_bad_cmd + ps->in_bad_frg +
                       ps->in_bad_conv + ps->in_bad_una + ps->in_bad_ack +
                       ps->in_no_buffer + ps->recv_bad_frg,
                   0);
  for (int i = 0; i < 2; i++) {
    kite__kcp_destroy(w->s[i].kcp);
    sim_link_destroy(w->s[i].out);
  }
  kite__kcp_pool_destroy(w->pool);
  free(w);
  return elapsed;
}

/* |seeds| runs, the n-th starting at |start| + n * |step_ms|; with |must_wrap| each
 * run's clock must pass 2^32 ms before the run ends. */
static void run_seeds_at(const sim_link_config *profile,
                         const kite__kcp_config *cfg, int seeds,
                         uint32_t start, uint32_t step_ms, bool must_wrap) {
  for (int seed = 1; seed <= seeds; seed++) {
    sim_link_config link = *profile;
    link.seed = (uint64_t)seed * 7919 + profile->seed;
    uint32_t at = start + (uint32_t)seed * step_ms;
    uint32_t elapsed = run(&link, cfg, at);
    if (must_wrap && (uint64_t)at + elapsed <= UINT32_MAX)
      fail_msg("seed %d: the run ended %u ms before the clock wrapped",
               seed, (uint32_t)(UINT32_MAX - at - elapsed));
  }
}

static void run_seeds(const sim_link_config *profile, const kite__kcp_config *cfg,
                      int seeds, uint32_t start) {
  run_seeds_at(profile, cfg, seeds, start, 1000, false);
}

static void lossless_link(void **state) {
  (void)state;
  kite__kcp_config cfg;
  kite__kcp_config_default(&cfg);
  sim_link_config link = {.seed = 1, .delay_ms = 5};
  run_seeds(&link, &cfg, 2, 0);
}

static void ten_percent_loss_with_dups_and_reordering(void **state) {
  (void)state;
  kite__kcp_config cfg;
  kite__kcp_config_default(&cfg);
  sim_link_config link = {.seed = 2, .loss = 0.10, .dup = 0.05,
                          .delay_ms = 20, .jitter_ms = 30};
  run_seeds(&link, &cfg, 16, 0);
}

static void thirty_percent_loss(void **state) {
  (void)state;
  kite__kcp_config cfg;
  kite__kcp_config_default(&cfg);
  sim_link_config link = {.seed = 3, .loss = 0.30, .dup = 0.10,
                          .delay_ms = 5, .jitter_ms = 60};
  run_seeds(&link, &cfg, 6, 0);
}

/* ikcp's conservative mode: congestion window on, normal rto, no fast resend. */
static void congestion_window_and_normal_mode(void **state) {
  (void)state;
  kite__kcp_config cfg;
  kite__kcp_config_default(&cfg);
  cfg.nocwnd = false;
  cfg.nodelay = 0;
  cfg.fast_resend = 0;
  cfg.interval_ms = 40;
  sim_link_config link = {.seed = 4, .loss = 0.05, .dup = 0.02,
                          .delay_ms = 30, .jitter_ms = 10};
  run_seeds(&link, &cfg, 4, 0);
}

/* Small windows and the clock wrapping in the middle of each run: every
 * run starts 0.5 to 2 s before 2^32 ms and must end after it (checked). */
static void small_windows_across_clock_wrap(void **state) {
  (void)state;
  kite__kcp_config cfg;
  kite__kcp_config_default(&cfg);
  cfg.snd_wnd = 64;
  cfg.rcv_wnd = 64;
  cfg.peer_rcv_wnd = 64;
  sim_link_config link = {.seed = 5, .loss = 0.10, .dup = 0.05,
                          .delay_ms = 10, .jitter_ms = 20};
  run_seeds_at(&link, &cfg, 4, UINT32_MAX - 2500, 500, true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lossless_link),
      cmocka_unit_test(ten_percent_loss_with_dups_and_reordering),
      cmocka_unit_test(thirty_percent_loss),
      cmocka_unit_test(congestion_window_and_normal_mode),
      cmocka_unit_test(small_windows_across_clock_wrap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
