/*
 * CONNECT v2 (PROTOCOL-v2.md section 3) against a real server, with the
 * raw peer of v2_raw.h: every REJECT reason the UDP side sends (2, 4, 5,
 * 6, 7, 8), the cases ignored without a word, the repeated CONNECT's
 * ACCEPT byte for byte, the versions a server serves (section 1), the
 * idle timeout a token puts in force, and the configuration's check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "v2_raw.h"
#include "kcp_raw.h"

typedef struct fixture {
  kite_server *srv;
  kite__addr addr;
  int port;
} fixture;

static int start(void **state, unsigned versions) {
  fixture *f = calloc(1, sizeof(*f));
  kite_server_config cfg;
  v2_test_config(&cfg, versions);
  assert_int_equal(kite_server_create(&f->srv, &cfg), 0);
  assert_int_equal(kite_server_start(f->srv), 0);
  f->addr = v2_server_addr(f->srv);
  f->port = kite_server_udp_port(f->srv);
  *state = f;
  return 0;
}
static int setup(void **state) { return start(state, 0); }
static int setup_v1(void **state) { return start(state, KITE_VERSION_1); }
static int setup_v2(void **state) { return start(state, KITE_VERSION_2); }

static int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  free(f);
  return 0;
}

/* HELLO, CONNECT with |token| from |fd|: the reply's REJECT reason, 0 for
 * ACCEPT, -1 for none within |ms|. */
static int try_token(fixture *f, int fd, const uint8_t *token, int ms) {
  v2peer p;
  v2_init(&p, fd, &f->addr, token);
  uint8_t cookie[16], buf[KITE__V2CTL_MAX], reply[2048];
  v2_hello(&p, cookie);
  int n = v2_connect_bytes(&p, cookie, buf);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  int r = v2_reply(&p, reply, sizeof(reply), ms);
  v2_close(&p);
  return v2_reason(reply, r);
}

static void mint(fixture *f, uint8_t *token, const uint8_t *key, uint64_t pid,
                 const char *addr, uint64_t now_s, uint32_t ttl) {
  v2_mint(token, key, pid, addr, f->port, 7, "u", now_s, ttl);
}

static void every_reject_reason(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  int fd = v2_socket_on("127.0.0.1");
  uint8_t tok[KITE_TOKEN_BYTES];
  uint64_t now = (uint64_t)time(NULL);

  /* 4: a cookie not ours, and a version 1 cookie for this very client. */
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, NULL, 0, 60);
  v2peer p;
  v2_init(&p, fd, &f->addr, tok);
  uint8_t cookie[16] = {0}, buf[KITE__V2CTL_MAX], reply[2048];
  int n = v2_connect_bytes(&p, cookie, buf);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  assert_int_equal(v2_reason(reply, v2_reply(&p, reply, sizeof(reply), 2000)), 4);
  kite__ctrl h = hello(p.nonce), ch;
  send_ctrl(fd, &f->addr, &h);
  assert_true(recv_ctrl(fd, KITE__CTRL_CHALLENGE, &ch, 2000));
  n = v2_connect_bytes(&p, ch.cookie, buf);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  assert_int_equal(v2_reason(reply, v2_reply(&p, reply, sizeof(reply), 2000)), 4);
  v2_close(&p);
  V2_EVENTUALLY(f->srv, st.reject_cookie == 2);

  /* 5: expired, and expiring too far ahead. */
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, NULL, now - 100, 30);
  assert_int_equal(try_token(f, fd, tok, 2000), 5);
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, NULL, now + 400, 30);
  assert_int_equal(try_token(f, fd, tok, 2000), 5);
  /* 6: another key, another protocol id, one bit altered. */
  uint8_t other[32];
  memcpy(other, v2_test_key, 32);
  other[31] ^= 1;
  mint(f, tok, other, V2_TEST_PROTOCOL, NULL, 0, 60);
  assert_int_equal(try_token(f, fd, tok, 2000), 6);
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL + 1, NULL, 0, 60);
  assert_int_equal(try_token(f, fd, tok, 2000), 6);
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, NULL, 0, 60);
  tok[288 + 100] ^= 0x04; /* inside sealed_private */
  assert_int_equal(try_token(f, fd, tok, 2000), 6);
  /* 7: a token for another server. */
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, "127.0.0.1:1", 0, 60);
  assert_int_equal(try_token(f, fd, tok, 2000), 7);
  V2_EVENTUALLY(f->srv, st.v2_reject_expired == 2 && st.v2_reject_invalid == 3 &&
                            st.v2_reject_not_here == 1);

  /* 8: a token that opened a session, again from this address with
   * another client_nonce; from another address: nothing at all. */
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, NULL, 0, 60);
  assert_int_equal(try_token(f, fd, tok, 2000), 0);
  assert_int_equal(try_token(f, fd, tok, 2000), 8);
  int fd2 = v2_socket_on("127.0.0.2");
  assert_int_equal(try_token(f, fd2, tok, 500), -1);
  V2_EVENTUALLY(f->srv, st.v2_reject_used == 1 && st.v2_drop_token_bound == 1);
  assert_int_equal(st.v2_accept, 1);
  close(fd2);
  close(fd);
}

