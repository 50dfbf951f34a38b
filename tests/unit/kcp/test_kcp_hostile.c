/*
 * Hostile segments: each is refused or bounded, counted in the pool's
 * stats, never acknowledged unless stored, and never grows memory past the
 * windows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kcp_capture.h"

#define CONV 0xC0FFEE01u

typedef struct fixture {
  kite__kcp_pool *pool;
  kite__kcp *k;
  capture out;
  uint32_t now;
} fixture;

static fixture *fx_new(uint32_t max_segments, uint32_t reserve) {
  fixture *f = calloc(1, sizeof(*f));
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  pc.max_segments = max_segments;
  pc.reserve = reserve;
  f->pool = kite__kcp_pool_create(&pc);
  kite__kcp_config c;
  kite__kcp_config_default(&c);
  assert_int_equal(kite__kcp_create(&f->k, CONV, &c, f->pool, &capture_ops, &f->out), 0);
  f->now = 5000;
  return f;
}

static void fx_free(fixture *f) {
  kite__kcp_destroy(f->k);
  capture_clear(&f->out);
  assert_int_equal(f->pool->stats.segs_used, 0);
  kite__kcp_pool_destroy(f->pool);
  free(f);
}

static kite__kcp_hdr push(uint32_t sn, uint8_t frg, uint32_t len) {
  kite__kcp_hdr h = {.conv = CONV, .cmd = KITE_KCP_CMD_PUSH, .frg = frg,
                     .wnd = 128, .ts = 1, .sn = sn, .una = 0, .len = len};
  return h;
}

static int feed(fixture *f, const kite__kcp_hdr *h, uint8_t fill) {
  uint8_t buf[2048];
  size_t n = make_seg(buf, h, fill);
  return kite__kcp_input(f->k, buf, n, f->now);
}

static bool owes_nothing(const fixture *f) {
  uint32_t due;
  return !kite__kcp_next_due(f->k, f->now, &due);
}

static void short_datagrams_and_trailing_bytes(void **state) {
  (void)state;
  fixture *f = fx_new(1000, 100);
  uint8_t buf[64] = {0};
  assert_int_equal(kite__kcp_input(f->k, buf, 23, f->now), KITE_EPROTO);
  assert_int_equal(f->pool->stats.in_short, 1);
  /* A valid segment followed by 10 stray bytes: the segment counts, the
   * tail is refused. */
  kite__kcp_hdr h = push(0, 0, 4);
  size_t n = make_seg(buf, &h, 0x11);
  assert_int_equal(kite__kcp_input(f->k, buf, n + 10, f->now), KITE_EPROTO);
  assert_int_equal(f->pool->stats.in_short, 2);
  assert_int_equal(kite__kcp_peeksize(f->k), 4);
  fx_free(f);
}

static void len_past_the_datagram_or_above_mss(void **state) {
  (void)state;
  fixture *f = fx_new(1000, 100);
  uint8_t buf[2048];
  kite__kcp_hdr h = push(0, 0, 100);
  make_seg(buf, &h, 0x22);
  assert_int_equal(kite__kcp_input(f->k, buf, KITE_KCP_OVERHEAD + 99, f->now), KITE_EPROTO);
  h.len = 0xFFFFFFFFu; /* would wrap a careless bound check */
  kite__kcp_hdr_encode(buf, &h);
  assert_int_equal(kite__kcp_input(f->k, buf, sizeof(buf), f->now), KITE_EPROTO);
  h = push(0, 0, 1400 - KITE_KCP_OVERHEAD + 1); /* fits the datagram, not the mss */
  assert_int_equal(feed(f, &h, 0x22), KITE_EPROTO);
  assert_int_equal(f->pool->stats.in_bad_len, 3);
  assert_int_equal(f->pool->stats.segs_used, 0);
  assert_true(owes_nothing(f)); /* nothing acked */
  fx_free(f);
}

static void unknown_cmd_and_foreign_conv(void **state) {
  (void)state;
  fixture *f = fx_new(1000, 100);
  kite__kcp_hdr h = push(0, 0, 0);
  uint8_t bad_cmds[] = {0, 80, 85, 255};
  for (size_t i = 0; i < sizeof(bad_cmds); i++) {
    h.cmd = bad_cmds[i];
    assert_int_equal(feed(f, &h, 0), KITE_EPROTO);
  }
  assert_int_equal(f->pool->stats.in_bad_cmd, 4);
  h = push(0, 0, 8);
  h.conv = CONV + 1;
  assert_int_equal(feed(f, &h, 0), KITE_EPROTO);
  assert_int_equal(f->pool->stats.in_bad_conv, 1);
  assert_int_equal(f->pool->stats.segs_used, 0);
  assert_true(owes_nothing(f));
  fx_free(f);
}

