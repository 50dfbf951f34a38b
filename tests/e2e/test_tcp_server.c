/*
 * The server's TCP transport against a raw TCP peer on loopback
 * (PROTOCOL.md sections 4 and 5): frames split and coalesced every way,
 * every invalid header and preface, the handshake and idle timeouts and
 * pings, a full server, a peer that reads nothing, backpressure from a
 * slow handler, a kick and a graceful stop with data still queued (which
 * must arrive whole, then an orderly EOF), KCP and TCP on one port, and
 * kite's own client over TCP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "base/clock.h"
#include "e2e_poll.h"
#include "tcp_raw.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

enum { MSG_ECHO = 1, MSG_BURST = 2, MSG_BURST_ITEM = 3, MSG_FLOOD = 4, MSG_KICK = 5 };

static atomic_int connects, disconnects, last_reason, flood_full, burst_failed;
static atomic_int handler_delay_us;

static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)s; (void)id; (void)u;
  atomic_fetch_add(&connects, 1);
}

static void on_disconnect(kite_server *s, kite_session_id id, int r, void *u) {
  (void)s; (void)id; (void)u;
  atomic_store(&last_reason, r);
  atomic_fetch_add(&disconnects, 1);
}

static void burst(kite_server *s, kite_session_id id, const uint8_t *b, size_t n) {
  uint32_t count, size;
  if (n < 8)
    return;
  memcpy(&count, b, 4);
  memcpy(&size, b + 4, 4);
  uint8_t *body = calloc(1, size);
  for (uint32_t i = 0; i < count; i++) {
    memcpy(body, &i, 4);
    if (kite_session_send(s, id, MSG_BURST_ITEM, body, size) != 0) {
      atomic_fetch_add(&burst_failed, 1);
      break;
    }
  }
  free(body);
}

static void on_message(kite_server *s, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)u;
  int delay = atomic_load(&handler_delay_us);
  if (delay)
    usleep((useconds_t)delay);
  static uint8_t big[4096];
  switch (m) {
  case MSG_BURST:
    burst(s, id, b, n);
    break;
  case MSG_FLOOD:
    for (int i = 0; i < 100000; i++) {
      if (kite_session_send(s, id, MSG_BURST_ITEM, big, sizeof(big)) == KITE_EFULL) {
        atomic_store(&flood_full, 1);
        break;
      }
    }
    break;
  case MSG_KICK:
    kite_session_send(s, id, m, b, n);
    kite_session_close(s, id);
    break;
  default:
    kite_session_send(s, id, m, b, n);
  }
}

typedef struct fixture {
  kite_server *srv;
  int port;
} fixture;

typedef void (*tweak_fn)(kite_server_config *cfg);

static int setup_tweaked(void **state, tweak_fn tweak) {
  atomic_store(&connects, 0);
  atomic_store(&disconnects, 0);
  atomic_store(&last_reason, -1);
  atomic_store(&flood_full, 0);
  atomic_store(&burst_failed, 0);
  atomic_store(&handler_delay_us, 0);
  fixture *f = calloc(1, sizeof(*f));
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0"; /* the UDP port's number */
  cfg.threads = 2;
  cfg.handshake_timeout_ms = 300;
  cfg.idle_timeout_ms = 3000;
  cfg.max_frame = 4096;
  cfg.log_level = KITE_LOG_ERROR;
  cfg.on_connect = on_connect;
  cfg.on_disconnect = on_disconnect;
  cfg.on_message = on_message;
  if (tweak)
    tweak(&cfg);
  assert_int_equal(kite_server_create(&f->srv, &cfg), 0);
  assert_int_equal(kite_server_start(f->srv), 0);
  f->port = kite_server_tcp_port(f->srv);
  assert_int_equal(f->port, kite_server_udp_port(f->srv));
  *state = f;
  return 0;
}

static int setup(void **state) { return setup_tweaked(state, NULL); }

static void tweak_small(kite_server_config *c) {
  c->max_sessions = 2;
}
static int setup_small(void **state) { return setup_tweaked(state, tweak_small); }