/* A lost ACCEPT: the same CONNECT gets the same 60 bytes, whatever the
 * cookie's age, no second session; a CONNECT from this address and nonce
 * with another token gets nothing. */
static void a_repeated_connect_gets_the_same_accept(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  int fd = v2_socket_on("127.0.0.1");
  uint8_t tok[KITE_TOKEN_BYTES], tok2[KITE_TOKEN_BYTES];
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, NULL, 0, 60);
  v2peer p;
  v2_init(&p, fd, &f->addr, tok);
  uint8_t cookie[16], buf[KITE__V2CTL_MAX], a1[2048], a2[2048];
  v2_hello(&p, cookie);
  int n = v2_connect_bytes(&p, cookie, buf);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  int r1 = v2_reply(&p, a1, sizeof(a1), 2000);
  assert_int_equal(r1, KITE__V2CTL_ACCEPT);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  int r2 = v2_reply(&p, a2, sizeof(a2), 2000);
  assert_int_equal(r2, KITE__V2CTL_ACCEPT);
  assert_memory_equal(a1, a2, KITE__V2CTL_ACCEPT);
  /* Another token, same address and nonce. */
  mint(f, tok2, v2_test_key, V2_TEST_PROTOCOL, NULL, 0, 60);
  v2peer q;
  v2_init(&q, fd, &f->addr, tok2);
  memcpy(q.nonce, p.nonce, 8);
  n = v2_connect_bytes(&q, cookie, buf);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  assert_int_equal(v2_reply(&q, a2, sizeof(a2), 500), -1);
  V2_EVENTUALLY(f->srv, st.v2_accept_again == 1 && st.v2_drop_connect_tag == 1);
  assert_int_equal(st.v2_accept, 1);
  assert_int_equal(st.v2_connect, 3); /* each once, handed over or not */
  assert_int_equal(st.sessions, 1);
  /* And the ACCEPT opens under the token's key into a working session. */
  v2_take_accept(&p, a1);
  v2_close(&p);
  v2_close(&q);
  close(fd);
}

/* Ignored, counted, never answered: a CONNECT whose mtu or window no
 * client could use (step 1), a v2 packet of another size than its type's,
 * a server-to-client type, OPEN (TCP's) on the UDP port. */
