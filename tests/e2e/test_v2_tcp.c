/*
 * Protocol version 2 over TCP, the session (PROTOCOL-v2.md section 8)
 * against a raw v2 peer (tcp_v2_raw.h): frames both ways over records
 * (split across records, several in one, the unreliable flag), session
 * info, a CLOSE frame's reason, the server's own CLOSE frame, a flipped
 * bit, bad record lengths, EOF without a CLOSE frame, a peer that stops
 * reading, and slow handlers that push back on input. The handshake's
 * refusals: test_v2_tcp_open.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "v2_tcp_fixture.h"

static void open_echo_info_close(void **state) {
  fixture *f = *state;
  v2peer p;
  open_peer(f, &p);
  assert_int_equal(p.acc.max_frame, 40000);
  assert_int_equal(p.acc.idle_timeout_ms, 5000);
  assert_int_equal(p.acc.max_unreliable, 1400 - 36);
  assert_int_equal(p.acc.reserved, 0);
  assert_int_equal(atomic_load(&connects), 0); /* half-open until a record */
  ping(&p);
  assert_true(WAIT_FOR(atomic_load(&info_ready) == 1, 2000));
  assert_int_equal(atomic_load(&info_version), 2);
  assert_int_equal(atomic_load(&info_client_id), 77);
  assert_string_equal(info_user, "player=alice");
  kite_session_info in;
  assert_int_equal(kite_session_get_info(f->srv, atomic_load(&last_id), &in), 0);
  assert_int_equal(in.version, 2);
  assert_int_equal(in.transport, KITE_TRANSPORT_TCP);
  assert_int_equal(in.client_id, 77);

  static uint8_t body[30000];
  for (size_t i = 0; i < sizeof(body); i++)
    body[i] = (uint8_t)(i * 7);
  echo(&p, 0, body, 10, 0);
  echo(&p, 0, body, sizeof(body), 0);    /* 2 records each way */
  echo(&p, 0, body, sizeof(body), 1000); /* 31 records in */
  echo(&p, 0, body, 100, 5);             /* header split across records */
  echo(&p, KITE__FRAME_F_UNRELIABLE, body, 1364, 0); /* max_unreliable */
  /* Several frames in one record. */
  uint8_t two[64];
  size_t n = tcp_raw_frame(two, MSG_ECHO, 0, "ab", 2, true);
  n += tcp_raw_frame(two + n, MSG_ECHO, 0, "cd", 2, false);
  assert_true(v2peer_record(&p, two, n, false));
  kite__frame_hdr h;
  uint8_t b[8];
  assert_true(v2peer_read_frame(&p, &h, b, sizeof(b)));
  assert_memory_equal(b, "ab", 2);
  assert_true(v2peer_read_frame(&p, &h, b, sizeof(b)));
  assert_memory_equal(b, "cd", 2);

  /* The CLOSE frame's reason, then the FIN: that reason. */
  uint8_t reason = KITE_CLOSE_SHUTDOWN;
  assert_true(v2peer_frame(&p, KITE__MSG_CLOSE_NOTICE, 0, &reason, 1, 0));
  shutdown(p.fd, SHUT_WR);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_SHUTDOWN);
  v2peer_free(&p);

  /* The server's close: its CLOSE frame, sealed, then an orderly EOF. */
  open_peer(f, &p);
  ping(&p);
  echo(&p, 0, body, 0, 0);
  uint8_t k = 1;
  assert_true(v2peer_frame(&p, MSG_KICK, 0, &k, 1, 0));
  assert_true(v2peer_read_frame(&p, &h, b, sizeof(b)));
  assert_int_equal(h.msg_id, MSG_KICK);
  assert_int_equal(v2peer_expect_close(&p, KITE_CLOSE_KICKED), 0);
  v2peer_free(&p);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 2, 3000));
  kite_server_stats st = stats(f);
  assert_int_equal(st.v2_tcp_opens, 2);
  assert_int_equal(st.v2_tcp_opened, 2);
  assert_int_equal(st.sessions_opened, 2);
  assert_int_equal(st.closed_protocol, 0);
}

/* An unreliable frame over max_unreliable is a protocol error. */
static void unreliable_over_limit(void **state) {
  fixture *f = *state;
  v2peer p;
  open_peer(f, &p);
  ping(&p);
  static uint8_t body[1365];
  assert_true(v2peer_frame(&p, MSG_ECHO, KITE__FRAME_F_UNRELIABLE, body,
                           sizeof(body), 0));
  assert_int_equal(v2peer_expect_close(&p, KITE_CLOSE_PROTOCOL), 0);
  v2peer_free(&p);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_PROTOCOL);
}

/* A record that does not verify, or a len of 0 or over 16384: closed at
 * once, nothing more sent (no CLOSE frame), on_disconnect once, reason 2. */