static void tweak_idle(kite_server_config *c) { c->idle_timeout_ms = 500; }
static int setup_idle(void **state) { return setup_tweaked(state, tweak_idle); }

static void tweak_slow_peer(kite_server_config *c) {
  c->tcp_send_max = 65536;
  c->tcp_stall_ms = 300;
}
static int setup_slow_peer(void **state) { return setup_tweaked(state, tweak_slow_peer); }

static void tweak_stop(kite_server_config *c) {
  c->tcp_send_max = 8u << 20;
  c->tcp_linger_ms = 10000;
}
static int setup_stop(void **state) { return setup_tweaked(state, tweak_stop); }

static void tweak_hash(kite_server_config *c) {
  c->worker_mode = KITE_WORKERS_HASH;
  c->workers = 2;
  c->mailbox_bytes = 1024;
}
static int setup_hash(void **state) { return setup_tweaked(state, tweak_hash); }

static int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  free(f);
  return 0;
}

static int open_conn(const fixture *f) {
  int fd = tcp_raw_connect(f->port, 5000, 0);
  assert_true(fd >= 0);
  kite__ctrl opened;
  assert_true(tcp_raw_open(fd, &opened));
  assert_int_equal(opened.max_frame, 4096);
  return fd;
}

/* Sends one echo frame and reads it back. */
static void echo_once(int fd, uint32_t seq) {
  uint8_t buf[64];
  size_t n = tcp_raw_frame(buf, MSG_ECHO, 0, &seq, 4, true);
  assert_true(tcp_raw_write(fd, buf, n));
  kite__frame_hdr h;
  uint32_t got = 0;
  assert_true(tcp_raw_read_frame(fd, &h, &got, sizeof(got)));
  assert_int_equal(h.msg_id, MSG_ECHO);
  assert_int_equal(got, seq);
}

static void read_echoes(int fd, uint32_t first, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) {
    kite__frame_hdr h;
    uint8_t body[64];
    assert_true(tcp_raw_read_frame(fd, &h, body, sizeof(body)));
    assert_int_equal(h.msg_id, MSG_ECHO);
    uint32_t seq;
    memcpy(&seq, body, 4);
    assert_int_equal(seq, first + i); /* per-connection order */
    assert_int_equal(h.len, 4 + seq % 29);
  }
}

static void frames_split_and_coalesced(void **state) {
  fixture *f = *state;
  int fd = tcp_raw_connect(f->port, 5000, 0);
  assert_true(fd >= 0);
  /* OPEN a byte at a time. */
  uint8_t open[KITE__CTRL_MAX];
  int n = tcp_raw_ctrl(open, KITE__CTRL_OPEN, 0);
  for (int i = 0; i < n; i++) {
    assert_true(tcp_raw_write(fd, open + i, 1));
    usleep(500);
  }
  uint8_t ob[16];
  kite__ctrl opened;
  assert_true(tcp_raw_read(fd, ob, sizeof(ob)));
  assert_int_equal(kite__ctrl_decode(ob, sizeof(ob), &opened), 0);
  assert_int_equal(opened.type, KITE__CTRL_OPENED);
  assert_int_equal(opened.idle_timeout_ms, 3000);
  assert_true(WAIT_FOR(atomic_load(&connects) == 1, 2000));

  /* 30 frames, each a byte at a time: headers and bodies across reads. */
  uint8_t frame[64];
  for (uint32_t seq = 0; seq < 30; seq++) {
    uint8_t body[40] = {0};
    memcpy(body, &seq, 4);
    size_t len = tcp_raw_frame(frame, MSG_ECHO, 0, body, 4 + seq % 29, seq & 1);
    for (size_t i = 0; i < len; i++)
      assert_true(tcp_raw_write(fd, frame + i, 1));
  }
  read_echoes(fd, 0, 30);

  /* 300 frames in one write. */
  uint8_t *all = malloc(300 * 64);
  size_t at = 0;
  for (uint32_t seq = 30; seq < 330; seq++) {
    uint8_t body[40] = {0};
    memcpy(body, &seq, 4);
    at += tcp_raw_frame(all + at, MSG_ECHO, 0, body, 4 + seq % 29, seq & 1);
  }
  assert_true(tcp_raw_write(fd, all, at));
  free(all);
  read_echoes(fd, 30, 300);

  /* An inline handler writes its echo before the shard counts the frame. */
  assert_true(WAIT_FOR(e2e_stats(f->srv).frames_in == 330, 2000));
  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.tcp_accepted, 1);
  assert_int_equal(st.closed_protocol, 0);
  close(fd);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 2000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_NORMAL);
}

