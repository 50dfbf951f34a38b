/*
 * WebSocket and HTTP on the server's TCP port (issue 17, WEBSOCKET.md),
 * against a raw socket that writes every byte by hand:
 *  - the upgrade, OPEN and OPENED in binary messages, frames echoed (one
 *    of them fragmented across WebSocket frames), a ping, a kick (kite's
 *    close notice, then a close frame with status 1000), the transport
 *    the application sees;
 *  - refusals, each counted: a text frame (1003), an unmasked frame
 *    (1002), a message over ws_max_message (1009), a control frame over
 *    125 bytes (1002), an Origin off the allow-list (403), a head over
 *    http_head_max (431), a method other than GET (405), a head that never
 *    ends (the handshake deadline), an upgrade without an Origin (or an
 *    empty one) while ws_origins is set (403);
 *  - backpressure: a client that stops reading (as a stalled browser tab
 *    does) while the server floods it: sends get KITE_EFULL at
 *    tcp_send_max, counted, other sessions go on, and after tcp_stall_ms
 *    the session ends as a slow peer, as a TCP one does;
 *  - the static route: a file under http_root, 404 without it, and
 *    traversal ("..", "%2e%2e", a symlink out of the directory) refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"
#include "e2e_poll.h"

#include "base/clock.h"
#include "tcp_raw.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

enum { MSG_ECHO = 1, MSG_ITEM = 3, MSG_FLOOD = 4, MSG_KICK = 5 };

static atomic_int connects, disconnects, last_transport, last_reason;
static atomic_int flood_full; /* a MSG_FLOOD handler met KITE_EFULL */

typedef struct fixture {
  kite_server *srv;
  int port;
  char root[64];
} fixture;

static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)u;
  kite_session_info info;
  if (kite_session_get_info(s, id, &info) == 0)
    atomic_store(&last_transport, (int)info.transport);
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
  if (m == MSG_FLOOD) { /* sends until the connection's output is full */
    static const uint8_t big[1000];
    for (int i = 0; i < 100000; i++)
      if (kite_session_send(s, id, MSG_ITEM, big, sizeof(big)) == KITE_EFULL) {
        atomic_store(&flood_full, 1);
        break;
      }
    return;
  }
  kite_session_send(s, id, m, b, n);
  if (m == MSG_KICK)
    kite_session_close(s, id);
}

static void write_file(const char *dir, const char *name, const char *text) {
  char path[128];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Set by a setup that wants other limits than setup()'s own. */
static void (*tweak)(kite_server_config *cfg);

static int setup(void **state) {
  atomic_store(&connects, 0);
  atomic_store(&disconnects, 0);
  atomic_store(&last_transport, 0);
  atomic_store(&last_reason, -1);
  atomic_store(&flood_full, 0);
  fixture *f = calloc(1, sizeof(*f));
  strcpy(f->root, "/tmp/kite_ws_root_XXXXXX");
  assert_non_null(mkdtemp(f->root));
  write_file(f->root, "index.html", "<p>kite</p>\n");
  char sub[128], link[256], outside[256];
  snprintf(sub, sizeof(sub), "%s/www", f->root);
  assert_int_equal(mkdir(sub, 0700), 0);
  write_file(sub, "index.html", "<p>www</p>\n");
  write_file(f->root, "secret.txt", "secret\n");
  /* www/out -> ../secret.txt: a symlink, refused even inside the root */
  snprintf(link, sizeof(link), "%s/out", sub);
  snprintf(outside, sizeof(outside), "%s/secret.txt", f->root);
  assert_int_equal(symlink(outside, link), 0);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.handshake_timeout_ms = 400;
  cfg.max_frame = 4096;
  cfg.ws_max_message = 1024;
  cfg.http_head_max = 512;
  cfg.ws_origins = "http://good.example,https://also.example";
  cfg.http_root = sub;
  cfg.log_level = KITE_LOG_ERROR;
  cfg.on_connect = on_connect;
  cfg.on_disconnect = on_disconnect;
  cfg.on_message = on_message;
  if (tweak)
    tweak(&cfg);
  tweak = NULL;
  assert_int_equal(kite_server_create(&f->srv, &cfg), 0);
  assert_int_equal(kite_server_start(f->srv), 0);
  f->port = kite_server_tcp_port(f->srv);
  *state = f;
  return 0;
}

static void tweak_slow_peer(kite_server_config *cfg) {
  cfg->tcp_send_max = 65536;
  cfg->tcp_stall_ms = 300;
}

static int setup_slow_peer(void **state) {
  tweak = tweak_slow_peer;
  return setup(state);
}

static int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

/* Reads an HTTP head (to its blank line) into |out|; its length or -1. */
static int read_head(int fd, char *out, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    if (recv(fd, out + n, 1, 0) != 1)
      return -1;
    n++;
    out[n] = 0;
    if (n >= 4 && !memcmp(out + n - 4, "\r\n\r\n", 4))
      return (int)n;
  }
  return -1;
}