static void bad_records(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 3; i++) {
    v2peer p;
    open_peer(f, &p);
    ping(&p);
    assert_true(WAIT_FOR(atomic_load(&connects) == i + 1, 2000));
    if (i == 0) {
      uint8_t fr[32];
      size_t n = tcp_raw_frame(fr, MSG_ECHO, 0, "flip", 4, false);
      assert_true(v2peer_record(&p, fr, n, true));
    } else { /* the len alone: refused before anything more is read */
      uint8_t len[2] = {0, 0};
      if (i == 2) {
        len[0] = 0x01; /* 16385 */
        len[1] = 0x40;
      }
      assert_true(p.wr(&p, len, 2));
    }
    assert_int_equal(tcp_raw_expect_eof(p.fd), 0);
    v2peer_free(&p);
    assert_true(WAIT_FOR(atomic_load(&disconnects) == i + 1, 3000));
    assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_PROTOCOL);
  }
  assert_int_equal(atomic_load(&disconnects), 3); /* once each */
  kite_server_stats st = stats(f);
  assert_int_equal(st.v2_tcp_drop_record_auth, 1);
  assert_int_equal(st.v2_tcp_drop_record_len, 2);
  assert_int_equal(st.closed_protocol, 3);
}

/* An EOF with no CLOSE frame: reason 5, not 0 (a FIN proves nothing). */
static void eof_without_close(void **state) {
  fixture *f = *state;
  v2peer p;
  open_peer(f, &p);
  ping(&p);
  shutdown(p.fd, SHUT_WR);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_DEAD_LINK);
  v2peer_free(&p);
}

/* A v2 peer that stops reading: its queue of records reaches tcp_send_max
 * and sends fail with KITE_EFULL, as on v1; what was queued is whole
 * records, read fine once the peer reads again. */
static void backpressure(void **state) {
  fixture *f = *state;
  uint8_t tok[KITE_TOKEN_BYTES];
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 3, NULL, 0, 60), 0);
  v2peer p;
  v2peer_init(&p, connect_from(f, NULL, 0, 4096), tok);
  assert_true(v2peer_open(&p));
  ping(&p);
  assert_true(v2peer_frame(&p, MSG_FLOOD, 0, NULL, 0, 0));
  assert_true(WAIT_FOR(atomic_load(&flood_full) == 1, 5000));
  assert_true(stats(f).tcp_send_full >= 1);
  static uint8_t body[8192];
  for (int i = 0; i < 40; i++) {
    kite__frame_hdr h;
    assert_true(v2peer_read_frame(&p, &h, body, sizeof(body)));
    assert_int_equal(h.msg_id, MSG_ECHO);
    assert_int_equal(h.len, 4096);
  }
  v2peer_free(&p);
}

/* Slow handlers fill a 1 KiB mailbox: the plaintext it refused and the
 * records not yet read wait, then go on in order. Frames cut across
 * records of 100 bytes, all in one write. */
static void input_backpressure(void **state) {
  fixture *f = *state;
  v2peer p;
  open_peer(f, &p);
  ping(&p);
  atomic_store(&handler_delay_us, 200);
  enum { COUNT = 400 };
  uint8_t *all = malloc(COUNT * 64), *wire = malloc(COUNT * 64 * 2);
  size_t at = 0, w = 0;
  for (uint32_t seq = 0; seq < COUNT; seq++) {
    uint8_t body[40] = {0};
    memcpy(body, &seq, 4);
    at += tcp_raw_frame(all + at, MSG_ECHO, 0, body, 4 + seq % 29, seq & 1);
  }
  for (size_t i = 0; i < at; i += 100) {
    size_t len = at - i < 100 ? at - i : 100;
    w += (size_t)kite__v2rec_seal(wire + w, 200, p.rn++, p.keys.c2s, all + i,
                                  len);
  }
  assert_true(tcp_raw_write(p.fd, wire, w));
  free(all);
  free(wire);
  for (uint32_t i = 0; i < COUNT; i++) {
    kite__frame_hdr h;
    uint8_t body[64];
    assert_true(v2peer_read_frame(&p, &h, body, sizeof(body)));
    assert_int_equal(h.msg_id, MSG_ECHO);
    uint32_t seq;
    memcpy(&seq, body, 4);
    assert_int_equal(seq, i);
    assert_int_equal(h.len, 4 + seq % 29);
  }
  assert_true(stats(f).backpressure > 0);
  assert_int_equal(stats(f).closed_protocol, 0);
  v2peer_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(open_echo_info_close, setup, teardown),
      cmocka_unit_test_setup_teardown(unreliable_over_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_records, setup, teardown),
      cmocka_unit_test_setup_teardown(eof_without_close, setup, teardown),
      cmocka_unit_test_setup_teardown(backpressure, setup_small_out, teardown),
      cmocka_unit_test_setup_teardown(input_backpressure, setup_hash, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
