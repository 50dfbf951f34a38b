/* A session's mailbox (src/logic/mailbox.c): it refuses at its depth
 * (cfg.mailbox_depth, fixed with the ring until cleared) or max_bytes (but always takes one message
 * into an empty box), hands messages back in order with their bytes intact,
 * keeps the byte count exact down to 0, sets and clears flags atomically,
 * and clear frees what is left (ASan's leak check). The threaded test runs
 * one producer against one consumer, as shard and executor do, and is run
 * under TSan as well (label threaded). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>

#include "logic/mailbox.h"

#define BIG (1u << 30) /* a byte limit that never bites */
#define DEPTH 32       /* messages at most (cfg.mailbox_depth) */

/* Outside the tests' frames, so the teardown frees what a failed
 * assertion (a longjmp) left and leak reports point only at real leaks. */
static kite__mailbox box;

static int setup(void **state) {
  (void)state;
  kite__mailbox_init(&box);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  kite__mailbox_clear(&box);
  return 0;
}

static uint32_t bytes_of(kite__mailbox *mb) {
  return atomic_load(&mb->bytes);
}

/* A body that names its sequence number in every byte position. */
static void fill(uint8_t *b, uint32_t len, uint32_t seq) {
  for (uint32_t i = 0; i < len; i++)
    b[i] = (uint8_t)(seq * 31 + i);
}

static bool body_ok(const kite__msg *m, uint32_t seq) {
  for (uint32_t i = 0; i < m->len; i++)
    if (m->data[i] != (uint8_t)(seq * 31 + i))
      return false;
  return true;
}

static void slots_limit_refuses(void **state) {
  (void)state;
  kite__mailbox *mb = &box;
  assert_true(kite__mailbox_empty(mb));
  assert_null(kite__mailbox_peek(mb));
  assert_null(mb->ring); /* idle sessions cost no ring */
  uint8_t body[4] = {1, 2, 3, 4};
  for (int i = 0; i < DEPTH; i++)
    assert_true(kite__mailbox_push(mb, (uint16_t)i, body, 4, DEPTH, BIG));
  assert_false(kite__mailbox_push(mb, 999, body, 4, DEPTH, BIG));
  assert_false(kite__mailbox_push(mb, 999, body, 0, DEPTH, BIG));
  assert_int_equal(bytes_of(mb), 4 * DEPTH);
  /* One consumed makes room for exactly one, which lands last. */
  kite__msg *m = kite__mailbox_peek(mb);
  assert_int_equal(m->msg_id, 0);
  kite__mailbox_done(mb, m);
  assert_true(kite__mailbox_push(mb, 1000, body, 4, DEPTH, BIG));
  assert_false(kite__mailbox_push(mb, 1001, body, 4, DEPTH, BIG));
  for (int i = 1; i < DEPTH; i++) {
    m = kite__mailbox_peek(mb);
    assert_int_equal(m->msg_id, i);
    kite__mailbox_done(mb, m);
  }
  m = kite__mailbox_peek(mb);
  assert_int_equal(m->msg_id, 1000);
  kite__mailbox_done(mb, m);
  assert_true(kite__mailbox_empty(mb));
  assert_int_equal(bytes_of(mb), 0);
}

/* The depth is the caller's (cfg.mailbox_depth): a burst of 50 fits the
 * default 256 and not a depth of 8; the ring keeps its depth until it is
 * cleared, and then takes a new one. */
static void depth_is_configured(void **state) {
  (void)state;
  kite__mailbox *mb = &box;
  uint8_t body[8] = {0};
  for (int i = 0; i < 50; i++)
    assert_true(kite__mailbox_push(mb, 1, body, 8, 256, BIG));
  assert_int_equal(mb->depth, 256);
  assert_true(kite__mailbox_push(mb, 1, body, 8, 8, BIG)); /* still 256 */
  kite__mailbox_clear(mb);
  int taken = 0;
  while (taken < 50 && kite__mailbox_push(mb, 1, body, 8, 8, BIG))
    taken++;
  assert_int_equal(taken, 8);
  assert_int_equal(mb->depth, 8);
  /* Wraps many times at the small depth, in order. */
  for (uint32_t seq = 0; seq < 1000; seq++) {
    kite__msg *m = kite__mailbox_peek(mb);
    assert_non_null(m);
    kite__mailbox_done(mb, m);
    memcpy(body, &seq, 4);
    assert_true(kite__mailbox_push(mb, (uint16_t)seq, body, 8, 8, BIG));
    assert_false(kite__mailbox_push(mb, 0, body, 8, 8, BIG));
  }
  for (uint32_t seq = 1000 - 8; seq < 1000; seq++) {
    kite__msg *m = kite__mailbox_peek(mb);
    assert_int_equal(m->msg_id, (uint16_t)seq);
    kite__mailbox_done(mb, m);
  }
  assert_true(kite__mailbox_empty(mb));
}

