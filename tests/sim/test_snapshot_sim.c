/*
 * Snapshots on the unreliable lane against the reliable stream
 * (PROTOCOL-v2.md section 6), on a seeded, simulated link: a server sends
 * a 200-byte snapshot of the world 20 times a second for 60 simulated
 * seconds, at 0%, 5% and 20% loss with jitter, and the client samples its
 * snapshot age (now minus the send time of the newest snapshot it has)
 * every 5 ms.
 *
 * The lane: each snapshot is an UNRELIABLE item, sequenced, alone in a
 * datagram; the receiver checks the items and keeps it only if the
 * sequence window (proto/v2seq.h) says it is newer. The stream: the same
 * snapshots through KCP with kite's defaults on both sides, delivered in
 * order, so one lost datagram holds back every newer one until it is
 * resent (head-of-line blocking). Sealing is left out: it changes no
 * timing here.
 *
 * The contract's claim checked: at 5% loss the lane's p99 age stays under
 * two snapshot periods plus the link's delay, where the stream's does not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "kcp/kcp.h"
#include "proto/v2item.h"
#include "proto/v2seq.h"
#include "sim_link.h"

#define PERIOD_MS 50     /* 20 Hz */
#define RUN_MS 60000
#define WARMUP_MS 2000   /* ages are sampled after this */
#define SAMPLE_MS 5
#define SNAP_LEN 200
#define DELAY_MS 30      /* one way */
#define JITTER_MS 10
#define SEEDS 5
#define MSG_SNAPSHOT 0x0010
#define MAX_UNRELIABLE 1364

enum { LANE, STREAM };

typedef struct ages {
  uint32_t *v;
  size_t n, cap;
} ages;

typedef struct world {
  uint32_t now;
  sim_link *down, *up; /* server to client, client to server */
  kite__kcp_pool *pool;
  kite__kcp *kcp[2];   /* stream: 0 client, 1 server */
  kite__v2seq seq;     /* lane: the client's window */
  uint16_t next_seq;
  bool have;           /* the client holds a snapshot */
  uint32_t newest_ts;  /* its send time */
  uint32_t delivered, dropped_stale;
} world;

static world *current;

static void output(kite__kcp *kcp, const uint8_t *buf, size_t len, void *u) {
  (void)u;
  sim_link_send(kcp == current->kcp[1] ? current->down : current->up, buf,
                len, current->now);
}

static const kite__kcp_ops ops = {output, NULL};

static void snapshot(uint8_t *m, uint32_t ts) {
  memset(m, 0xA5, SNAP_LEN);
  kite__put_le32(m, ts);
}

static void take(world *w, const uint8_t *body, size_t len) {
  assert_int_equal(len, SNAP_LEN);
  uint32_t ts = kite__get_le32(body);
  /* Both ways deliver only newer snapshots: the stream by its order, the
   * lane by its window. An older one here is a bug. */
  assert_true(!w->have || (int32_t)(ts - w->newest_ts) > 0);
  w->have = true;
  w->newest_ts = ts;
  w->delivered++;
}

static void send_snapshot(world *w, int mode) {
  uint8_t m[SNAP_LEN];
  snapshot(m, w->now);
  if (mode == STREAM) {
    assert_int_equal(kite__kcp_send(w->kcp[1], m, sizeof(m)), 0);
    return;
  }
  uint8_t dgram[KITE__V2ITEM_HDR + KITE__V2U_HDR + SNAP_LEN];
  int n = kite__v2item_put_unreliable(dgram, sizeof(dgram), MSG_SNAPSHOT,
                                      KITE__V2U_F_SEQ, w->next_seq++, m,
                                      sizeof(m), MAX_UNRELIABLE);
  assert_int_equal(n, (int)sizeof(dgram));
  sim_link_send(w->down, dgram, (size_t)n, w->now);
}

static void client_lane(world *w) {
  uint8_t buf[2048];
  int n;
  while ((n = sim_link_recv(w->down, w->now, buf, sizeof(buf))) >= 0) {
    kite__v2item_rules r = {.conv = 1, .max_unreliable = MAX_UNRELIABLE,
                            .from_server = true};
    kite__v2item_scan scan;
    assert_int_equal(kite__v2item_check(buf, (size_t)n, &r, &scan), 0);
    kite__v2item_iter it;
    kite__v2item item;
    kite__v2item_iter_init(&it, buf, scan.end, true);
    while (kite__v2item_next(&it, &item)) {
      assert_int_equal(item.type, KITE__V2ITEM_UNRELIABLE);
      if (kite__v2seq_accept(&w->seq, item.msg_id, item.seq))
        take(w, item.body, item.body_len);
      else
        w->dropped_stale++;
    }
  }
}

