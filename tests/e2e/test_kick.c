/*
 * The application's close (kite_session_close(), reason 4) against a raw
 * KCP peer that controls every datagram: a reply sent just before the
 * close is delivered and acknowledged before CLOSE is sent, even when its
 * first datagram is lost; nothing sent after the close is accepted; and a
 * session's info is readable from any thread while it is open, in inline
 * and hash mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "kcp/kcp_codec.h"
#include "kcp_raw.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { MSG_KICK = 5, MSG_BYE = 6 };

static atomic_int connects, disconnects, last_reason, send_after_close;
static atomic_int info_rc = 1, info_transport, info_peer_ok;
static _Atomic kite_session_id last_id;

static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)u;
  /* On the session's executor, shard or worker: who connected. */
  kite_session_info in;
  int rc = kite_session_get_info(s, id, &in);
  atomic_store(&info_transport, rc == 0 ? (int)in.transport : 0);
  atomic_store(&info_peer_ok, rc == 0 && !strncmp(in.peer, "127.0.0.1:", 10));
  atomic_store(&info_rc, rc);
  atomic_store(&last_id, id);
  atomic_fetch_add(&connects, 1);
}

static void on_disconnect(kite_server *s, kite_session_id id, int r, void *u) {
  (void)s, (void)id, (void)u;
  atomic_store(&last_reason, r);
  atomic_fetch_add(&disconnects, 1);
}

/* KICK: the reply, then the close, then a send that must be refused. */
static void on_message(kite_server *s, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)u;
  if (m != MSG_KICK) {
    kite_session_send(s, id, m, b, n);
    return;
  }
  kite_session_send(s, id, MSG_BYE, "bye", 3);
  kite_session_close(s, id);
  atomic_store(&send_after_close, kite_session_send(s, id, MSG_BYE, "late", 4));
}

typedef struct fixture {
  kite_server *srv;
  kite__addr addr;
  int fd;
} fixture;

static int setup_mode(void **state, kite_worker_mode mode) {
  fixture *f = calloc(1, sizeof(*f));
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.worker_mode = mode;
  cfg.workers = 2;
  cfg.close_timeout_ms = 60000; /* a close that waited for it fails */
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
  atomic_store(&last_reason, -1);
  atomic_store(&send_after_close, 1);
  atomic_store(&info_rc, 1);
  *state = f;
  return 0;
}

static int setup_inline(void **state) { return setup_mode(state, KITE_WORKERS_INLINE); }
static int setup_hash(void **state) { return setup_mode(state, KITE_WORKERS_HASH); }

static int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  close(f->fd);
  free(f);
  return 0;
}

/* Whether a datagram carries data: any of its segments a PUSH (each
 * segment: a 24-byte header whose last 4 bytes are its length, LE). */
static bool has_push(const uint8_t *b, int n) {
  for (int at = 0; at + KITE_KCP_OVERHEAD <= n;) {
    if (b[at + 4] == KITE_KCP_CMD_PUSH)
      return true;
    uint32_t len = (uint32_t)b[at + 20] | (uint32_t)b[at + 21] << 8 |
                   (uint32_t)b[at + 22] << 16 | (uint32_t)b[at + 23] << 24;
    at += KITE_KCP_OVERHEAD + (int)len;
  }
  return false;
}

/* Reads frames out of the peer's engine: whether MSG_BYE came. */
static bool read_bye(mini *m) {
  bool bye = false;
  for (;;) {
    uint8_t raw[KITE__FRAME_HDR];
    if (kite__kcp_peek(m->kcp, raw, sizeof(raw)) < sizeof(raw))
      return bye;
    kite__frame_hdr h;
    kite__frame_hdr_decode(raw, &h);
    if (kite__kcp_readable(m->kcp) < KITE__FRAME_HDR + h.len)
      return bye;
    bye |= h.msg_id == MSG_BYE;
    kite__kcp_consume(m->kcp, KITE__FRAME_HDR + h.len);
  }
}

static void reply_before_kick_survives_a_lost_datagram(void **state) {
  fixture *f = *state;
  uint8_t nonce[8] = {5, 1};
  kite__ctrl acc = kcp_raw_handshake(f->fd, &f->addr, nonce);
  mini m;
  mini_open(&m, f->fd, &f->addr, acc.conv);
  mini_send_frame(&m, 7, 0, "hi", 2, true); /* opens it; echoed */
  uint64_t end = kite__now_us() + 5000000;
  while (atomic_load(&connects) == 0 && kite__now_us() < end)
    usleep(1000);
  assert_int_equal(atomic_load(&connects), 1);
  assert_int_equal(atomic_load(&info_rc), 0);
  assert_int_equal(atomic_load(&info_transport), KITE_TRANSPORT_KCP);
  assert_true(atomic_load(&info_peer_ok));
  /* From another thread too, while it is open. */
  kite_session_info in;
  kite_session_id id = atomic_load(&last_id);
  assert_int_equal(kite_session_get_info(f->srv, id, &in), 0);
  assert_int_equal(in.version, 1);
  /* Drain the echo, so the next datagram with data is the reply. */
  uint8_t buf[2048];
  int n;
  while ((n = recv_raw(f->fd, buf, sizeof(buf), 200)) > 0)
    if (!kite__ctrl_is_control(buf, (size_t)n))
      kite__kcp_input(m.kcp, buf, (size_t)n, kite__now_ms());
  kite__kcp_flush(m.kcp, kite__now_ms());
  read_bye(&m);

  mini_send_frame(&m, MSG_KICK, 0, NULL, 0, true);
  bool dropped = false, bye = false, closed = false;
  end = kite__now_us() + 10000000;
  while (!closed && kite__now_us() < end) {
    n = recv_raw(f->fd, buf, sizeof(buf), 20);
    if (n > 0 && kite__ctrl_is_control(buf, (size_t)n)) {
      kite__ctrl c;
      if (kite__ctrl_decode(buf, (size_t)n, &c) == 0 && c.type == KITE__CTRL_CLOSE) {
        /* CLOSE only once the reply is here (and acknowledged). */
        assert_true(bye);
        assert_int_equal(c.reason, KITE_CLOSE_KICKED);
        closed = true;
      }
    } else if (n > 0 && has_push(buf, n) && !dropped) {
      dropped = true; /* the reply's first datagram is lost */
    } else if (n > 0) {
      kite__kcp_input(m.kcp, buf, (size_t)n, kite__now_ms());
      bye |= read_bye(&m);
    }
    kite__kcp_flush(m.kcp, kite__now_ms()); /* acks, and our retransmits */
  }
  assert_true(dropped);
  assert_true(bye);
  assert_true(closed); /* well before close_timeout_ms */
  end = kite__now_us() + 5000000;
  while (atomic_load(&disconnects) == 0 && kite__now_us() < end)
    usleep(1000);
  assert_int_equal(atomic_load(&disconnects), 1);
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_KICKED);
  /* From the session's own callbacks, on a shard or a worker, a send
   * after the close is refused. */
  assert_int_equal(atomic_load(&send_after_close), KITE_ECLOSED);
  assert_int_equal(kite_session_get_info(f->srv, id, &in), KITE_ENOTFOUND);
  kite_server_stats st;
  kite_server_stats_get(f->srv, &st);
  assert_int_equal(st.closed_kicked, 1);
  mini_close(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(reply_before_kick_survives_a_lost_datagram,
                                      setup_inline, teardown),
      cmocka_unit_test_setup_teardown(reply_before_kick_survives_a_lost_datagram,
                                      setup_hash, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