/* Sends |req| on a new connection whose receive buffer is |rcvbuf| bytes
 * (0: the kernel's default); returns the status of the answer (its head
 * in |head|). */
static int http_rcvbuf(const fixture *f, const char *req, char *head,
                       size_t cap, int *fd_out, int rcvbuf) {
  int fd = tcp_raw_connect(f->port, 5000, rcvbuf);
  assert_true(fd >= 0);
  assert_true(tcp_raw_write(fd, req, strlen(req)));
  int status = -1;
  if (read_head(fd, head, cap) > 0)
    sscanf(head, "HTTP/1.1 %d", &status);
  if (fd_out)
    *fd_out = fd;
  else
    close(fd);
  return status;
}

static int http(const fixture *f, const char *req, char *head, size_t cap,
                int *fd_out) {
  return http_rcvbuf(f, req, head, cap, fd_out, 0);
}

static const char *upgrade_req(const char *origin) {
  static char req[512];
  snprintf(req, sizeof(req),
           "GET /kite HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n", origin);
  return req;
}

/* One client frame: |masked| as a client must, or not. */
static void ws_frame(int fd, uint8_t op, bool fin, const void *p, size_t n,
                     bool masked) {
  uint8_t b[16 + 4096];
  size_t h = 0;
  b[h++] = (uint8_t)((fin ? 0x80 : 0) | op);
  uint8_t m = masked ? 0x80 : 0;
  if (n < 126) {
    b[h++] = m | (uint8_t)n;
  } else {
    b[h++] = m | 126;
    b[h++] = (uint8_t)(n >> 8);
    b[h++] = (uint8_t)n;
  }
  const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
  if (masked) {
    memcpy(b + h, key, 4);
    h += 4;
  }
  assert_true(n <= 4096);
  for (size_t i = 0; i < n; i++)
    b[h + i] = ((const uint8_t *)p)[i] ^ (masked ? key[i % 4] : 0);
  assert_true(tcp_raw_write(fd, b, h + n));
}

/* One server frame (never masked): its opcode, payload in |out|. */
static int ws_read(int fd, uint8_t *op, uint8_t *out, size_t cap) {
  uint8_t h[2];
  if (!tcp_raw_read(fd, h, 2) || (h[1] & 0x80))
    return -1;
  size_t n = h[1] & 0x7F;
  if (n == 126) {
    uint8_t e[2];
    if (!tcp_raw_read(fd, e, 2))
      return -1;
    n = (size_t)e[0] << 8 | e[1];
  } else if (n == 127) {
    return -1;
  }
  if (n > cap || !tcp_raw_read(fd, out, n))
    return -1;
  *op = h[0] & 0x0F;
  return (int)n;
}