static void invalid_headers_close_with_protocol_error(void **state) {
  fixture *f = *state;
  int bystander = open_conn(f);
  struct {
    uint16_t msg_id, flags;
    uint32_t len;
    bool bad_crc;
  } cases[] = {
      {MSG_ECHO, 0, 4097, false},                 /* over max_frame */
      {MSG_ECHO, 0, 16, true},                    /* CRC mismatch */
      {7, KITE__FRAME_F_PONG, 4, false},          /* pong on msg 7 */
      {KITE__MSG_PING, 0, 33, false},             /* a ping over 32 bytes */
  };
  int ncases = (int)(sizeof(cases) / sizeof(cases[0]));
  for (int i = 0; i < ncases; i++) {
    int fd = open_conn(f);
    echo_once(fd, (uint32_t)i);
    uint8_t hdr[KITE__FRAME_HDR];
    uint8_t body[64] = {1, 2, 3};
    uint32_t body_len = cases[i].len > sizeof(body) ? 0 : cases[i].len;
    kite__frame_hdr h = {.len = cases[i].len, .msg_id = cases[i].msg_id,
                         .flags = cases[i].flags};
    if (cases[i].bad_crc) {
      h.flags |= KITE__FRAME_F_CRC;
      h.crc32 = 0xDEADBEEF;
    }
    kite__frame_hdr_encode(hdr, &h);
    assert_true(tcp_raw_write(fd, hdr, sizeof(hdr)));
    if (body_len)
      assert_true(tcp_raw_write(fd, body, body_len));
    /* The reason, then a FIN, not a reset. */
    assert_int_equal(tcp_raw_expect_close(fd, KITE_CLOSE_PROTOCOL), 0);
    close(fd);
    echo_once(bystander, 100 + (uint32_t)i);  /* nobody else disturbed */
  }
  assert_true(WAIT_FOR(e2e_stats(f->srv).closed_protocol == (uint64_t)ncases, 2000));
  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.drop_frame, ncases);
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_PROTOCOL);
  close(bystander);
}

static void bad_preface_and_version(void **state) {
  fixture *f = *state;
  int fd = tcp_raw_connect(f->port, 5000, 0);
  /* (a GET goes to the WebSocket and static route: test_ws_server) */
  const char *stray = "HELO kite.example\r\n";
  assert_true(tcp_raw_write(fd, stray, strlen(stray)));
  assert_int_equal(tcp_raw_expect_eof(fd), 0);
  close(fd);

  fd = tcp_raw_connect(f->port, 5000, 0);
  uint8_t b[KITE__CTRL_MAX];
  int n = tcp_raw_ctrl(b, KITE__CTRL_OPEN, 9);
  assert_true(tcp_raw_write(fd, b, (size_t)n));
  assert_true(tcp_raw_read(fd, b, 17));
  kite__ctrl rej;
  assert_int_equal(kite__ctrl_decode(b, 17, &rej), 0);
  assert_int_equal(rej.type, KITE__CTRL_REJECT);
  assert_int_equal(rej.reason, KITE__REJECT_VERSION);
  static const uint8_t zero[KITE__CTRL_NONCE];
  assert_memory_equal(rej.nonce, zero, sizeof(zero));
  assert_int_equal(tcp_raw_expect_eof(fd), 0);
  close(fd);

  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.tcp_bad_open, 1);
  assert_int_equal(st.reject_version, 1);
  assert_int_equal(st.sessions_opened, 0);
  assert_int_equal(atomic_load(&connects), 0);
  assert_true(WAIT_FOR(e2e_stats(f->srv).sessions == 0, 2000));
}

