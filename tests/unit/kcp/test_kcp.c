/* The engine's contract: send/recv, windows, timers, next_due, dead link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kcp_capture.h"

typedef struct pair {
  kite__kcp_pool *pool;
  kite__kcp *a, *b;
  capture ca, cb; /* what a and b sent */
  uint32_t now;
} pair;

static pair *pair_new(const kite__kcp_config *cfg) {
  pair *p = calloc(1, sizeof(*p));
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  p->pool = kite__kcp_pool_create(&pc);
  assert_non_null(p->pool);
  kite__kcp_config c;
  kite__kcp_config_default(&c);
  if (cfg)
    c = *cfg;
  assert_int_equal(kite__kcp_create(&p->a, 7, &c, p->pool, &capture_ops, &p->ca), 0);
  assert_int_equal(kite__kcp_create(&p->b, 7, &c, p->pool, &capture_ops, &p->cb), 0);
  p->now = 1000;
  return p;
}

static void pair_free(pair *p) {
  kite__kcp_destroy(p->a);
  kite__kcp_destroy(p->b);
  capture_clear(&p->ca);
  capture_clear(&p->cb);
  assert_int_equal(p->pool->stats.segs_used, 0); /* nothing leaked */
  assert_int_equal(p->pool->stats.rings_used, 0);
  kite__kcp_pool_destroy(p->pool);
  free(p);
}

/* One round: both flush, each side's output reaches the other. */
static void pair_round(pair *p) {
  kite__kcp_flush(p->a, p->now);
  kite__kcp_flush(p->b, p->now);
  capture_deliver(&p->ca, p->b, p->now);
  capture_deliver(&p->cb, p->a, p->now);
}

static void fill(uint8_t *buf, size_t len, uint32_t seed) {
  for (size_t i = 0; i < len; i++)
    buf[i] = (uint8_t)(seed * 131 + i * 7);
}

static void invalid_configs_are_refused(void **state) {
  (void)state;
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  kite__kcp_pool *pool = kite__kcp_pool_create(&pc);
  capture c = {0};
  kite__kcp_config good, bad;
  kite__kcp_config_default(&good);
  kite__kcp *k = NULL;
#define REFUSED(field, value)                                                \
  bad = good;                                                                \
  bad.field = value;                                                         \
  assert_int_equal(kite__kcp_create(&k, 1, &bad, pool, &capture_ops, &c),    \
                   KITE_EINVAL);                                             \
  assert_null(k);
  REFUSED(mtu, 49);
  REFUSED(mtu, pc.mtu + 1);
  REFUSED(snd_wnd, 0);
  REFUSED(rcv_wnd, pc.wnd_max + 1);
  REFUSED(peer_rcv_wnd, 0);
  REFUSED(interval_ms, 0);
  REFUSED(nodelay, 3);
  REFUSED(dead_link_ms, 0);
  REFUSED(snd_queue_max, 0);
  REFUSED(snd_queue_max, 70000);
#undef REFUSED
  kite__kcp_ops no_output = {NULL, NULL};
  assert_int_equal(kite__kcp_create(&k, 1, &good, pool, &no_output, &c), KITE_EINVAL);
  assert_int_equal(kite__kcp_create(&k, 1, &good, pool, &capture_ops, &c), 0);
  kite__kcp_destroy(k);
  kite__kcp_pool_destroy(pool);
}

static void messages_of_every_size_arrive_whole(void **state) {
  (void)state;
  pair *p = pair_new(NULL);
  size_t mss = 1400 - KITE_KCP_OVERHEAD;
  size_t sizes[] = {1, 63, mss - 1, mss, mss + 1, 3 * mss, 50 * mss + 7,
                    127 * mss};
  static uint8_t out[127 * 1376], in[127 * 1376];
  for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
    fill(out, sizes[s], (uint32_t)s);
    assert_int_equal(kite__kcp_send(p->a, out, sizes[s]), 0);
    int got = KITE_EAGAIN;
    for (int round = 0; round < 10 && got == KITE_EAGAIN; round++) {
      pair_round(p);
      got = kite__kcp_recv(p->b, in, sizeof(in));
      p->now += 10;
    }
    assert_int_equal(got, (int)sizes[s]);
    assert_memory_equal(in, out, sizes[s]);
  }
  pair_round(p); /* the last acks */
  assert_int_equal(kite__kcp_unacked(p->a), 0);
  pair_free(p);
}