/* A close frame with |code| comes (data before it skipped). */
static void expect_ws_close(int fd, uint16_t code) {
  uint8_t op = 0, buf[4096];
  int n;
  while ((n = ws_read(fd, &op, buf, sizeof(buf))) >= 0 && op != 0x8)
    ;
  assert_int_equal(op, 0x8);
  assert_true(n >= 2);
  assert_int_equal(buf[0] << 8 | buf[1], code);
}

/* Upgraded: the 101 read. */
static int ws_connect_rcvbuf(const fixture *f, int rcvbuf) {
  char head[512];
  int fd;
  assert_int_equal(http_rcvbuf(f, upgrade_req("http://good.example"), head,
                               sizeof(head), &fd, rcvbuf), 101);
  assert_non_null(strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  return fd;
}

static int ws_connect(const fixture *f) { return ws_connect_rcvbuf(f, 0); }

/* Upgraded, OPEN sent in a message, OPENED read from one. */
static int ws_open_rcvbuf(const fixture *f, int rcvbuf) {
  int fd = ws_connect_rcvbuf(f, rcvbuf);
  uint8_t b[64];
  int n = tcp_raw_ctrl(b, KITE__CTRL_OPEN, 0);
  ws_frame(fd, 0x2, true, b, (size_t)n, true);
  uint8_t op;
  n = ws_read(fd, &op, b, sizeof(b));
  assert_int_equal(n, 16);
  assert_int_equal(op, 0x2);
  kite__ctrl opened;
  assert_int_equal(kite__ctrl_decode(b, (size_t)n, &opened), 0);
  assert_int_equal(opened.type, KITE__CTRL_OPENED);
  assert_int_equal(opened.max_frame, 4096);
  return fd;
}

static int ws_open(const fixture *f) { return ws_open_rcvbuf(f, 0); }

static void read_kite_frame(int fd, uint16_t msg_id, const void *body,
                            size_t len) {
  uint8_t op, b[4096];
  int n = ws_read(fd, &op, b, sizeof(b));
  assert_int_equal(n, (int)(KITE__FRAME_HDR + len));
  assert_int_equal(op, 0x2);
  kite__frame_hdr h;
  kite__frame_hdr_decode(b, &h);
  assert_int_equal(h.msg_id, msg_id);
  assert_int_equal(h.len, len);
  assert_memory_equal(b + KITE__FRAME_HDR, body, len);
}

static void upgrade_echo_kick(void **state) {
  fixture *f = *state;
  int fd = ws_open(f);
  assert_true(WAIT_FOR(atomic_load(&connects) == 1, 2000));
  assert_int_equal(atomic_load(&last_transport), KITE_TRANSPORT_WS);
  /* One frame in one message. */
  uint8_t fr[64];
  size_t n = tcp_raw_frame(fr, MSG_ECHO, 0, "hello", 5, true);
  ws_frame(fd, 0x2, true, fr, n, true);
  read_kite_frame(fd, MSG_ECHO, "hello", 5);
  /* One frame cut over a fragmented message: 3 bytes, then the rest. */
  n = tcp_raw_frame(fr, MSG_ECHO, 0, "fragmented", 10, true);
  ws_frame(fd, 0x2, false, fr, 3, true);
  ws_frame(fd, 0x9, true, "p", 1, true); /* a ping between fragments */
  ws_frame(fd, 0x0, true, fr + 3, n - 3, true);
  uint8_t op, b[256];
  assert_int_equal(ws_read(fd, &op, b, sizeof(b)), 1);
  assert_int_equal(op, 0xA); /* the pong */
  read_kite_frame(fd, MSG_ECHO, "fragmented", 10);
  /* A kick: the reply, kite's close notice (4), then close 1000. */
  n = tcp_raw_frame(fr, MSG_KICK, 0, "bye", 3, true);
  ws_frame(fd, 0x2, true, fr, n, true);
  read_kite_frame(fd, MSG_KICK, "bye", 3);
  uint8_t reason = KITE_CLOSE_KICKED;
  read_kite_frame(fd, KITE__MSG_CLOSE_NOTICE, &reason, 1);
  expect_ws_close(fd, 1000);
  ws_frame(fd, 0x8, true, "\x03\xe8", 2, true);
  assert_int_equal(tcp_raw_expect_eof(fd), 0);
  close(fd);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 2000));
  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.ws_upgrades, 1);
  assert_int_equal(st.sessions_opened, 1);
  assert_int_equal(st.closed_kicked, 1);
}