static void step_kcp(world *w, int me) {
  uint8_t buf[4096];
  int n;
  sim_link *in = me == 0 ? w->down : w->up;
  while ((n = sim_link_recv(in, w->now, buf, sizeof(buf))) >= 0)
    kite__kcp_input(w->kcp[me], buf, (size_t)n, w->now);
  while ((n = kite__kcp_recv(w->kcp[me], buf, sizeof(buf))) >= 0)
    if (me == 0)
      take(w, buf, (size_t)n);
  uint32_t due;
  if (kite__kcp_next_due(w->kcp[me], w->now, &due) &&
      (int32_t)(due - w->now) <= 0)
    kite__kcp_flush(w->kcp[me], w->now);
}

static void push(ages *a, uint32_t v) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 16384;
    a->v = realloc(a->v, a->cap * sizeof(*a->v));
    assert_non_null(a->v);
  }
  a->v[a->n++] = v;
}

/* One seed: the server sends, the client samples its age, 1 ms steps. */
static void run(int mode, double loss, uint64_t seed, ages *out) {
  world *w = calloc(1, sizeof(*w));
  assert_non_null(w);
  current = w;
  w->now = 1000;
  sim_link_config dc = {.seed = seed * 2, .loss = loss, .delay_ms = DELAY_MS,
                        .jitter_ms = JITTER_MS};
  sim_link_config uc = dc;
  uc.seed = seed * 2 + 1;
  w->down = sim_link_create(&dc);
  w->up = sim_link_create(&uc);
  assert_non_null(w->down);
  assert_non_null(w->up);
  kite__v2seq_init(&w->seq);
  if (mode == STREAM) {
    kite__kcp_pool_config pc;
    kite__kcp_pool_config_default(&pc);
    w->pool = kite__kcp_pool_create(&pc);
    assert_non_null(w->pool);
    kite__kcp_config kc;
    kite__kcp_config_default(&kc);
    for (int i = 0; i < 2; i++)
      assert_int_equal(kite__kcp_create(&w->kcp[i], 7, &kc, w->pool, &ops, w),
                       0);
  }
  uint32_t start = w->now, next_send = w->now;
  for (; w->now - start < RUN_MS; w->now++) {
    if (w->now == next_send) {
      send_snapshot(w, mode);
      next_send += PERIOD_MS;
    }
    if (mode == STREAM) {
      step_kcp(w, 1);
      step_kcp(w, 0);
    } else {
      client_lane(w);
    }
    if (w->now - start >= WARMUP_MS && (w->now - start) % SAMPLE_MS == 0) {
      assert_true(w->have); /* warm-up is long enough at any loss here */
      push(out, w->now - w->newest_ts);
    }
  }
  if (mode == STREAM)
    for (int i = 0; i < 2; i++)
      kite__kcp_destroy(w->kcp[i]);
  kite__kcp_pool_destroy(w->pool);
  sim_link_destroy(w->down);
  sim_link_destroy(w->up);
  free(w);
  current = NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct pct {
  uint32_t p50, p99, max;
} pct;

static pct measure(int mode, double loss) {
  ages a = {0};
  for (uint64_t s = 1; s <= SEEDS; s++)
    run(mode, loss, s * 7919u + (uint64_t)(loss * 1000), &a);
  qsort(a.v, a.n, sizeof(*a.v), cmp_u32);
  pct p = {a.v[a.n / 2], a.v[a.n * 99 / 100], a.v[a.n - 1]};
  free(a.v);
  return p;
}

/* Two snapshot periods plus the link's delay at its worst. */
#define BOUND_MS (2 * PERIOD_MS + DELAY_MS + JITTER_MS)

static void lane_beats_stream_under_loss(void **state) {
  (void)state;
  static const double loss[] = {0.0, 0.05, 0.20};
  pct lane[3], stream[3];
  print_message("snapshot age, ms (20 Hz, %d B, %d ms +0..%d ms one way, "
                "%d seeds x %d s)\n",
                SNAP_LEN, DELAY_MS, JITTER_MS, SEEDS, RUN_MS / 1000);
  print_message("loss   lane p50/p99/max   stream p50/p99/max\n");
  for (int i = 0; i < 3; i++) {
    lane[i] = measure(LANE, loss[i]);
    stream[i] = measure(STREAM, loss[i]);
    print_message("%3.0f%%   %4u/%4u/%4u     %4u/%4u/%4u\n", loss[i] * 100,
                  lane[i].p50, lane[i].p99, lane[i].max, stream[i].p50,
                  stream[i].p99, stream[i].max);
  }
  /* No loss: both are the link's delay plus up to one period. */
  assert_true(lane[0].p99 < BOUND_MS);
  assert_true(stream[0].p99 < BOUND_MS);
  /* 5%: the lane holds the bound, the stream does not. */
  assert_true(lane[1].p99 < BOUND_MS);
  assert_true(stream[1].p99 >= BOUND_MS);
  /* 20%: the lane still ages less than the stream, at p99 and worst. */
  assert_true(lane[2].p99 < stream[2].p99);
  assert_true(lane[2].max < stream[2].max);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lane_beats_stream_under_loss),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