static void send_refusals_leave_nothing_queued(void **state) {
  (void)state;
  kite__kcp_config c;
  kite__kcp_config_default(&c);
  c.peer_rcv_wnd = 32; /* a peer with a smaller window takes fewer frags */
  c.snd_queue_max = 40;
  pair *p = pair_new(&c);
  static uint8_t big[128 * 1376];
  size_t mss = 1400 - KITE_KCP_OVERHEAD;
  assert_int_equal(kite__kcp_send(p->a, big, 0), KITE_EINVAL);
  assert_int_equal(kite__kcp_send(p->a, big, 32 * mss + 1), KITE_EMSGSIZE);
  assert_int_equal(kite__kcp_send(p->a, big, 32 * mss), 0);
  assert_int_equal(kite__kcp_send(p->a, big, 9 * mss), KITE_EFULL);
  assert_int_equal(kite__kcp_unacked(p->a), 32);
  assert_int_equal(kite__kcp_send(p->a, big, 8 * mss), 0);
  assert_int_equal(kite__kcp_unacked(p->a), 40);
  pair_free(p);

  /* The 127-fragment ceiling holds even when the peer's window is larger. */
  c.peer_rcv_wnd = 256;
  c.snd_queue_max = 300;
  p = pair_new(&c);
  assert_int_equal(kite__kcp_send(p->a, big, 127 * mss + 1), KITE_EMSGSIZE);
  assert_int_equal(kite__kcp_send(p->a, big, 127 * mss), 0);
  pair_free(p);
}

static void recv_with_a_small_buffer_consumes_nothing(void **state) {
  (void)state;
  pair *p = pair_new(NULL);
  uint8_t msg[3000], in[3000];
  fill(msg, sizeof(msg), 9);
  assert_int_equal(kite__kcp_peeksize(p->b), KITE_EAGAIN);
  assert_int_equal(kite__kcp_recv(p->b, in, sizeof(in)), KITE_EAGAIN);
  assert_int_equal(kite__kcp_send(p->a, msg, sizeof(msg)), 0);
  pair_round(p);
  assert_int_equal(kite__kcp_peeksize(p->b), 3000);
  assert_int_equal(kite__kcp_recv(p->b, in, 2999), KITE_EMSGSIZE);
  assert_int_equal(kite__kcp_recv(p->b, in, sizeof(in)), 3000);
  assert_memory_equal(in, msg, sizeof(msg));
  pair_round(p);
  pair_free(p);
}

/* An idle block asks for no wake-up at all; ikcp's would every interval. */
static void idle_blocks_are_never_due(void **state) {
  (void)state;
  pair *p = pair_new(NULL);
  uint32_t due;
  assert_false(kite__kcp_next_due(p->a, p->now, &due));
  uint8_t msg[100] = {0};
  assert_int_equal(kite__kcp_send(p->a, msg, sizeof(msg)), 0);
  assert_true(kite__kcp_next_due(p->a, p->now, &due));
  assert_int_equal(due, p->now); /* new data: flush now */
  kite__kcp_flush(p->a, p->now);
  assert_true(kite__kcp_next_due(p->a, p->now, &due));
  assert_true((int32_t)(due - p->now) > 0); /* in flight: the rto */
  capture_deliver(&p->ca, p->b, p->now);
  assert_true(kite__kcp_next_due(p->b, p->now, &due)); /* b owes an ack */
  assert_int_equal(due, p->now);
  kite__kcp_flush(p->b, p->now);
  assert_false(kite__kcp_next_due(p->b, p->now, &due));
  capture_deliver(&p->cb, p->a, p->now + 5);
  /* Acknowledged: a is idle again, and holds no ring. */
  assert_false(kite__kcp_next_due(p->a, p->now + 5, &due));
  kite__kcp_flush(p->a, p->now + 5);
  assert_false(kite__kcp_next_due(p->a, p->now + 5, &due));
  assert_int_equal(p->pool->stats.rings_used, 0);
  /* b holds the message, not yet read: it costs segments but no wake-ups. */
  assert_int_equal(p->pool->stats.segs_used, 1);
  assert_true(kite__kcp_sizeof() <= 256);
  uint8_t in[100];
  assert_int_equal(kite__kcp_recv(p->b, in, sizeof(in)), 100);
  pair_free(p);
}

