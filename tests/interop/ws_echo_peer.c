/*
 * ws_echo_peer: the kite half of the WebSocket interop test (ctest
 * interop_ws_kitejs, driven by ws_kitejs.mjs): clients/js/kite.js over
 * Node's own WebSocket (undici, a browser-grade client) against kite's
 * WebSocket building blocks, before the server has a WebSocket transport.
 *
 * One connection on 127.0.0.1, port 0 (the first line on stdout): the
 * request head through kite__http_req (proto/http_req.h), the 101, then
 * kite__ws (net/ws.h) carrying kite's stream: OPEN answered with OPENED,
 * then frames cut by kite__frame_reader, each application frame echoed
 * with its msg_id and body (CRC set), pings answered, the client's close
 * notice noted. Exit status 0 when the client ended with its close notice
 * and a WebSocket close, after at least one echo; else one line on stderr
 * says why. Bounded by alarm(): a silent client cannot hold it.
 *
 * usage: ws_echo_peer [timeout_s]
 */
#include "kite/error.h"
#include "net/ws.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "proto/http_req.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct peer {
  int fd;
  kite__ws ws;
  kite__ws_stats st;
  kite__frame_reader reader;
  uint8_t open[KITE__CTRL_HDR];
  size_t open_have;
  int echoes, notice;
} peer;

static void die(const char *what) {
  fprintf(stderr, "ws_echo_peer: %s\n", what);
  exit(1);
}

static int write_all(int fd, const struct iovec *iov, int n) {
  struct iovec v[KITE__WS_IOV_MAX + 1];
  memcpy(v, iov, (size_t)n * sizeof(*iov));
  struct iovec *p = v;
  while (n > 0) {
    ssize_t w = writev(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return KITE_ESYS;
    while (n > 0 && (size_t)w >= p->iov_len) {
      w -= (ssize_t)p->iov_len;
      p++;
      n--;
    }
    if (n > 0) {
      p->iov_base = (uint8_t *)p->iov_base + w;
      p->iov_len -= (size_t)w;
    }
  }
  return 0;
}

static int on_write(void *user, const struct iovec *iov, int n) {
  return write_all(((peer *)user)->fd, iov, n);
}

static int send_frame(peer *p, uint16_t msg_id, uint16_t flags,
                      const uint8_t *body, uint32_t len) {
  uint8_t hdr[KITE__FRAME_HDR];
  kite__frame_header(hdr, msg_id, flags, body, len, true);
  struct iovec v[2] = {{hdr, sizeof(hdr)}, {(void *)(uintptr_t)body, len}};
  return kite__ws_send(&p->ws, v, len ? 2 : 1);
}

static int on_frame(void *user, const kite__frame_hdr *h, const uint8_t *body) {
  peer *p = user;
  if (h->msg_id == KITE__MSG_PING) {
    if (!(h->flags & KITE__FRAME_F_PONG) &&
        send_frame(p, 0, KITE__FRAME_F_PONG, body, h->len) != 0)
      die("pong not sent");
    return 0;
  }
  if (h->msg_id == KITE__MSG_CLOSE_NOTICE) {
    p->notice = h->len ? body[0] : 0;
    return 0;
  }
  if (send_frame(p, h->msg_id, 0, body, h->len) != 0)
    die("echo not sent");
  p->echoes++;
  return 0;
}

/* The stream inside the WebSocket messages: OPEN, then frames. */
static ptrdiff_t on_bytes(void *user, const uint8_t *data, size_t len) {
  peer *p = user;
  size_t off = 0;
  if (p->open_have < KITE__CTRL_HDR) {
    off = KITE__CTRL_HDR - p->open_have < len ? KITE__CTRL_HDR - p->open_have : len;
    memcpy(p->open + p->open_have, data, off);
    p->open_have += off;
    if (p->open_have < KITE__CTRL_HDR)
      return (ptrdiff_t)len;
    kite__ctrl k;
    if (kite__ctrl_decode(p->open, KITE__CTRL_HDR, &k) != 0 ||
        k.type != KITE__CTRL_OPEN)
      die("the stream does not start with OPEN");
    uint8_t opened[KITE__CTRL_MAX];
    kite__ctrl o = {.type = KITE__CTRL_OPENED, .idle_timeout_ms = 30000,
                    .max_frame = 65536};
    int n = kite__ctrl_encode(opened, sizeof(opened), &o);
    struct iovec v = {opened, (size_t)n};
    if (n <= 0 || kite__ws_send(&p->ws, &v, 1) != 0)
      die("OPENED not sent");
  }
  int why = 0;
  ptrdiff_t used = kite__frame_reader_feed(&p->reader, data + off, len - off,
                                           on_frame, p, &why);
  if (used < 0) {
    fprintf(stderr, "ws_echo_peer: %s\n", kite__frame_strerror(why));
    exit(1);
  }
  return (ptrdiff_t)len;
}

int main(int argc, char **argv) {
  alarm(argc > 1 ? (unsigned)atoi(argv[1]) : 30);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof(a);
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 ||
      listen(ls, 1) < 0 || getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
    die("cannot listen");
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);

  peer p = {.notice = -1};
  p.fd = accept(ls, NULL, NULL);
  if (p.fd < 0)
    die("accept failed");
  close(ls);

  /* The request head, then the 101 (or a refusal, and out). */
  static uint8_t buf[65536];
  kite__http_req req;
  kite__http_req_init(&req, NULL);
  size_t used = 0;
  ssize_t n;
  int rc = KITE_EAGAIN;
  while (rc == KITE_EAGAIN) {
    n = read(p.fd, buf, sizeof(buf));
    if (n <= 0)
      die("no request head");
    rc = kite__http_req_feed(&req, buf, (size_t)n, &used);
  }
  int status;
  if (rc != 0 || kite__http_req_verdict(&req, &status) != KITE__HTTP_UPGRADE)
    die("not a WebSocket upgrade");
  char resp[256];
  int rn = kite__http_resp_101(resp, sizeof(resp), req.key);
  struct iovec v = {resp, (size_t)rn};
  if (rn <= 0 || write_all(p.fd, &v, 1) != 0)
    die("101 not sent");

  if (kite__ws_init(&p.ws, 1u << 20, on_write, &p, &p.st) != 0)
    die("kite__ws_init failed");
  kite__frame_reader_init(&p.reader, 65536);
  size_t have = (size_t)n - used;
  memmove(buf, buf + used, have);
  for (;;) {
    ptrdiff_t r = kite__ws_feed(&p.ws, have ? buf : NULL, have, on_bytes, &p);
    if (r == KITE_ECLOSED)
      break;
    if (r < 0) {
      fprintf(stderr, "ws_echo_peer: refused, close code %u\n", p.ws.close_sent);
      return 1;
    }
    n = read(p.fd, buf, sizeof(buf));
    if (n <= 0)
      die("EOF before the WebSocket close");
    have = (size_t)n;
  }
  if (p.notice != 0 || p.echoes == 0)
    die("no close notice, or nothing echoed");
  fprintf(stderr, "ws_echo_peer: %d echoes, %llu messages in, %llu pongs\n",
          p.echoes, (unsigned long long)p.st.messages_in,
          (unsigned long long)p.st.pongs_out);
  kite__frame_reader_free(&p.reader);
  kite__ws_free(&p.ws);
  close(p.fd);
  return 0;
}