static void byte_limit_refuses(void **state) {
  (void)state;
  kite__mailbox *mb = &box;
  uint8_t body[600];
  fill(body, sizeof(body), 0);
  assert_true(kite__mailbox_push(mb, 1, body, 60, DEPTH, 100));
  assert_true(kite__mailbox_push(mb, 2, body, 40, DEPTH, 100)); /* exactly full */
  assert_false(kite__mailbox_push(mb, 3, body, 1, DEPTH, 100));
  assert_int_equal(bytes_of(mb), 100);
  kite__msg *m = kite__mailbox_peek(mb);
  kite__mailbox_done(mb, m); /* consuming gives its bytes back: 40 left */
  assert_true(kite__mailbox_push(mb, 4, body, 60, DEPTH, 100));
  assert_false(kite__mailbox_push(mb, 5, body, 1, DEPTH, 100));
  /* The limit is on bytes waiting, so an empty body still fits at it; and
   * an empty body may be NULL (an empty reply): UBSan checks no copy. */
  assert_true(kite__mailbox_push(mb, 5, body, 0, DEPTH, 100));
  assert_true(kite__mailbox_push(mb, 6, NULL, 0, DEPTH, 100));
  static const struct { uint16_t id; uint32_t len; } want[] = {
      {2, 40}, {4, 60}, {5, 0}, {6, 0}};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    m = kite__mailbox_peek(mb);
    assert_non_null(m);
    assert_int_equal(m->msg_id, want[i].id);
    assert_int_equal(m->len, want[i].len);
    kite__mailbox_done(mb, m);
  }
  assert_null(kite__mailbox_peek(mb));
  assert_int_equal(bytes_of(mb), 0);
  /* One message always fits an empty box, whatever its size, so a large
   * frame cannot wedge the session; then nothing more until it drains. */
  assert_true(kite__mailbox_push(mb, 6, body, 600, DEPTH, 100));
  assert_int_equal(bytes_of(mb), 600);
  assert_false(kite__mailbox_push(mb, 7, body, 0, DEPTH, 100));
  m = kite__mailbox_peek(mb);
  assert_int_equal(m->len, 600);
  assert_true(body_ok(m, 0));
  kite__mailbox_done(mb, m);
  assert_int_equal(bytes_of(mb), 0);
  assert_true(kite__mailbox_push(mb, 8, body, 10, DEPTH, 100));
}

static void fifo_with_peek_and_done(void **state) {
  (void)state;
  kite__mailbox *mb = &box;
  uint8_t body[64];
  /* Many laps of the ring, never more than 5 waiting: order, contents and
   * the byte count hold across the wrap. */
  uint32_t pushed = 0, popped = 0, expect_bytes = 0;
  for (int round = 0; round < 1000; round++) {
    for (int k = 0; k < 1 + round % 5; k++) {
      uint32_t len = pushed % 65;
      fill(body, len, pushed);
      assert_true(kite__mailbox_push(mb, (uint16_t)pushed, body, len, DEPTH, BIG));
      pushed++;
      expect_bytes += len;
      assert_int_equal(bytes_of(mb), expect_bytes);
    }
    /* The source buffer is reused: the mailbox must have copied it. */
    memset(body, 0xEE, sizeof(body));
    kite__msg *m;
    while ((m = kite__mailbox_peek(mb))) {
      assert_ptr_equal(kite__mailbox_peek(mb), m); /* peek does not take */
      assert_int_equal(m->msg_id, (uint16_t)popped);
      assert_int_equal(m->len, popped % 65);
      assert_true(body_ok(m, popped));
      expect_bytes -= m->len;
      kite__mailbox_done(mb, m);
      popped++;
      assert_int_equal(bytes_of(mb), expect_bytes);
    }
    assert_true(kite__mailbox_empty(mb));
  }
  assert_int_equal(popped, pushed);
  assert_int_equal(bytes_of(mb), 0);
}