static void lost_segment_is_resent_at_its_rto(void **state) {
  (void)state;
  pair *p = pair_new(NULL);
  uint8_t msg[10] = {1};
  kite__kcp_send(p->a, msg, sizeof(msg));
  kite__kcp_flush(p->a, p->now);
  assert_int_equal(capture_count(&p->ca, KITE_KCP_CMD_PUSH), 1);
  capture_clear(&p->ca); /* lost */
  uint32_t due;
  assert_true(kite__kcp_next_due(p->a, p->now, &due));
  kite__kcp_flush(p->a, due - 1);
  assert_int_equal(p->ca.n, 0); /* not before its time */
  kite__kcp_flush(p->a, due);
  assert_int_equal(capture_count(&p->ca, KITE_KCP_CMD_PUSH), 1);
  kite__kcp_stats st;
  kite__kcp_get_stats(p->a, &st);
  assert_int_equal(st.retransmits, 1);
  /* The next wait is longer: backoff. */
  uint32_t due2;
  assert_true(kite__kcp_next_due(p->a, due, &due2));
  assert_true((int32_t)(due2 - due) > (int32_t)(due - p->now));
  capture_deliver(&p->ca, p->b, due);
  kite__kcp_flush(p->b, due);
  capture_deliver(&p->cb, p->a, due);
  assert_int_equal(kite__kcp_unacked(p->a), 0);
  uint8_t in[10];
  assert_int_equal(kite__kcp_recv(p->b, in, sizeof(in)), 10);
  pair_free(p);
}

static void later_acks_trigger_fast_resend(void **state) {
  (void)state;
  pair *p = pair_new(NULL);
  uint8_t msg[1376];
  for (int i = 0; i < 4; i++)
    assert_int_equal(kite__kcp_send(p->a, msg, sizeof(msg)), 0);
  kite__kcp_flush(p->a, p->now);
  assert_int_equal(p->ca.n, 4); /* one full segment per datagram */
  free(p->ca.buf[0]);           /* sn 0 is lost */
  p->ca.len[0] = 0;
  p->ca.buf[0] = NULL;
  for (size_t i = 1; i < p->ca.n; i++) {
    kite__kcp_input(p->b, p->ca.buf[i], p->ca.len[i], p->now + 1);
    kite__kcp_flush(p->b, p->now + 1); /* one ack datagram each */
  }
  capture_clear(&p->ca);
  capture_deliver(&p->cb, p->a, p->now + 2);
  uint32_t due;
  assert_true(kite__kcp_next_due(p->a, p->now + 2, &due));
  assert_int_equal(due, p->now + 2); /* well before the rto */
  kite__kcp_flush(p->a, p->now + 2);
  assert_int_equal(capture_count(&p->ca, KITE_KCP_CMD_PUSH), 1);
  kite__kcp_stats st;
  kite__kcp_get_stats(p->a, &st);
  assert_int_equal(st.fast_retransmits, 1);
  assert_int_equal(st.retransmits, 0);
  capture_deliver(&p->ca, p->b, p->now + 3);
  uint8_t in[1376];
  for (int i = 0; i < 4; i++)
    assert_int_equal(kite__kcp_recv(p->b, in, sizeof(in)), 1376);
  pair_round(p);
  pair_free(p);
}

