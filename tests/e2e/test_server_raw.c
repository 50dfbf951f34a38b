/*
 * The server against raw UDP on loopback: PROTOCOL.md section 2's rules and
 * hostile traffic. Each case checks what came back (or did not) and the
 * server's counters; a KCP engine stands in for a client where a session
 * must open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"
#include "e2e_poll.h"

#include "base/clock.h"
#include "kcp/kcp.h"
#include "net/addr.h"
#include "proto/control.h"
#include "proto/frame.h"

#include "kcp_raw.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <poll.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int connects, disconnects, last_reason, messages;
static _Atomic kite_session_id last_id;

static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)s; (void)u;
  atomic_store(&last_id, id);
  atomic_fetch_add(&connects, 1);
}
static void on_disconnect(kite_server *s, kite_session_id id, int r, void *u) {
  (void)s; (void)id; (void)u;
  atomic_store(&last_reason, r);
  atomic_fetch_add(&disconnects, 1);
}
static void on_message(kite_server *s, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)u;
  atomic_fetch_add(&messages, 1);
  kite_session_send(s, id, m, b, n);
}

typedef struct fixture {
  kite_server *srv;
  kite__addr addr;
  int fd; /* the test's client socket */
} fixture;

static int setup_with(void **state, bool steering, uint32_t stop_timeout_ms,
                      uint32_t dead_link_ms, uint32_t send_queue_max) {
  fixture *f = calloc(1, sizeof(*f));
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.steering = steering;
  cfg.stop_timeout_ms = stop_timeout_ms;
  cfg.dead_link_ms = dead_link_ms;
  cfg.send_queue_max = send_queue_max;
  cfg.handshake_timeout_ms = 300;
  cfg.idle_timeout_ms = 2000;
  cfg.log_level = KITE_LOG_WARN;
  cfg.on_connect = on_connect;
  cfg.on_disconnect = on_disconnect;
  cfg.on_message = on_message;
  assert_int_equal(kite_server_create(&f->srv, &cfg), 0);
  assert_int_equal(kite_server_start(f->srv), 0);
  char text[64];
  snprintf(text, sizeof(text), "127.0.0.1:%d", kite_server_udp_port(f->srv));
  assert_int_equal(kite__addr_parse(&f->addr, text), 0);
  f->fd = udp_socket();
  atomic_store(&connects, 0);
  atomic_store(&disconnects, 0);
  atomic_store(&messages, 0);
  atomic_store(&last_reason, -1);
  *state = f;
  return 0;
}

static int setup(void **state) { return setup_with(state, true, 3000, 15000, 1024); }
static int setup_unsteered(void **state) {
  return setup_with(state, false, 3000, 15000, 1024);
}
/* A short dead link and a small send queue, to reach both. */
static int setup_fragile(void **state) { return setup_with(state, true, 3000, 500, 64); }
/* A stop deadline far beyond the test's patience: a stop that waited for
 * it, rather than for the acks, fails the test. */
static int setup_patient_stop(void **state) {
  return setup_with(state, true, 60000, 15000, 1024);
}

static int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  close(f->fd);
  free(f);
  return 0;
}

/* HELLO, CHALLENGE, CONNECT, ACCEPT on |fd|. */
static kite__ctrl handshake(fixture *f, int fd, const uint8_t nonce[8]) {
  return kcp_raw_handshake(fd, &f->addr, nonce);
}

static void hello_flood_allocates_nothing_and_never_amplifies(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  uint8_t buf[2048];
  int sent = 0;
  for (int i = 0; i < 2000; i++) {
    uint8_t nonce[8];
    memcpy(nonce, &i, sizeof(i));
    kite__ctrl h = hello(nonce);
    send_ctrl(f->fd, &f->addr, &h);
    sent++;
    int n;
    while ((n = recv_raw(f->fd, buf, sizeof(buf), 0)) > 0)
      assert_true(n <= 64); /* never more than the request */
  }
  /* Loopback may drop part of a burst: what must hold is that every HELLO
   * the server read was answered, and that it holds no state for any. */
  uint64_t seen = 0;
  for (int i = 0; i < 500; i++) { /* until the counters settle (5 s at most) */
    usleep(10000);
    st = e2e_stats(f->srv);
    if (st.dgrams_in == seen && st.hello == seen)
      break;
    seen = st.dgrams_in;
  }
  assert_true(st.hello > 100);
  assert_int_equal(st.hello, st.dgrams_in);
  /* A HELLO shorter than 64 bytes gets nothing at all. */
  uint8_t shorty[KITE__CTRL_MAX];
  kite__ctrl h = hello((uint8_t[8]){9});
  kite__ctrl_encode(shorty, sizeof(shorty), &h);
  send_raw(f->fd, &f->addr, shorty, 63);
  EVENTUALLY_STATS(f->srv, st, st.drop_control == 1, 3000);
  assert_int_equal(st.hello + st.drop_control, st.dgrams_in);
  assert_int_equal(st.sessions, 0);
  assert_int_equal(st.accept, 0);
  int n;
  while ((n = recv_raw(f->fd, buf, sizeof(buf), 50)) > 0)
    assert_int_equal(n, 32); /* CHALLENGEs only */
  assert_true(sent == 2000);
}