static void handshake_timeout_ping_and_idle(void **state) {
  fixture *f = *state;
  /* A peer that connects and says nothing is dropped, unheard of. */
  int mute = tcp_raw_connect(f->port, 3000, 0);
  uint64_t t0 = kite__now_us();
  assert_int_equal(tcp_raw_expect_eof(mute), 0);
  assert_true(kite__now_us() - t0 >= 250000);
  close(mute);
  assert_int_equal(e2e_stats(f->srv).halfopen_expired, 1);
  assert_int_equal(atomic_load(&connects), 0);

  int fd = open_conn(f);
  uint8_t frame[64];
  const char *token = "ping-tok";
  size_t n = tcp_raw_frame(frame, KITE__MSG_PING, 0, token, 8, false);
  assert_true(tcp_raw_write(fd, frame, n));
  kite__frame_hdr h;
  char body[32];
  assert_true(tcp_raw_read_frame(fd, &h, body, sizeof(body)));
  assert_int_equal(h.msg_id, KITE__MSG_PING);
  assert_true(h.flags & KITE__FRAME_F_PONG);
  assert_memory_equal(body, token, 8);
  /* Then silence: the idle timeout (500 ms) closes it. */
  assert_int_equal(tcp_raw_expect_close(fd, KITE_CLOSE_IDLE), 0);
  close(fd);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 2000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_IDLE);
  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.closed_idle, 1);
  assert_int_equal(st.pings, 1);
  assert_int_equal(st.frames_in, 0); /* pings reach no handler */
}

static void full_server_rejects(void **state) {
  fixture *f = *state;
  int a = open_conn(f), b = open_conn(f);
  int c = tcp_raw_connect(f->port, 5000, 0);
  uint8_t buf[KITE__CTRL_MAX];
  int n = tcp_raw_ctrl(buf, KITE__CTRL_OPEN, 0);
  assert_true(tcp_raw_write(c, buf, (size_t)n));
  assert_true(tcp_raw_read(c, buf, 17));
  kite__ctrl rej;
  assert_int_equal(kite__ctrl_decode(buf, 17, &rej), 0);
  assert_int_equal(rej.type, KITE__CTRL_REJECT);
  assert_int_equal(rej.reason, KITE__REJECT_FULL);
  assert_int_equal(tcp_raw_expect_eof(c), 0);
  close(c);
  assert_int_equal(e2e_stats(f->srv).reject_full, 1);
  echo_once(a, 1);
  echo_once(b, 2);
  close(a);
  close(b);
}

static void slow_reader_is_closed_and_bounded(void **state) {
  fixture *f = *state;
  int slow = tcp_raw_connect(f->port, 5000, 4096);
  kite__ctrl opened;
  assert_true(tcp_raw_open(slow, &opened));
  int other = open_conn(f);
  uint8_t frame[16];
  size_t n = tcp_raw_frame(frame, MSG_FLOOD, 0, NULL, 0, false);
  assert_true(tcp_raw_write(slow, frame, n));
  /* The sender hears KITE_EFULL: the queue stops at tcp_send_max. */
  assert_true(WAIT_FOR(atomic_load(&flood_full) == 1, 5000));
  assert_true(e2e_stats(f->srv).tcp_send_full >= 1);
  echo_once(other, 7); /* the shard is not stuck behind it */
  /* It reads nothing for tcp_stall_ms: closed as a slow peer. */
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 5000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_SLOW_PEER);
  assert_int_equal(e2e_stats(f->srv).closed_slow_peer, 1);
  echo_once(other, 8);
  close(slow);
  close(other);
}

typedef struct stopper {
  kite_server *srv;
  atomic_bool done;
} stopper;

static void *stop_thread(void *arg) {
  stopper *st = arg;
  kite_server_stop(st->srv);
  atomic_store(&st->done, true);
  return NULL;
}