/* A message the receive queue could never hold whole would stall forever. */
static void frg_at_or_above_the_window(void **state) {
  (void)state;
  fixture *f = fx_new(1000, 100);
  kite__kcp_hdr h = push(0, 128, 10);
  assert_int_equal(feed(f, &h, 0), KITE_EPROTO);
  h.frg = 127; /* 128 fragments: more than PROTOCOL.md allows */
  assert_int_equal(feed(f, &h, 0), KITE_EPROTO);
  h.frg = 255;
  assert_int_equal(feed(f, &h, 0), KITE_EPROTO);
  assert_int_equal(f->pool->stats.in_bad_frg, 3);
  assert_int_equal(f->pool->stats.segs_used, 0);
  assert_true(owes_nothing(f));
  h.frg = 126; /* the largest legal message's first fragment */
  assert_int_equal(feed(f, &h, 0), 0);
  assert_int_equal(f->pool->stats.segs_used, 2); /* the data and its ack */
  fx_free(f);
}

/* A broken countdown inside the window is caught at recv, not trusted. */
static void broken_fragment_sequence(void **state) {
  (void)state;
  fixture *f = fx_new(1000, 100);
  kite__kcp_hdr h = push(0, 2, 10);
  feed(f, &h, 1);
  h = push(1, 0, 10); /* should have been frg 1 */
  feed(f, &h, 2);
  h = push(2, 0, 10);
  feed(f, &h, 3);
  uint8_t buf[100];
  assert_int_equal(kite__kcp_peeksize(f->k), KITE_EPROTO);
  assert_int_equal(kite__kcp_recv(f->k, buf, sizeof(buf)), KITE_EPROTO);
  assert_true(f->pool->stats.recv_bad_frg >= 2);
  fx_free(f);
}

static void sequence_numbers_far_outside_the_window(void **state) {
  (void)state;
  fixture *f = fx_new(1000, 100);
  uint32_t sns[] = {128, 129, 1u << 20, 0x7FFFFFFF, 0x80000000u,
                    0xFFFFFF00u /* 256 behind */};
  for (size_t i = 0; i < sizeof(sns) / sizeof(sns[0]); i++) {
    kite__kcp_hdr h = push(sns[i], 0, 10);
    assert_int_equal(feed(f, &h, 0), 0); /* dropped, not a violation */
  }
  assert_int_equal(f->pool->stats.in_out_of_window, 6);
  assert_int_equal(f->pool->stats.segs_used, 0);
  assert_true(owes_nothing(f)); /* and never acknowledged */
  kite__kcp_hdr edge = push(127, 0, 10); /* the window's last slot: kept */
  assert_int_equal(feed(f, &edge, 0), 0);
  kite__kcp_flush(f->k, f->now);
  assert_true(capture_has_ack(&f->out, 127));
  fx_free(f);
}

static void una_and_acks_for_data_never_sent(void **state) {
  (void)state;
  fixture *f = fx_new(1000, 100);
  uint8_t msg[10] = {0};
  kite__kcp_send(f->k, msg, sizeof(msg));
  kite__kcp_send(f->k, msg, sizeof(msg));
  kite__kcp_flush(f->k, f->now); /* sn 0 and 1 in flight */
  kite__kcp_hdr h = {.conv = CONV, .cmd = KITE_KCP_CMD_ACK, .wnd = 128,
                     .sn = 5, .una = 50}; /* una past snd_nxt */
  assert_int_equal(feed(f, &h, 0), 0);
  assert_int_equal(f->pool->stats.in_bad_una, 1);
  assert_int_equal(f->pool->stats.in_bad_ack, 1); /* and sn 5 never sent */
  h.una = 0;
  h.sn = 2; /* never sent */
  assert_int_equal(feed(f, &h, 0), 0);
  assert_int_equal(f->pool->stats.in_bad_ack, 2);
  h.sn = 0x80000000u; /* far ahead */
  feed(f, &h, 0);
  assert_int_equal(f->pool->stats.in_bad_ack, 3);
  h.sn = 0xFFFFFF00u; /* far behind: stale, not a sample either */
  feed(f, &h, 0);
  assert_int_equal(f->pool->stats.in_stale_ack, 1);
  kite__kcp_stats st;
  kite__kcp_get_stats(f->k, &st);
  assert_int_equal(st.srtt_ms, 0); /* no sample from any of them */
  /* Both segments still in flight: the forged una freed nothing. */
  assert_int_equal(kite__kcp_unacked(f->k), 2);
  h.sn = 1;
  h.una = 0;
  feed(f, &h, 0);
  assert_int_equal(kite__kcp_unacked(f->k), 2); /* sn 1 acked, una at 0 */
  h.sn = 0;
  feed(f, &h, 0);
  assert_int_equal(kite__kcp_unacked(f->k), 0);
  fx_free(f);
}