static void rtt_is_estimated_from_acks(void **state) {
  (void)state;
  pair *p = pair_new(NULL);
  uint8_t msg[8] = {0}, in[8];
  for (int i = 0; i < 20; i++) {
    kite__kcp_send(p->a, msg, sizeof(msg));
    kite__kcp_flush(p->a, p->now);
    capture_deliver(&p->ca, p->b, p->now + 20);
    kite__kcp_flush(p->b, p->now + 20);
    capture_deliver(&p->cb, p->a, p->now + 40); /* 40 ms round trip */
    kite__kcp_recv(p->b, in, sizeof(in));
    p->now += 100;
  }
  kite__kcp_stats st;
  kite__kcp_get_stats(p->a, &st);
  assert_int_equal(st.srtt_ms, 40);
  assert_true(st.rto_ms >= 40 && st.rto_ms <= 60);
  assert_int_equal(st.segs_sent, 20);
  assert_int_equal(st.bytes_sent, 160);
  pair_free(p);
}

/* A peer that never answers kills the link after dead_link_ms, not before,
 * and the owner hears it exactly once. */
static void silence_is_a_dead_link_reported_once(void **state) {
  (void)state;
  kite__kcp_config c;
  kite__kcp_config_default(&c);
  c.dead_link_ms = 5000;
  pair *p = pair_new(&c);
  uint8_t msg[10] = {0};
  kite__kcp_send(p->a, msg, sizeof(msg));
  uint32_t start = p->now, due;
  int wakeups = 0;
  while (kite__kcp_next_due(p->a, p->now, &due)) {
    p->now = due;
    kite__kcp_flush(p->a, p->now);
    capture_clear(&p->ca);
    wakeups++;
    assert_true(wakeups < 1000);
  }
  assert_true(kite__kcp_is_dead(p->a));
  assert_int_equal(p->ca.dead_calls, 1);
  assert_int_equal(p->now - start, 5000);
  assert_int_equal(kite__kcp_send(p->a, msg, sizeof(msg)), KITE_EDEAD);
  kite__kcp_flush(p->a, p->now + 100000);
  assert_int_equal(p->ca.dead_calls, 1);
  assert_int_equal(p->ca.n, 0);
  pair_free(p);
}

/* Through an outage and after it, a segment is retried often enough that a
 * lossy but live link gets many tries before dead_link_ms: in nodelay mode
 * the wait grows by half the rto per try (kcp-go), not 1.5x, and in every
 * mode it stays under dead_link_ms / 8. */
static void backoff_keeps_trying_within_the_dead_link_span(void **state) {
  (void)state;
  for (uint32_t nodelay = 0; nodelay <= 2; nodelay++) {
    kite__kcp_config c;
    kite__kcp_config_default(&c);
    c.nodelay = nodelay;
    pair *p = pair_new(&c);
    uint8_t msg[10] = {0}, in[10];
    for (int i = 0; i < 10; i++) { /* a 10 ms round trip, then silence */
      kite__kcp_send(p->a, msg, sizeof(msg));
      kite__kcp_flush(p->a, p->now);
      capture_deliver(&p->ca, p->b, p->now + 5);
      kite__kcp_flush(p->b, p->now + 5);
      capture_deliver(&p->cb, p->a, p->now + 10);
      assert_int_equal(kite__kcp_recv(p->b, in, sizeof(in)), 10);
      p->now += 100;
    }
    kite__kcp_flush(p->a, p->now); /* idle: the dead-link clock stops */
    kite__kcp_send(p->a, msg, sizeof(msg));
    uint32_t start = p->now, last = p->now, due, longest = 0;
    int tries = 0;
    while (kite__kcp_next_due(p->a, p->now, &due)) {
      p->now = due;
      kite__kcp_flush(p->a, p->now);
      if (capture_count(&p->ca, KITE_KCP_CMD_PUSH) > 0) {
        if (tries > 0 && p->now - last > longest)
          longest = p->now - last;
        last = p->now;
        tries++;
      }
      capture_clear(&p->ca); /* the peer never hears it */
    }
    assert_true(kite__kcp_is_dead(p->a));
    assert_int_equal(p->now - start, 15000);
    assert_true(longest <= 15000 / 8);
    /* From the 30 ms floor a 1.5x backoff tries 14 times in 15 s (4 of
     * them after the first 3 s), kcp-go's rule 43 times (20 after 3 s);
     * doubling from 100 ms, 8 times uncapped and 12 capped. */
    if (nodelay)
      assert_true(tries >= 30);
    else
      assert_true(tries >= 10);
    pair_free(p);
  }
}