static void graceful_stop_delivers_queued_data_whole(void **state) {
  fixture *f = *state;
  /* 6 MB: past what the kernel's buffers hold (4 MB at most on Linux), so
   * most of it still waits in the server's own queue at the stop. */
  const uint32_t count = 6000, size = 1000;
  int fd = tcp_raw_connect(f->port, 5000, 4096);
  kite__ctrl opened;
  assert_true(tcp_raw_open(fd, &opened));
  uint8_t req[8], frame[32];
  memcpy(req, &count, 4);
  memcpy(req + 4, &size, 4);
  size_t n = tcp_raw_frame(frame, MSG_BURST, 0, req, 8, false);
  assert_true(tcp_raw_write(fd, frame, n));
  assert_true(WAIT_FOR(e2e_stats(f->srv).frames_out == count, 5000));
  assert_int_equal(atomic_load(&burst_failed), 0);

  stopper st = {.srv = f->srv};
  pthread_t t;
  pthread_create(&t, NULL, stop_thread, &st);
  usleep(100000); /* the stop is under way with most bytes still queued */
  /* Input the server will never read: closing on it would send a reset,
   * and a reset destroys what this peer has not read yet. */
  for (uint32_t i = 0; i < 10; i++) {
    uint8_t more[32];
    n = tcp_raw_frame(more, MSG_ECHO, 0, &i, 4, false);
    assert_true(tcp_raw_write(fd, more, n));
  }
  uint8_t *body = malloc(size);
  for (uint32_t i = 0; i < count; i++) {
    kite__frame_hdr h;
    assert_true(tcp_raw_read_frame(fd, &h, body, size));
    assert_int_equal(h.msg_id, MSG_BURST_ITEM);
    uint32_t seq;
    memcpy(&seq, body, 4);
    assert_int_equal(seq, i);
  }
  free(body);
  /* Then the reason, and a FIN, no reset. */
  assert_int_equal(tcp_raw_expect_close(fd, KITE_CLOSE_SHUTDOWN), 0);
  close(fd);
  pthread_join(t, NULL);
  assert_true(atomic_load(&st.done));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_SHUTDOWN);
  kite_server_stats s = e2e_stats(f->srv);
  assert_int_equal(s.closed_shutdown, 1);
  assert_int_equal(s.tcp_linger_cut, 0);
  assert_true(s.tcp_bytes_out > (uint64_t)count * size);
  /* Nobody listens any more. */
  assert_int_equal(tcp_raw_connect(f->port, 1000, 0), -1);
}

static void kick_delivers_the_reply_first(void **state) {
  fixture *f = *state;
  int fd = open_conn(f);
  uint8_t frame[32];
  size_t n = tcp_raw_frame(frame, MSG_KICK, 0, "bye", 3, false);
  assert_true(tcp_raw_write(fd, frame, n));
  kite__frame_hdr h;
  char body[8];
  assert_true(tcp_raw_read_frame(fd, &h, body, sizeof(body)));
  assert_int_equal(h.msg_id, MSG_KICK);
  assert_int_equal(tcp_raw_expect_close(fd, KITE_CLOSE_KICKED), 0);
  close(fd);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 2000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_KICKED);
}

static void backpressure_from_slow_handlers(void **state) {
  fixture *f = *state;
  atomic_store(&handler_delay_us, 200);
  int fd = open_conn(f);
  enum { COUNT = 400 };
  uint8_t *all = malloc(COUNT * 64);
  size_t at = 0;
  for (uint32_t seq = 0; seq < COUNT; seq++) {
    uint8_t body[40] = {0};
    memcpy(body, &seq, 4);
    at += tcp_raw_frame(all + at, MSG_ECHO, 0, body, 4 + seq % 29, false);
  }
  assert_true(tcp_raw_write(fd, all, at));
  free(all);
  read_echoes(fd, 0, COUNT);
  assert_true(e2e_stats(f->srv).backpressure > 0); /* a 1 KiB mailbox filled */
  close(fd);
}

/* A KCP client and a TCP peer on the one port number, at once. */
static int kcp_echoes;
static void kcp_on_message(kite_conn *c, uint16_t m, const uint8_t *b,
                           size_t n, void *u) {
  (void)c; (void)m; (void)b; (void)n; (void)u;
  kcp_echoes++;
}