static void other_versions_are_refused_with_ours(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  kite__ctrl h = hello((uint8_t[8]){1, 2, 3});
  h.version = 2;
  send_ctrl(f->fd, &f->addr, &h);
  kite__ctrl r;
  assert_true(recv_ctrl(f->fd, KITE__CTRL_REJECT, &r, 1000));
  assert_int_equal(r.reason, KITE__REJECT_VERSION);
  assert_int_equal(r.version, KITE__PROTO_VERSION); /* the server's own */
  EVENTUALLY_STATS(f->srv, st, st.reject_version == 1, 3000);
  assert_int_equal(st.sessions, 0);
}

static void bad_replayed_and_foreign_cookies_are_refused(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  uint8_t nonce[8] = {7, 7, 7};
  kite__ctrl h = hello(nonce), ch, r;
  send_ctrl(f->fd, &f->addr, &h);
  assert_true(recv_ctrl(f->fd, KITE__CTRL_CHALLENGE, &ch, 1000));
  kite__ctrl c = {.type = KITE__CTRL_CONNECT, .mtu = 1400, .rcv_wnd = 128};
  memcpy(c.nonce, nonce, 8);
  memcpy(c.cookie, ch.cookie, 16);
  c.cookie[10] ^= 1; /* a bit flipped */
  send_ctrl(f->fd, &f->addr, &c);
  assert_true(recv_ctrl(f->fd, KITE__CTRL_REJECT, &r, 1000));
  assert_int_equal(r.reason, KITE__REJECT_COOKIE);
  /* The genuine cookie from another socket (another port). */
  int other = udp_socket();
  memcpy(c.cookie, ch.cookie, 16);
  send_ctrl(other, &f->addr, &c);
  assert_true(recv_ctrl(other, KITE__CTRL_REJECT, &r, 1000));
  assert_int_equal(r.reason, KITE__REJECT_COOKIE);
  /* ...and for another nonce. */
  c.nonce[0] ^= 0xFF;
  send_ctrl(f->fd, &f->addr, &c);
  assert_true(recv_ctrl(f->fd, KITE__CTRL_REJECT, &r, 1000));
  close(other);
  st = e2e_stats(f->srv);
  assert_int_equal(st.reject_cookie, 3);
  assert_int_equal(st.sessions, 0);
}

static void repeated_connect_gets_the_same_accept(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  uint8_t nonce[8] = {1, 1, 2, 3, 5, 8};
  kite__ctrl h = hello(nonce), ch, a1, a2;
  send_ctrl(f->fd, &f->addr, &h);
  assert_true(recv_ctrl(f->fd, KITE__CTRL_CHALLENGE, &ch, 1000));
  kite__ctrl c = {.type = KITE__CTRL_CONNECT, .mtu = 1200, .rcv_wnd = 64};
  memcpy(c.nonce, nonce, 8);
  memcpy(c.cookie, ch.cookie, 16);
  send_ctrl(f->fd, &f->addr, &c);
  assert_true(recv_ctrl(f->fd, KITE__CTRL_ACCEPT, &a1, 1000));
  send_ctrl(f->fd, &f->addr, &c);
  assert_true(recv_ctrl(f->fd, KITE__CTRL_ACCEPT, &a2, 1000));
  assert_memory_equal(&a1, &a2, sizeof(a1));
  assert_int_equal(a1.mtu, 1200); /* the smaller of both */
  assert_true(a1.conv != KITE__CTRL_MAGIC);
  st = e2e_stats(f->srv);
  assert_int_equal(st.accept, 1);
  assert_int_equal(st.accept_again, 1);
  assert_int_equal(st.sessions, 1);
  /* Half-open: no segment within the handshake timeout, dropped silently. */
  EVENTUALLY_STATS(f->srv, st, st.sessions == 0, 3000);
  assert_int_equal(st.halfopen_expired, 1);
  assert_int_equal(atomic_load(&connects), 0);
  assert_int_equal(atomic_load(&disconnects), 0);
}