/* Progress restarts the dead-link clock: a slow but live peer survives. */
static void slow_progress_is_not_death(void **state) {
  (void)state;
  kite__kcp_config c;
  kite__kcp_config_default(&c);
  c.dead_link_ms = 3000;
  pair *p = pair_new(&c);
  uint8_t msg[10] = {0}, in[10];
  for (int i = 0; i < 10; i++) { /* each message acked after 2 s */
    kite__kcp_send(p->a, msg, sizeof(msg));
    kite__kcp_flush(p->a, p->now);
    capture_clear(&p->ca);
    p->now += 2000;
    kite__kcp_flush(p->a, p->now); /* a retransmission gets through */
    capture_deliver(&p->ca, p->b, p->now);
    kite__kcp_flush(p->b, p->now);
    capture_deliver(&p->cb, p->a, p->now);
    assert_int_equal(kite__kcp_recv(p->b, in, sizeof(in)), 10);
    assert_false(kite__kcp_is_dead(p->a));
  }
  assert_int_equal(p->ca.dead_calls, 0);
  pair_free(p);
}

/* The 32-bit clock wraps every 49.7 days; nothing may notice. */
static void clock_wrap_is_harmless(void **state) {
  (void)state;
  pair *p = pair_new(NULL);
  p->now = UINT32_MAX - 500;
  uint8_t msg[2000], in[2000];
  fill(msg, sizeof(msg), 3);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(kite__kcp_send(p->a, msg, sizeof(msg)), 0);
    pair_round(p);
    assert_int_equal(kite__kcp_recv(p->b, in, sizeof(in)), 2000);
    assert_memory_equal(in, msg, sizeof(msg));
    p->now += 10;
  }
  pair_round(p);
  uint32_t due;
  assert_false(kite__kcp_next_due(p->a, p->now, &due));
  assert_false(kite__kcp_is_dead(p->a));
  pair_free(p);
}

/* Gathered sends split into messages at the fragment limit, and the
 * receiver sees the bytes in order whichever way it reads. */
static void sendv_splits_and_stream_reads_join(void **state) {
  (void)state;
  kite__kcp_config c;
  kite__kcp_config_default(&c);
  c.snd_queue_max = 400;
  pair *p = pair_new(&c);
  size_t mss = 1400 - KITE_KCP_OVERHEAD;
  size_t total = 300 * mss - 5; /* 300 segments: messages of 127, 127, 46 */
  uint8_t *data = malloc(total), *in = malloc(total);
  fill(data, total, 77);
  struct iovec iov[3] = {{data, 12}, {data + 12, 5000}, {data + 5012, total - 5012}};
  assert_int_equal(kite__kcp_sendv(p->a, iov, 3), 0);
  assert_int_equal(kite__kcp_unacked(p->a), 300);
  size_t got = 0;
  int msgs = 0;
  for (int round = 0; round < 50 && got < total; round++) {
    pair_round(p);
    int n;
    while ((n = kite__kcp_recv(p->b, in + got, total - got)) > 0) {
      got += (size_t)n;
      msgs++;
    }
    p->now += 10;
  }
  assert_int_equal(got, total);
  assert_int_equal(msgs, 3);
  assert_memory_equal(in, data, total);
  /* A send that could never fit the queue is refused as too large. */
  struct iovec huge = {data, 401 * mss};
  uint8_t *big = malloc(401 * mss);
  huge.iov_base = big;
  assert_int_equal(kite__kcp_sendv(p->a, &huge, 1), KITE_EMSGSIZE);
  struct iovec none = {data, 0};
  assert_int_equal(kite__kcp_sendv(p->a, &none, 1), KITE_EINVAL);
  free(big);
  pair_round(p);
  free(data);
  free(in);
  pair_free(p);
}