static void flags_set_and_clear(void **state) {
  (void)state;
  kite__mailbox *mb = &box;
  assert_int_equal(kite__mailbox_flags(mb), 0);
  /* set/clr return the old flags: the SCHEDULED test-and-set relies on it. */
  assert_int_equal(kite__mailbox_set(mb, KITE__MB_SCHEDULED), 0);
  assert_int_equal(kite__mailbox_set(mb, KITE__MB_SCHEDULED),
                   KITE__MB_SCHEDULED);
  assert_int_equal(kite__mailbox_set(mb, KITE__MB_CONNECT | KITE__MB_BLOCKED),
                   KITE__MB_SCHEDULED);
  assert_int_equal(kite__mailbox_flags(mb),
                   KITE__MB_SCHEDULED | KITE__MB_CONNECT | KITE__MB_BLOCKED);
  assert_int_equal(kite__mailbox_clr(mb, KITE__MB_CONNECT),
                   KITE__MB_SCHEDULED | KITE__MB_CONNECT | KITE__MB_BLOCKED);
  assert_int_equal(kite__mailbox_clr(mb, KITE__MB_CONNECT),
                   KITE__MB_SCHEDULED | KITE__MB_BLOCKED);
  /* Messages and flags do not disturb each other. */
  uint8_t b = 7;
  assert_true(kite__mailbox_push(mb, 1, &b, 1, DEPTH, BIG));
  kite__mailbox_set(mb, KITE__MB_DISCONNECT | KITE__MB_NOTICE | KITE__MB_DONE);
  assert_int_equal(kite__mailbox_peek(mb)->msg_id, 1);
  kite__mailbox_clr(mb, KITE__MB_SCHEDULED | KITE__MB_BLOCKED);
  assert_int_equal(kite__mailbox_flags(mb),
                   KITE__MB_DISCONNECT | KITE__MB_NOTICE | KITE__MB_DONE);
  assert_false(kite__mailbox_empty(mb));
  kite__mailbox_clear(mb);
  assert_int_equal(kite__mailbox_flags(mb),
                   KITE__MB_DISCONNECT | KITE__MB_NOTICE | KITE__MB_DONE);
}

static void clear_frees_leftovers(void **state) {
  (void)state;
  kite__mailbox *mb = &box;
  kite__mailbox_clear(mb); /* never used: no ring to free */
  uint8_t body[100];
  fill(body, sizeof(body), 3);
  for (int i = 0; i < 10; i++)
    assert_true(kite__mailbox_push(mb, (uint16_t)i, body, 100, DEPTH, BIG));
  kite__msg *m = kite__mailbox_peek(mb);
  kite__mailbox_done(mb, m);
  /* Nine messages and the ring left: ASan fails the run if any leaks. */
  kite__mailbox_clear(mb);
  assert_null(mb->ring);
  assert_true(kite__mailbox_empty(mb));
  assert_null(kite__mailbox_peek(mb));
  assert_int_equal(bytes_of(mb), 0);
  /* A cleared mailbox is usable again (a recycled session slot). */
  assert_true(kite__mailbox_push(mb, 42, body, 100, DEPTH, BIG));
  m = kite__mailbox_peek(mb);
  assert_int_equal(m->msg_id, 42);
  assert_true(body_ok(m, 3));
  kite__mailbox_clear(mb);
  assert_null(mb->ring);
}

/* ---- one producer thread, one consumer thread ---- */

#define MESSAGES 200000u
#define MAX_BYTES 512u


typedef struct result {
  uint32_t got;       /* messages taken in order */
  uint32_t bad_at;    /* first out-of-order or corrupt one, or MESSAGES */
} result;

static void *produce(void *arg) {
  (void)arg;
  uint8_t body[48];
  for (uint32_t seq = 0; seq < MESSAGES; seq++) {
    uint32_t len = 4 + seq % 45;
    fill(body, len, seq);
    memcpy(body, &seq, 4);
    /* Refused: backpressure, as the shard would stop reading. */
    while (!kite__mailbox_push(&box, (uint16_t)seq, body, len, DEPTH, MAX_BYTES))
      sched_yield();
  }
  return NULL;
}

static void *consume(void *arg) {
  result *r = arg;
  r->bad_at = MESSAGES;
  while (r->got < MESSAGES) {
    kite__msg *m = kite__mailbox_peek(&box);
    if (!m) {
      sched_yield();
      continue;
    }
    uint32_t seq;
    memcpy(&seq, m->data, 4);
    uint32_t want = r->got;
    bool ok = m->len == 4 + want % 45 && seq == want &&
              m->msg_id == (uint16_t)want;
    for (uint32_t i = 4; ok && i < m->len; i++)
      ok = m->data[i] == (uint8_t)(want * 31 + i);
    if (!ok && r->bad_at == MESSAGES)
      r->bad_at = want;
    kite__mailbox_done(&box, m);
    r->got++;
  }
  return NULL;
}

static void producer_and_consumer_threads(void **state) {
  (void)state;
  result r = {0};
  pthread_t p, c;
  assert_int_equal(pthread_create(&c, NULL, consume, &r), 0);
  assert_int_equal(pthread_create(&p, NULL, produce, NULL), 0);
  assert_int_equal(pthread_join(p, NULL), 0);
  assert_int_equal(pthread_join(c, NULL), 0);
  assert_int_equal(r.got, MESSAGES);
  assert_int_equal(r.bad_at, MESSAGES); /* every one in order and intact */
  assert_true(kite__mailbox_empty(&box));
  assert_int_equal(bytes_of(&box), 0);
  assert_int_equal(atomic_load(&box.head), MESSAGES);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(slots_limit_refuses),
      T(depth_is_configured),
      T(byte_limit_refuses),
      T(fifo_with_peek_and_done),
      T(flags_set_and_clear),
      T(clear_frees_leftovers),
      T(producer_and_consumer_threads),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