static void segments_from_elsewhere_or_unknown_convs_do_nothing(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  uint8_t nonce[8] = {42};
  kite__ctrl acc = handshake(f, f->fd, nonce);
  /* The right conv from another socket: never acted on. */
  int other = udp_socket();
  mini m;
  mini_open(&m, other, &f->addr, acc.conv);
  mini_send_frame(&m, KITE__MSG_PING, 0, "x", 1, false);
  /* Random convs: nothing answers. */
  uint8_t junk[64];
  for (int i = 0; i < 500; i++) {
    for (size_t k = 0; k < sizeof(junk); k++)
      junk[k] = (uint8_t)(rand() >> 7);
    if (kite__ctrl_is_control(junk, sizeof(junk)))
      continue;
    send_raw(other, &f->addr, junk, sizeof(junk));
  }
  EVENTUALLY_STATS(f->srv, st, st.drop_wrong_addr >= 1 && st.drop_unknown_conv >= 450, 3000);
  uint8_t buf[2048];
  assert_int_equal(recv_raw(other, buf, sizeof(buf), 100), -1); /* silence */
  assert_int_equal(atomic_load(&connects), 0);
  assert_int_equal(st.sessions_opened, 0);
  mini_close(&m);
  close(other);
}

static void forged_close_is_ignored_and_bad_frames_close(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  uint8_t nonce[8] = {43};
  kite__ctrl acc = handshake(f, f->fd, nonce);
  mini m;
  mini_open(&m, f->fd, &f->addr, acc.conv);
  mini_send_frame(&m, KITE__MSG_PING, 0, "hi", 2, true);
  EVENTUALLY_STATS(f->srv, st, st.sessions_opened == 1, 3000);
  assert_int_equal(atomic_load(&connects), 1);
  /* CLOSE with a wrong token, and the right token from another socket. */
  kite__ctrl c = {.type = KITE__CTRL_CLOSE, .conv = acc.conv};
  memcpy(c.token, acc.token, 8);
  c.token[0] ^= 1;
  send_ctrl(f->fd, &f->addr, &c);
  int other = udp_socket();
  c.token[0] ^= 1;
  send_ctrl(other, &f->addr, &c);
  EVENTUALLY_STATS(f->srv, st, st.drop_close == 2, 3000);
  assert_int_equal(st.sessions, 1);
  /* An echo still works... */
  mini_send_frame(&m, 7, 0, "abc", 3, true);
  EVENTUALLY_STATS(f->srv, st, st.frames_in == 1, 3000);
  /* ...then a frame with a bad CRC closes the session (reason 2). */
  uint8_t hdr[KITE__FRAME_HDR];
  kite__frame_header(hdr, 8, 0, "abc", 3, true);
  hdr[8] ^= 1;
  struct iovec iov[2] = {{hdr, 12}, {"abc", 3}};
  kite__kcp_sendv(m.kcp, iov, 2);
  kite__kcp_flush(m.kcp, kite__now_ms());
  EVENTUALLY_STATS(f->srv, st, st.closed_protocol == 1 && st.sessions == 0, 3000);
  assert_int_equal(st.drop_frame, 1);
  assert_int_equal(atomic_load(&disconnects), 1);
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_PROTOCOL);
  /* The client was told: CLOSE reason 2 with its token. */
  kite__ctrl got;
  assert_true(recv_ctrl(f->fd, KITE__CTRL_CLOSE, &got, 1000));
  assert_int_equal(got.reason, KITE_CLOSE_PROTOCOL);
  assert_memory_equal(got.token, acc.token, 8);
  mini_close(&m);
  close(other);
}

static void genuine_close_ends_the_session_once(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  uint8_t nonce[8] = {44};
  kite__ctrl acc = handshake(f, f->fd, nonce);
  mini m;
  mini_open(&m, f->fd, &f->addr, acc.conv);
  mini_send_frame(&m, KITE__MSG_PING, 0, NULL, 0, false);
  EVENTUALLY_STATS(f->srv, st, st.sessions_opened == 1, 3000);
  kite__ctrl c = {.type = KITE__CTRL_CLOSE, .conv = acc.conv};
  memcpy(c.token, acc.token, 8);
  for (int i = 0; i < 3; i++)
    send_ctrl(f->fd, &f->addr, &c);
  EVENTUALLY_STATS(f->srv, st, st.closed_normal == 1 && st.sessions == 0 &&
                    st.drop_close == 2, 3000); /* the two later copies */
  assert_int_equal(atomic_load(&disconnects), 1); /* exactly once */
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_NORMAL);
  mini_close(&m);
}