static void ignored_without_a_word(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  int fd = v2_socket_on("127.0.0.1");
  uint8_t tok[KITE_TOKEN_BYTES];
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, NULL, 0, 60);
  v2peer p;
  v2_init(&p, fd, &f->addr, tok);
  uint8_t cookie[16], buf[KITE__V2CTL_MAX];
  v2_hello(&p, cookie);
  kite__v2ctl c = {.type = KITE__CTRL_CONNECT, .mtu = 575, .rcv_wnd = 128,
                   .expire_ts = p.tok.expire_ts, .token_nonce = p.tok.nonce,
                   .sealed = p.tok.sealed};
  memcpy(c.nonce, p.nonce, 8);
  memcpy(c.cookie, cookie, 16);
  int n = kite__v2ctl_encode(buf, sizeof(buf), &c);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  c.mtu = 1400;
  c.rcv_wnd = 0;
  n = kite__v2ctl_encode(buf, sizeof(buf), &c);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  c.rcv_wnd = 128;
  n = kite__v2ctl_encode(buf, sizeof(buf), &c);
  v2_sendto(fd, &f->addr, buf, (size_t)n - 1); /* one byte short */
  kite__v2ctl o = {.type = KITE__CTRL_OPEN, .expire_ts = p.tok.expire_ts,
                   .token_nonce = p.tok.nonce, .sealed = p.tok.sealed};
  n = kite__v2ctl_encode(buf, sizeof(buf), &o);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  kite__v2ctl ch = {.type = KITE__CTRL_CHALLENGE};
  n = kite__v2ctl_encode(buf, sizeof(buf), &ch);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  V2_EVENTUALLY(f->srv, st.v2_drop_connect == 2 && st.v2_drop_control == 3);
  uint8_t any[2048];
  assert_int_equal(v2_recv_raw(fd, any, sizeof(any), 300), -1);
  assert_int_equal(st.v2_accept, 0);
  v2_close(&p);
  close(fd);
}

/* Each CONNECT is counted once, whether the shard that read it owns it or
 * hands it over (8 sockets: the kernel spreads them over both shards). */
static void each_connect_counts_once(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  for (int i = 0; i < 8; i++) {
    int fd = v2_socket_on("127.0.0.1");
    uint8_t tok[KITE_TOKEN_BYTES];
    mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, NULL, 0, 60);
    assert_int_equal(try_token(f, fd, tok, 2000), 0);
    close(fd);
  }
  V2_EVENTUALLY(f->srv, st.v2_accept == 8);
  assert_int_equal(st.v2_connect, 8);
  assert_int_equal(st.v2_hello, 8);
}

/* The idle timeout in force is the token's, clamped (1 s at least). */
static void the_token_sets_the_idle_timeout(void **state) {
  fixture *f = *state;
  int fd = v2_socket_on("127.0.0.1");
  const char *addrs[1];
  char text[64];
  snprintf(text, sizeof(text), "127.0.0.1:%d", f->port);
  addrs[0] = text;
  uint32_t timeouts[] = {3, 0, 100000};
  uint32_t want[] = {3000, 10000, 300000};
  for (int i = 0; i < 3; i++) {
    uint8_t tok[KITE_TOKEN_BYTES];
    kite_token_params tp = {.protocol_id = V2_TEST_PROTOCOL, .ttl_s = 60,
                            .timeout_s = timeouts[i], .addrs = addrs, .naddrs = 1};
    assert_int_equal(kite_token_mint(tok, v2_test_key, &tp), 0);
    v2peer p;
    v2_init(&p, fd, &f->addr, tok);
    uint8_t cookie[16], buf[KITE__V2CTL_MAX], acc[2048];
    v2_hello(&p, cookie);
    int n = v2_connect_bytes(&p, cookie, buf);
    v2_sendto(fd, &f->addr, buf, (size_t)n);
    assert_int_equal(v2_reply(&p, acc, sizeof(acc), 2000), KITE__V2CTL_ACCEPT);
    kite__v2accept a;
    assert_int_equal(kite__v2ctl_accept_open(acc, p.tok.s2c_key, &a), 0);
    assert_int_equal(a.idle_timeout_ms, want[i]);
    assert_int_equal(a.mtu, 1400);
    assert_int_equal(a.max_unreliable, 1364);
    v2_close(&p);
  }
  close(fd);
}