/* One segment replayed 10,000 times: stored once, acks bounded. */
static void duplicate_flood_is_bounded(void **state) {
  (void)state;
  fixture *f = fx_new(1000, 100);
  kite__kcp_hdr h = push(5, 0, 100); /* out of order: kept in the ring */
  for (int i = 0; i < 10000; i++)
    feed(f, &h, 0x33);
  assert_int_equal(f->pool->stats.segs_used, 2); /* the data + one ack list */
  assert_true(f->pool->stats.acks_dropped > 0);
  kite__kcp_flush(f->k, f->now);
  assert_true(f->out.n < 10);
  assert_int_equal(f->pool->stats.segs_used, 1);
  fx_free(f);
}

/* A peer whose window never opens: probes back off, the queue stays
 * bounded, and the link is declared dead in time. */
static void zero_window_that_never_opens(void **state) {
  (void)state;
  fixture *f = fx_new(10000, 100);
  kite__kcp_hdr h = {.conv = CONV, .cmd = KITE_KCP_CMD_WINS, .wnd = 0};
  feed(f, &h, 0);
  uint8_t msg[1000] = {0};
  int queued = 0;
  while (kite__kcp_send(f->k, msg, sizeof(msg)) == 0)
    queued++;
  kite__kcp_config dc;
  kite__kcp_config_default(&dc);
  assert_int_equal(queued, dc.snd_queue_max); /* the default bound */
  assert_int_equal(kite__kcp_send(f->k, msg, sizeof(msg)), KITE_EFULL);
  uint32_t start = f->now, due;
  int probes = 0, wakeups = 0;
  while (kite__kcp_next_due(f->k, f->now, &due)) {
    f->now = due;
    kite__kcp_flush(f->k, f->now);
    probes += capture_count(&f->out, KITE_KCP_CMD_WASK);
    assert_int_equal(capture_count(&f->out, KITE_KCP_CMD_PUSH), 0);
    capture_clear(&f->out);
    feed(f, &h, 0); /* the peer answers: still zero */
    assert_true(++wakeups < 100);
  }
  assert_true(kite__kcp_is_dead(f->k));
  assert_int_equal(f->out.dead_calls, 1);
  assert_int_equal(f->now - start, 15000); /* dead_link_ms */
  assert_true(probes >= 1 && probes <= 3); /* 7 s, then 10.5 s later */
  assert_int_equal(f->pool->stats.segs_used, dc.snd_queue_max);
  fx_free(f);
}

/* Under the pool's budget, out-of-order data is refused first, and what is
 * refused is never acknowledged; in-order data still gets the reserve. */
static void budget_refuses_out_of_order_first(void **state) {
  (void)state;
  fixture *f = fx_new(20, 10);
  /* 10 chunks outside the reserve: the ack list takes one of them (it
   * arrives while they are free), out-of-order data the other 9. */
  int kept = 0;
  for (uint32_t sn = 1; sn <= 30; sn++) {
    kite__kcp_hdr h = push(sn, 0, 10);
    feed(f, &h, (uint8_t)sn);
  }
  kite__kcp_flush(f->k, f->now);
  for (uint32_t sn = 1; sn <= 30; sn++)
    kept += capture_has_ack(&f->out, sn);
  assert_int_equal(kept, 9);
  assert_int_equal(f->pool->stats.in_no_buffer, 21);
  for (uint32_t sn = 10; sn <= 30; sn++)
    assert_false(capture_has_ack(&f->out, sn)); /* refused: never acked */
  capture_clear(&f->out);
  /* sn 0, in order, takes the reserve: the first 10 messages deliver. */
  kite__kcp_hdr h = push(0, 0, 10);
  assert_int_equal(feed(f, &h, 0), 0);
  kite__kcp_flush(f->k, f->now);
  assert_true(capture_has_ack(&f->out, 0));
  uint8_t buf[10];
  for (int i = 0; i <= 9; i++)
    assert_int_equal(kite__kcp_recv(f->k, buf, sizeof(buf)), 10);
  assert_int_equal(kite__kcp_recv(f->k, buf, sizeof(buf)), KITE_EAGAIN);
  /* The refused ones come again (the peer retransmits) and now fit. */
  for (uint32_t sn = 10; sn <= 15; sn++) {
    kite__kcp_hdr r = push(sn, 0, 10);
    feed(f, &r, (uint8_t)sn);
    assert_int_equal(kite__kcp_recv(f->k, buf, sizeof(buf)), 10);
    assert_int_equal(buf[0], sn);
  }
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(short_datagrams_and_trailing_bytes),
      cmocka_unit_test(len_past_the_datagram_or_above_mss),
      cmocka_unit_test(unknown_cmd_and_foreign_conv),
      cmocka_unit_test(frg_at_or_above_the_window),
      cmocka_unit_test(broken_fragment_sequence),
      cmocka_unit_test(sequence_numbers_far_outside_the_window),
      cmocka_unit_test(una_and_acks_for_data_never_sent),
      cmocka_unit_test(duplicate_flood_is_bounded),
      cmocka_unit_test(zero_window_that_never_opens),
      cmocka_unit_test(budget_refuses_out_of_order_first),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