/* Many sessions from many sockets spread over both shards; each exchanges
 * an echo. Returns how many opened. */
static int open_many(fixture *f, int n) {
  enum { N = 40 };
  assert_true(n <= N);
  int fds[N];
  mini m[N];
  kite__ctrl acc[N];
  uint32_t owners = 0;
  for (int i = 0; i < n; i++) {
    fds[i] = udp_socket();
    uint8_t nonce[8] = {9, (uint8_t)i};
    acc[i] = handshake(f, fds[i], nonce);
    owners |= 1u << (acc[i].conv & 0xFF);
    mini_open(&m[i], fds[i], &f->addr, acc[i].conv);
    mini_send_frame(&m[i], 5, 0, "echo", 4, true);
  }
  assert_int_equal(owners, 3); /* both shards own sessions */
  kite_server_stats st;
  EVENTUALLY_STATS(f->srv, st, st.frames_in == (uint64_t)n, 3000);
  /* Each echo comes back (its KCP segment carries it). */
  uint8_t buf[2048];
  for (int i = 0; i < n; i++) {
    bool echoed = false;
    for (int tries = 0; tries < 50 && !echoed; tries++) {
      int len = recv_raw(fds[i], buf, sizeof(buf), 20);
      if (len > 0 && !kite__ctrl_is_control(buf, (size_t)len)) {
        kite__kcp_input(m[i].kcp, buf, (size_t)len, kite__now_ms());
        uint8_t msg[64];
        kite__kcp_flush(m[i].kcp, kite__now_ms());
        echoed = kite__kcp_peek(m[i].kcp, msg, 16) == 16 && memcmp(msg + 12, "echo", 4) == 0;
      }
    }
    assert_true(echoed);
    mini_close(&m[i]);
    close(fds[i]);
  }
  return n;
}

static void steering_keeps_every_segment_on_its_shard(void **state) {
  fixture *f = *state;
  open_many(f, 30);
  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.sessions_opened, 30);
  assert_int_equal(st.handoffs, 0); /* the kernel put each on its owner */
}

static void without_steering_shards_hand_segments_over(void **state) {
  fixture *f = *state;
  open_many(f, 30);
  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.sessions_opened, 30);
  assert_true(st.handoffs > 0); /* the kernel's hash ignores conv */
}

static void *stop_server(void *srv) {
  kite_server_stop(srv);
  return NULL;
}

static void graceful_stop_delivers_queued_frames_then_closes(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  uint8_t nonce[8] = {46};
  kite__ctrl acc = handshake(f, f->fd, nonce);
  mini m;
  mini_open(&m, f->fd, &f->addr, acc.conv);
  mini_send_frame(&m, KITE__MSG_PING, 0, NULL, 0, false);
  EVENTUALLY_STATS(f->srv, st, st.sessions_opened == 1, 3000);
  kite_session_id id = atomic_load(&last_id);
  static uint8_t body[1000];
  for (int i = 0; i < 50; i++) { /* from this thread: through the inbox */
    body[0] = (uint8_t)i;
    assert_int_equal(kite_session_send(f->srv, id, 100, body, sizeof(body)), 0);
  }
  pthread_t stopper;
  pthread_create(&stopper, NULL, stop_server, f->srv);
  int frames = 0;
  bool closed = false;
  uint8_t buf[2048];
  uint64_t end = kite__now_us() + 5000000;
  while (!closed && kite__now_us() < end) {
    int n = recv_raw(f->fd, buf, sizeof(buf), 20);
    if (n > 0 && kite__ctrl_is_control(buf, (size_t)n)) {
      kite__ctrl c;
      if (kite__ctrl_decode(buf, (size_t)n, &c) == 0 && c.type == KITE__CTRL_CLOSE) {
        assert_int_equal(c.reason, KITE_CLOSE_SHUTDOWN);
        closed = true;
      }
    } else if (n > 0) {
      kite__kcp_input(m.kcp, buf, (size_t)n, kite__now_ms());
    }
    kite__kcp_flush(m.kcp, kite__now_ms()); /* our acks */
    for (;;) { /* frames, in order, before the CLOSE */
      uint8_t raw[KITE__FRAME_HDR];
      if (kite__kcp_peek(m.kcp, raw, sizeof(raw)) < sizeof(raw))
        break;
      kite__frame_hdr h;
      kite__frame_hdr_decode(raw, &h);
      if (kite__kcp_readable(m.kcp) < KITE__FRAME_HDR + h.len)
        break;
      if (h.msg_id == 100) {
        uint8_t first[KITE__FRAME_HDR + 1];
        kite__kcp_peek(m.kcp, first, sizeof(first));
        assert_int_equal(first[KITE__FRAME_HDR], frames);
        frames++;
      }
      kite__kcp_consume(m.kcp, KITE__FRAME_HDR + h.len);
    }
  }
  pthread_join(stopper, NULL);
  assert_true(closed); /* within 5 s, though the deadline was 60 s */
  assert_int_equal(frames, 50);
  assert_int_equal(atomic_load(&disconnects), 1);
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_SHUTDOWN);
  st = e2e_stats(f->srv);
  assert_int_equal(st.closed_shutdown, 1);
  assert_int_equal(st.sessions, 0);
  mini_close(&m);
}