static void frame_refusals(void **state) {
  fixture *f = *state;
  /* A text frame, after the OPEN: 1003, and the session closes. */
  int fd = ws_open(f);
  ws_frame(fd, 0x1, true, "hi", 2, true);
  expect_ws_close(fd, 1003);
  close(fd);
  assert_true(WAIT_FOR(e2e_stats(f->srv).ws_refused_text == 1, 2000));
  /* An unmasked frame, before the OPEN: 1002. */
  fd = ws_connect(f);
  ws_frame(fd, 0x2, true, "KITE", 4, false);
  expect_ws_close(fd, 1002);
  close(fd);
  assert_true(WAIT_FOR(e2e_stats(f->srv).ws_refused_proto == 1, 2000));
  /* A message over ws_max_message (1024), across fragments: 1009. */
  fd = ws_open(f);
  static uint8_t big[800];
  ws_frame(fd, 0x2, false, big, sizeof(big), true);
  ws_frame(fd, 0x0, true, big, sizeof(big), true);
  expect_ws_close(fd, 1009);
  close(fd);
  assert_true(WAIT_FOR(e2e_stats(f->srv).ws_refused_too_big == 1, 2000));
  /* A ping over 125 bytes: 1002. */
  fd = ws_open(f);
  ws_frame(fd, 0x9, true, big, 126, true);
  expect_ws_close(fd, 1002);
  close(fd);
  assert_true(WAIT_FOR(e2e_stats(f->srv).ws_refused_proto == 2, 2000));
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 3, 2000));
  assert_int_equal(e2e_stats(f->srv).sessions_opened, 3);
}

static void http_refusals(void **state) {
  fixture *f = *state;
  char head[1024];
  assert_int_equal(http(f, upgrade_req("http://evil.example"), head,
                        sizeof(head), NULL), 403);
  assert_int_equal(e2e_stats(f->srv).ws_refused_origin, 1);
  /* With ws_origins set, an upgrade that names no Origin (a non-browser
   * client) or an empty one is refused too, and counted the same way. */
  const char *no_origin =
      "GET /kite HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n";
  assert_int_equal(http(f, no_origin, head, sizeof(head), NULL), 403);
  assert_int_equal(e2e_stats(f->srv).ws_refused_origin, 2);
  assert_int_equal(http(f, upgrade_req(""), head, sizeof(head), NULL), 403);
  assert_int_equal(e2e_stats(f->srv).ws_refused_origin, 3);
  assert_int_equal(e2e_stats(f->srv).ws_upgrades, 0);
  char big[700];
  int k = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ");
  memset(big + k, 'a', 600 - (size_t)k);
  strcpy(big + 600, "\r\n\r\n"); /* a head of 604 bytes: over 512 */
  assert_int_equal(http(f, big, head, sizeof(head), NULL), 431);
  assert_int_equal(http(f, "GEX / HTTP/1.1\r\nHost: x\r\n\r\n", head,
                        sizeof(head), NULL), 405);
  assert_true(WAIT_FOR(e2e_stats(f->srv).http_refused == 2, 2000));
  /* A head that never ends: dropped at handshake_timeout_ms (400). */
  int fd = tcp_raw_connect(f->port, 5000, 0);
  const char *part = "GET / HTTP/1.1\r\nHost: x\r\n";
  assert_true(tcp_raw_write(fd, part, strlen(part)));
  assert_int_equal(tcp_raw_expect_eof(fd), 0);
  close(fd);
  assert_int_equal(e2e_stats(f->srv).halfopen_expired, 1);
  assert_int_equal(e2e_stats(f->srv).sessions_opened, 0);
}