static void stream_reads_cross_segments_and_messages(void **state) {
  (void)state;
  pair *p = pair_new(NULL);
  size_t mss = 1400 - KITE_KCP_OVERHEAD;
  static uint8_t data[3 * 1376 + 100], in[sizeof(data)];
  fill(data, sizeof(data), 5);
  /* Two messages: one of 2 segments, one of 2 (the last short). */
  assert_int_equal(kite__kcp_send(p->a, data, 2 * mss), 0);
  assert_int_equal(kite__kcp_send(p->a, data + 2 * mss, mss + 100), 0);
  assert_int_equal(kite__kcp_readable(p->b), 0);
  assert_null(kite__kcp_peek_contig(p->b, 1));
  pair_round(p);
  assert_int_equal(kite__kcp_readable(p->b), sizeof(data));
  /* In place within a segment; NULL across one. */
  const uint8_t *v = kite__kcp_peek_contig(p->b, mss);
  assert_non_null(v);
  assert_memory_equal(v, data, mss);
  assert_null(kite__kcp_peek_contig(p->b, mss + 1));
  assert_int_equal(kite__kcp_peek(p->b, in, sizeof(in) + 50), sizeof(data));
  assert_memory_equal(in, data, sizeof(data));
  /* Consume in odd steps that straddle segments and messages. */
  size_t at = 0, steps[] = {12, 1000, 500, mss, 3, 1000};
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    kite__kcp_consume(p->b, steps[i]);
    at += steps[i];
    assert_int_equal(kite__kcp_readable(p->b), sizeof(data) - at);
    assert_int_equal(kite__kcp_peek(p->b, in, 40), 40);
    assert_memory_equal(in, data + at, 40);
  }
  /* The rest of the partly read message, through the message API. */
  size_t rest = sizeof(data) - at;
  assert_int_equal(kite__kcp_recv(p->b, in, sizeof(in)), (int)rest);
  assert_memory_equal(in, data + at, rest);
  assert_int_equal(kite__kcp_readable(p->b), 0);
  kite__kcp_consume(p->b, 10); /* nothing left: harmless */
  pair_round(p);
  pair_free(p);
}

/* A stream reader that empties a full receive queue reopens the window at
 * once (WINS), as recv does. */
static void stream_consume_reopens_a_full_window(void **state) {
  (void)state;
  kite__kcp_config c;
  kite__kcp_config_default(&c);
  c.rcv_wnd = 4;
  c.peer_rcv_wnd = 4;
  pair *p = pair_new(&c);
  uint8_t msg[100] = {0};
  for (int i = 0; i < 4; i++)
    kite__kcp_send(p->a, msg, sizeof(msg));
  pair_round(p);
  pair_round(p);
  assert_int_equal(kite__kcp_readable(p->b), 400);
  kite__kcp_consume(p->b, 400);
  kite__kcp_flush(p->b, p->now);
  assert_int_equal(capture_count(&p->cb, KITE_KCP_CMD_WINS), 1);
  pair_round(p);
  pair_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(invalid_configs_are_refused),
      cmocka_unit_test(messages_of_every_size_arrive_whole),
      cmocka_unit_test(send_refusals_leave_nothing_queued),
      cmocka_unit_test(recv_with_a_small_buffer_consumes_nothing),
      cmocka_unit_test(idle_blocks_are_never_due),
      cmocka_unit_test(lost_segment_is_resent_at_its_rto),
      cmocka_unit_test(later_acks_trigger_fast_resend),
      cmocka_unit_test(rtt_is_estimated_from_acks),
      cmocka_unit_test(silence_is_a_dead_link_reported_once),
      cmocka_unit_test(backoff_keeps_trying_within_the_dead_link_span),
      cmocka_unit_test(slow_progress_is_not_death),
      cmocka_unit_test(clock_wrap_is_harmless),
      cmocka_unit_test(sendv_splits_and_stream_reads_join),
      cmocka_unit_test(stream_reads_cross_segments_and_messages),
      cmocka_unit_test(stream_consume_reopens_a_full_window),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