/* A peer that keeps pinging but acknowledges nothing: the session's send
 * queue fills (KITE_EFULL, memory bounded), then the link is dead. */
static void unacked_data_fills_the_queue_then_kills_the_link(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  uint8_t nonce[8] = {47};
  kite__ctrl acc = handshake(f, f->fd, nonce);
  mini m;
  mini_open(&m, f->fd, &f->addr, acc.conv);
  mini_send_frame(&m, KITE__MSG_PING, 0, NULL, 0, false);
  EVENTUALLY_STATS(f->srv, st, st.sessions_opened == 1, 3000);
  kite_session_id id = atomic_load(&last_id);
  static uint8_t body[1000];
  int accepted = 0, rc = 0;
  while (accepted < 1000 && (rc = kite_session_send(f->srv, id, 100, body, sizeof(body))) == 0)
    accepted++;
  assert_int_equal(rc, KITE_EFULL);
  /* Bounded by the window (128 in flight) and the queue (64), plus what
   * the inbox held while the shard caught up (64 more at most). At least
   * the queue, less the pong to the opening ping when a slow shard has not
   * flushed it yet (its slot in the queue is then taken). */
  if (accepted < 63 || accepted > 128 + 2 * 64)
    print_message("accepted %d\n", accepted);
  assert_true(accepted >= 63 && accepted <= 128 + 2 * 64);
  EVENTUALLY_STATS(f->srv, st, st.frames_out == (uint64_t)accepted, 3000); /* none dropped */
  assert_int_equal(st.closed_slow_peer, 0);
  /* Keep the session from idling out; read nothing, so ack nothing. */
  bool closed = false;
  uint64_t end = kite__now_us() + 5000000;
  uint8_t buf[2048];
  while (!closed && kite__now_us() < end) {
    mini_send_frame(&m, KITE__MSG_PING, 0, NULL, 0, false);
    int n;
    while ((n = recv_raw(f->fd, buf, sizeof(buf), 50)) > 0) {
      kite__ctrl c;
      if (kite__ctrl_is_control(buf, (size_t)n) &&
          kite__ctrl_decode(buf, (size_t)n, &c) == 0 && c.type == KITE__CTRL_CLOSE) {
        assert_int_equal(c.reason, KITE_CLOSE_DEAD_LINK);
        closed = true;
      }
    }
  }
  assert_true(closed);
  EVENTUALLY_STATS(f->srv, st, st.closed_dead_link == 1 && st.sessions == 0, 3000);
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_DEAD_LINK);
  assert_int_equal(atomic_load(&disconnects), 1);
  mini_close(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(hello_flood_allocates_nothing_and_never_amplifies, setup, teardown),
      cmocka_unit_test_setup_teardown(other_versions_are_refused_with_ours, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_replayed_and_foreign_cookies_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(repeated_connect_gets_the_same_accept, setup, teardown),
      cmocka_unit_test_setup_teardown(segments_from_elsewhere_or_unknown_convs_do_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(forged_close_is_ignored_and_bad_frames_close, setup, teardown),
      cmocka_unit_test_setup_teardown(genuine_close_ends_the_session_once, setup, teardown),
      cmocka_unit_test_setup_teardown(steering_keeps_every_segment_on_its_shard, setup, teardown),
      cmocka_unit_test_setup_teardown(without_steering_shards_hand_segments_over, setup_unsteered, teardown),
      cmocka_unit_test_setup_teardown(graceful_stop_delivers_queued_frames_then_closes, setup_patient_stop, teardown),
      cmocka_unit_test_setup_teardown(unacked_data_fills_the_queue_then_kills_the_link, setup_fragile, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