/* A WebSocket client that stops reading while the server floods it. */
static void slow_reader_is_closed_and_bounded(void **state) {
  fixture *f = *state;
  int slow = ws_open_rcvbuf(f, 4096);
  int other = ws_open(f);
  uint8_t fr[64];
  size_t n = tcp_raw_frame(fr, MSG_FLOOD, 0, NULL, 0, true);
  ws_frame(slow, 0x2, true, fr, n, true);
  /* The sender hears KITE_EFULL: the queue stops at tcp_send_max. */
  assert_true(WAIT_FOR(atomic_load(&flood_full) == 1, 5000));
  assert_true(e2e_stats(f->srv).tcp_send_full >= 1);
  /* The shard is not stuck behind it: another session still echoes. */
  n = tcp_raw_frame(fr, MSG_ECHO, 0, "still", 5, true);
  ws_frame(other, 0x2, true, fr, n, true);
  read_kite_frame(other, MSG_ECHO, "still", 5);
  /* It reads nothing for tcp_stall_ms: closed as a slow peer. */
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 5000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_SLOW_PEER);
  assert_int_equal(e2e_stats(f->srv).closed_slow_peer, 1);
  ws_frame(other, 0x2, true, fr, n, true);
  read_kite_frame(other, MSG_ECHO, "still", 5);
  assert_int_equal(atomic_load(&disconnects), 1);
  close(slow);
  close(other);
}

static void static_files(void **state) {
  fixture *f = *state;
  char head[1024];
  int fd;
  assert_int_equal(http(f, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
                        head, sizeof(head), &fd), 200);
  assert_non_null(strstr(head, "Content-Length: 11\r\n"));
  assert_non_null(strstr(head, "text/html"));
  char body[16] = {0};
  assert_true(tcp_raw_read(fd, body, 11));
  assert_string_equal(body, "<p>www</p>\n");
  assert_int_equal(tcp_raw_expect_eof(fd), 0);
  close(fd);
  /* "/" is index.html */
  assert_int_equal(http(f, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", head,
                        sizeof(head), NULL), 200);
  /* Out of the directory: refused before the file system. */
  assert_int_equal(http(f, "GET /../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n",
                        head, sizeof(head), NULL), 403);
  assert_int_equal(http(f, "GET /%2e%2e/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n",
                        head, sizeof(head), NULL), 403);
  assert_int_equal(http(f, "GET /%2fetc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
                        head, sizeof(head), NULL), 403);
  /* A symlink, even to a file beside the root: 404. */
  assert_int_equal(http(f, "GET /out HTTP/1.1\r\nHost: x\r\n\r\n", head,
                        sizeof(head), NULL), 404);
  assert_int_equal(http(f, "GET /missing.js HTTP/1.1\r\nHost: x\r\n\r\n",
                        head, sizeof(head), NULL), 404);
  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.http_static_served, 2);
  assert_int_equal(st.http_not_found, 2);
  assert_int_equal(st.http_refused, 3);
  assert_int_equal(st.sessions, 0);
}

static void no_root_is_404(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.log_level = KITE_LOG_ERROR;
  fixture f = {0};
  assert_int_equal(kite_server_create(&f.srv, &cfg), 0);
  assert_int_equal(kite_server_start(f.srv), 0);
  f.port = kite_server_tcp_port(f.srv);
  char head[512];
  assert_int_equal(http(&f, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
                        head, sizeof(head), NULL), 404);
  assert_int_equal(e2e_stats(f.srv).http_not_found, 1);
  kite_server_destroy(f.srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(upgrade_echo_kick, setup, teardown),
      cmocka_unit_test_setup_teardown(frame_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(http_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(static_files, setup, teardown),
      cmocka_unit_test_setup_teardown(slow_reader_is_closed_and_bounded,
                                      setup_slow_peer, teardown),
      cmocka_unit_test(no_root_is_404),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