/* Version 1 only: a v2 HELLO or CONNECT of 64 bytes or more gets REJECT 2
 * in a version 1 header; a shorter packet gets nothing. */
static void a_v1_only_server_refuses_v2(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  int fd = v2_socket_on("127.0.0.1");
  uint8_t tok[KITE_TOKEN_BYTES];
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, NULL, 0, 60);
  v2peer p;
  v2_init(&p, fd, &f->addr, tok);
  uint8_t cookie[16] = {0}, buf[KITE__V2CTL_MAX];
  int n = v2_connect_bytes(&p, cookie, buf);
  v2_sendto(fd, &f->addr, buf, (size_t)n);
  kite__ctrl r;
  assert_true(recv_ctrl(fd, KITE__CTRL_REJECT, &r, 2000)); /* decodes as v1 */
  assert_int_equal(r.reason, KITE__REJECT_VERSION);
  assert_memory_equal(r.nonce, p.nonce, 8);
  v2_sendto(fd, &f->addr, buf, 40); /* too short to be answered */
  uint8_t any[64];
  assert_int_equal(v2_recv_raw(fd, any, sizeof(any), 300), -1);
  V2_EVENTUALLY(f->srv, st.reject_version == 1 && st.drop_control == 1);
  /* Version 1 still works. */
  uint8_t nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  kcp_raw_handshake(fd, &f->addr, nonce);
  v2_close(&p);
  close(fd);
}

/* Version 2 only: a v1 CONNECT gets REJECT 2 in a version 2 header. */
static void a_v2_only_server_refuses_v1(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  int fd = v2_socket_on("127.0.0.1");
  kite__ctrl c = {.type = KITE__CTRL_CONNECT, .mtu = 1400, .rcv_wnd = 128};
  memset(c.nonce, 0x55, 8);
  send_ctrl(fd, &f->addr, &c);
  uint8_t buf[2048];
  int n = v2_recv_raw(fd, buf, sizeof(buf), 2000);
  kite__v2ctl r;
  assert_int_equal(kite__v2ctl_decode(buf, (size_t)n, &r), 0);
  assert_int_equal(r.type, KITE__CTRL_REJECT);
  assert_int_equal(r.reason, KITE__REJECT_VERSION);
  assert_int_equal(r.nonce[0], 0x55);
  V2_EVENTUALLY(f->srv, st.reject_version == 1 && st.connect == 0);
  /* Version 2 works. */
  uint8_t tok[KITE_TOKEN_BYTES];
  mint(f, tok, v2_test_key, V2_TEST_PROTOCOL, NULL, 0, 60);
  assert_int_equal(try_token(f, fd, tok, 2000), 0);
  close(fd);
}

static void version_2_needs_a_key(void **state) {
  (void)state;
  kite_server_config cfg;
  v2_test_config(&cfg, KITE_VERSION_2);
  cfg.token_key_set = false;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), KITE_EINVAL);
  v2_test_config(&cfg, KITE_VERSION_1 | KITE_VERSION_2);
  cfg.mtu = 500;
  assert_int_equal(kite_server_create(&srv, &cfg), KITE_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(every_reject_reason, setup, teardown),
      cmocka_unit_test_setup_teardown(a_repeated_connect_gets_the_same_accept, setup, teardown),
      cmocka_unit_test_setup_teardown(ignored_without_a_word, setup, teardown),
      cmocka_unit_test_setup_teardown(each_connect_counts_once, setup, teardown),
      cmocka_unit_test_setup_teardown(the_token_sets_the_idle_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(a_v1_only_server_refuses_v2, setup_v1, teardown),
      cmocka_unit_test_setup_teardown(a_v2_only_server_refuses_v1, setup_v2, teardown),
      cmocka_unit_test(version_2_needs_a_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