static void kcp_and_tcp_on_one_port(void **state) {
  fixture *f = *state;
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.bind_addr = "127.0.0.1:0";
  cc.on_message = kcp_on_message;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(f->srv));
  kite_conn *conn;
  kcp_echoes = 0;
  assert_int_equal(kite_client_connect(cli, addr, NULL, &conn), 0);
  int fd = open_conn(f);
  assert_true(POLL_UNTIL(cli, atomic_load(&connects) == 2, 3000));
  for (uint32_t i = 0; i < 50; i++) {
    assert_int_equal(kite_conn_send(conn, MSG_ECHO, &i, 4), 0);
    echo_once(fd, i);
    kite_client_poll(cli, 0);
  }
  assert_true(POLL_UNTIL(cli, kcp_echoes == 50, 3000));
  kite_client_destroy(cli);
  close(fd);
  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.tcp_accepted, 1);
  assert_int_equal(st.sessions_opened, 2);
}

/* kite's own client over TCP against the server: the two halves of
 * section 5 together. */
static int tcp_echoes, tcp_connected, tcp_gone = -1;
static void tc_on_connect(kite_conn *c, void *u) {
  (void)c; (void)u;
  tcp_connected++;
}
static void tc_on_message(kite_conn *c, uint16_t m, const uint8_t *b, size_t n,
                          void *u) {
  (void)c; (void)u;
  uint32_t seq;
  if (m != MSG_ECHO || n != 4)
    return;
  memcpy(&seq, b, 4);
  if (seq == (uint32_t)tcp_echoes) /* in order, each once */
    tcp_echoes++;
}
static void tc_on_disconnect(kite_conn *c, int reason, void *u) {
  (void)c; (void)u;
  tcp_gone = reason;
}

static void client_library_over_tcp(void **state) {
  fixture *f = *state;
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = tc_on_connect;
  cc.on_message = tc_on_message;
  cc.on_disconnect = tc_on_disconnect;
  cc.crc = true;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
  kite_conn *conn;
  tcp_echoes = tcp_connected = 0;
  tcp_gone = -1;
  assert_int_equal(kite_client_connect_tcp(cli, addr, NULL, &conn), 0);
  assert_true(POLL_UNTIL(cli, tcp_connected == 1, 3000));
  for (uint32_t i = 0; i < 500; i++)
    assert_int_equal(kite_conn_send(conn, MSG_ECHO, &i, 4), 0);
  assert_true(POLL_UNTIL(cli, tcp_echoes == 500, 5000));
  /* The server kicks it after a reply: the reply, then the end. */
  assert_int_equal(kite_conn_send(conn, MSG_KICK, "x", 1), 0);
  assert_true(POLL_UNTIL(cli, tcp_gone >= 0, 3000));
  assert_int_equal(tcp_gone, KITE_CLOSE_KICKED); /* the close notice said why */
  assert_true(WAIT_FOR(atomic_load(&last_reason) == KITE_CLOSE_KICKED, 2000));
  assert_true(WAIT_FOR(e2e_stats(f->srv).frames_in == 501, 2000)); /* counted after its handler */
  kite_client_destroy(cli);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(frames_split_and_coalesced, setup, teardown),
      cmocka_unit_test_setup_teardown(invalid_headers_close_with_protocol_error,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(bad_preface_and_version, setup, teardown),
      cmocka_unit_test_setup_teardown(handshake_timeout_ping_and_idle, setup_idle,
                                      teardown),
      cmocka_unit_test_setup_teardown(full_server_rejects, setup_small, teardown),
      cmocka_unit_test_setup_teardown(slow_reader_is_closed_and_bounded,
                                      setup_slow_peer, teardown),
      cmocka_unit_test_setup_teardown(graceful_stop_delivers_queued_data_whole,
                                      setup_stop, teardown),
      cmocka_unit_test_setup_teardown(kick_delivers_the_reply_first, setup, teardown),
      cmocka_unit_test_setup_teardown(backpressure_from_slow_handlers, setup_hash,
                                      teardown),
      cmocka_unit_test_setup_teardown(kcp_and_tcp_on_one_port, setup, teardown),
      cmocka_unit_test_setup_teardown(client_library_over_tcp, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
