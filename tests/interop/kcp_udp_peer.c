/*
 * kcp_udp_peer: the kite half of the kcp-go interop test (ctest
 * interop_kcpgo, run by run_kcpgo_interop.sh against kcpgo_peer.go).
 *
 * kite's KCP engine over one UDP socket bound to 127.0.0.1, port 0, driven
 * the way a real owner drives it: poll() until the engine's next due time,
 * every datagram into kite__kcp_input(), kite__kcp_recv() drained, messages
 * queued while kite__kcp_send() has room, kite__kcp_flush() when due. The
 * first line on stdout is the bound port; the peer is whichever address
 * sends to it first.
 *
 * Both peers send N messages whose sizes and bytes derive from the index
 * and the direction (msg_size(), msg_byte(): identical in kcpgo_peer.go),
 * and both drop a seeded share of the datagrams they send and receive, so
 * retransmission and fast resend must work across the two implementations
 * (PROTOCOL.md section 3). Exit status 0 only when all N messages arrived
 * once, intact and in order, and the peer acknowledged all of ours; else
 * one line on stderr says why.
 *
 * usage: kcp_udp_peer [-n messages] [-l loss_percent] [-s seed] [-t timeout_s]
 */
#include "base/time.h"
#include "kcp/kcp.h"
#include "kite/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Shared with kcpgo_peer.go: change both or neither. */
#define PEER_CONV 0x11223344u
#define DIR_KITE_TO_GO 1u
#define DIR_GO_TO_KITE 2u
#define MSG_MAX 65536

#define WAIT_MAX_MS 10 /* poll() at least this often */
#define RX_BUDGET 64   /* datagrams read per wakeup */
/* Once done, keep answering (the peer may still miss our last acks) for
 * at least LINGER_MIN_MS and until the peer has been silent for
 * LINGER_QUIET_MS: a retransmission backoff needs many losses in a row to
 * stay silent that long. */
#define LINGER_MIN_MS 300
#define LINGER_QUIET_MS 1000
#define LINGER_MAX_MS 5000

typedef struct peer {
  int fd;
  struct sockaddr_in addr; /* the kcp-go peer, once it has spoken */
  bool have_addr;
  kite__kcp_pool *pool;
  kite__kcp *kcp;
  bool dead;

  uint32_t n, loss_pct;
  uint64_t rng_tx, rng_rx; /* separate streams: loss one way is not
                            * correlated with the other */
  uint32_t sent, received, built;
  uint64_t bytes_sent, bytes_received;
  uint64_t dgrams_out, dropped_out, send_errors;
  uint64_t dgrams_in, dropped_in, foreign_in;
  uint32_t last_rx_ms;

  uint8_t tx[MSG_MAX], rx[MSG_MAX];
} peer;

/* Message |i|: 1 byte to 60 KB, so single segments, the exact mss (1376)
 * and its first overflow, and messages of up to 44 fragments all cross. */
static size_t msg_size(uint32_t i) {
  switch (i % 10) {
  case 0:
    return 20000 + (i * 7919u) % 40001;
  case 1:
    return 1;
  case 2:
    return 1376;
  case 3:
    return 1377;
  case 4:
  case 5:
    return 1 + (i * 131u) % 200;
  default:
    return 1 + (i * 7919u) % 8000;
  }
}

/* Byte |j| of message |i| sent in direction |dir|: a hash, so a shifted,
 * swapped, repeated or reflected fragment does not match by accident. */
static uint8_t msg_byte(uint32_t dir, uint32_t i, uint32_t j) {
  uint32_t h = dir * 0x9E3779B9u ^ i * 0x85EBCA6Bu ^ j;
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  return (uint8_t)h;
}

/* splitmix64 */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

static bool lose(peer *p, uint64_t *rng) {
  return p->loss_pct && rng_next(rng) % 100 < p->loss_pct;
}

static uint32_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint32_t)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("kcp_udp_peer: FAIL: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return -1;
}

static void on_output(kite__kcp *kcp, const uint8_t *buf, size_t len,
                      void *user) {
  peer *p = user;
  p->dgrams_out++;
  if (lose(p, &p->rng_tx)) {
    p->dropped_out++;
    return;
  }
  /* A full socket buffer loses the datagram as the wire would: KCP
   * retransmits it, so count it and carry on. */
  if (sendto(p->fd, buf, len, 0, (const struct sockaddr *)&p->addr,
             sizeof(p->addr)) < 0)
    p->send_errors++;
}

static void on_dead(kite__kcp *kcp, void *user) {
  ((peer *)user)->dead = true;
}

static const kite__kcp_ops peer_ops = {on_output, on_dead};

static int open_socket(peer *p) {
  p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (p->fd < 0)
    return fail("socket() failed: %s", strerror(errno));
  /* Room for a whole window of 1400-byte datagrams and then some, so the
   * losses are (mostly) the seeded ones. Best effort. */
  int size = 1 << 20;
  setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof(sa);
  if (bind(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
    return fail("bind(127.0.0.1:0) failed: %s", strerror(errno));
  if (getsockname(p->fd, (struct sockaddr *)&sa, &sl) < 0)
    return fail("getsockname() failed: %s", strerror(errno));
  printf("%u\n", (unsigned)ntohs(sa.sin_port));
  fflush(stdout);
  return 0;
}

static int open_kcp(peer *p) {
  kite__kcp_pool_config pcfg;
  kite__kcp_pool_config_default(&pcfg);
  p->pool = kite__kcp_pool_create(&pcfg);
  if (!p->pool)
    return fail("kite__kcp_pool_create() failed");
  kite__kcp_config cfg;
  kite__kcp_config_default(&cfg); /* the defaults are what we test */
  int rc = kite__kcp_create(&p->kcp, PEER_CONV, &cfg, p->pool, &peer_ops, p);
  if (rc < 0)
    return fail("kite__kcp_create() failed: %s", kite_err_name(rc));
  return 0;
}

static void dump_head(const uint8_t *buf, size_t len) {
  fputs("kcp_udp_peer: datagram starts:", stderr);
  for (size_t i = 0; i < len && i < 32; i++)
    fprintf(stderr, " %02x", buf[i]);
  fputc('\n', stderr);
}

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b) {
  return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* Feeds up to RX_BUDGET waiting datagrams to the engine. */
static int read_datagrams(peer *p, uint32_t now) {
  for (int k = 0; k < RX_BUDGET; k++) {
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(p->fd, p->rx, sizeof(p->rx), 0,
                         (struct sockaddr *)&from, &fl);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      if (errno == EINTR || errno == ECONNREFUSED)
        continue;
      return fail("recvfrom() failed: %s", strerror(errno));
    }
    if (!p->have_addr && fl == sizeof(from) && from.sin_family == AF_INET) {
      p->addr = from;
      p->have_addr = true;
    }
    if (!p->have_addr || !same_addr(&from, &p->addr)) {
      p->foreign_in++; /* not our peer: never answered */
      continue;
    }
    p->dgrams_in++;
    p->last_rx_ms = now;
    if (lose(p, &p->rng_rx)) {
      p->dropped_in++;
      continue;
    }
    int rc = kite__kcp_input(p->kcp, p->rx, (size_t)n, now);
    if (rc < 0) {
      dump_head(p->rx, (size_t)n);
      return fail("kite__kcp_input() refused a %zd-byte datagram from kcp-go: "
                  "%s",
                  n, kite_err_name(rc));
    }
  }
  return 0;
}

/* Checks one received message against the pattern: exactly the next index,
 * exactly its size, every byte. */
static int check_message(peer *p, const uint8_t *buf, size_t len) {
  uint32_t i = p->received;
  if (i >= p->n)
    return fail("message %u received, but the peer sends only %u (a "
                "duplicate?)",
                i + 1, p->n);
  size_t want = msg_size(i);
  if (len != want)
    return fail("message %u: %zu bytes, expected %zu", i, len, want);
  for (size_t j = 0; j < len; j++) {
    uint8_t b = msg_byte(DIR_GO_TO_KITE, i, (uint32_t)j);
    if (buf[j] != b)
      return fail("message %u (%zu bytes): byte %zu is 0x%02x, expected "
                  "0x%02x",
                  i, len, j, buf[j], b);
  }
  p->received++;
  p->bytes_received += len;
  return 0;
}

static int deliver(peer *p) {
  for (;;) {
    int n = kite__kcp_recv(p->kcp, p->rx, sizeof(p->rx));
    if (n == KITE_EAGAIN)
      return 0;
    if (n < 0)
      return fail("kite__kcp_recv() failed after %u messages: %s", p->received,
                  kite_err_name(n));
    if (check_message(p, p->rx, (size_t)n) < 0)
      return -1;
  }
}

/* Queues messages while the engine takes them; KITE_EFULL means the send
 * queue is full until the peer acknowledges more: retry next turn. */
static int queue_messages(peer *p) {
  while (p->sent < p->n) {
    size_t len = msg_size(p->sent);
    if (p->built != p->sent) { /* build each message once, not per retry */
      for (size_t j = 0; j < len; j++)
        p->tx[j] = msg_byte(DIR_KITE_TO_GO, p->sent, (uint32_t)j);
      p->built = p->sent;
    }
    int rc = kite__kcp_send(p->kcp, p->tx, len);
    if (rc == KITE_EFULL)
      return 0;
    if (rc < 0)
      return fail("kite__kcp_send(message %u, %zu bytes) failed: %s", p->sent,
                  len, kite_err_name(rc));
    p->sent++;
    p->bytes_sent += len;
  }
  return 0;
}

/* How long poll() may sleep: until the engine is due, at most WAIT_MAX_MS
 * (the peer's datagrams wake us earlier). */
static int wait_ms(const peer *p, uint32_t now) {
  uint32_t due;
  if (!p->have_addr || !kite__kcp_next_due(p->kcp, now, &due))
    return WAIT_MAX_MS;
  int32_t d = kite__ms_diff(due, now);
  return d <= 0 ? 0 : d > WAIT_MAX_MS ? WAIT_MAX_MS : (int)d;
}

static void flush_if_due(peer *p, uint32_t now) {
  uint32_t due;
  /* Nowhere to send before the peer has spoken. */
  if (p->have_addr && kite__kcp_next_due(p->kcp, now, &due) &&
      kite__ms_reached(now, due))
    kite__kcp_flush(p->kcp, now);
}

static bool finished(const peer *p) {
  return p->received == p->n && p->sent == p->n &&
         kite__kcp_unacked(p->kcp) == 0;
}

static int run(peer *p, uint32_t timeout_ms) {
  uint32_t start = now_ms(), done_at = 0;
  bool done = false;
  for (;;) {
    uint32_t now = now_ms();
    if (kite__ms_diff(now, start) >= (int32_t)timeout_ms)
      return fail("timed out after %u ms: received %u/%u messages, sent %u, "
                  "unacked segments %u, peer %s",
                  timeout_ms, p->received, p->n, p->sent,
                  kite__kcp_unacked(p->kcp),
                  p->have_addr ? "known" : "never spoke");
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    if (poll(&pfd, 1, wait_ms(p, now)) < 0 && errno != EINTR)
      return fail("poll() failed: %s", strerror(errno));
    now = now_ms();
    if ((pfd.revents & POLLIN) && read_datagrams(p, now) < 0)
      return -1;
    if (deliver(p) < 0 || queue_messages(p) < 0)
      return -1;
    flush_if_due(p, now);
    if (p->dead)
      return fail("kite declared the link dead: received %u/%u, unacked %u",
                  p->received, p->n, kite__kcp_unacked(p->kcp));
    if (!done && finished(p)) {
      done = true;
      done_at = now;
    }
    if (done && kite__ms_diff(now, done_at) >= LINGER_MIN_MS &&
        (kite__ms_diff(now, p->last_rx_ms) >= LINGER_QUIET_MS ||
         kite__ms_diff(now, done_at) >= LINGER_MAX_MS))
      return (int32_t)(done_at - start);
  }
}

/* With loss injected, recovery must have been exercised, or the test did
 * not test what it claims. */
static int check_exercised(const peer *p, const kite__kcp_stats *st) {
  if (!p->loss_pct)
    return 0;
  if (!p->dropped_out || !p->dropped_in)
    return fail("loss injection dropped nothing (out %llu, in %llu)",
                (unsigned long long)p->dropped_out,
                (unsigned long long)p->dropped_in);
  if (!st->retransmits && !st->fast_retransmits)
    return fail("%u%% loss but kite never retransmitted", p->loss_pct);
  return 0;
}

static int parse_args(int argc, char **argv, peer *p, uint64_t *seed,
                      uint32_t *timeout_s) {
  int c;
  while ((c = getopt(argc, argv, "n:l:s:t:")) != -1) {
    unsigned long v = strtoul(optarg, NULL, 0);
    switch (c) {
    case 'n':
      p->n = (uint32_t)v;
      break;
    case 'l':
      p->loss_pct = (uint32_t)v;
      break;
    case 's':
      *seed = v;
      break;
    case 't':
      *timeout_s = (uint32_t)v;
      break;
    default:
      fprintf(stderr, "usage: %s [-n messages] [-l loss_percent] [-s seed] "
                      "[-t timeout_s]\n",
              argv[0]);
      return -1;
    }
  }
  if (p->n == 0 || p->loss_pct > 50 || *timeout_s == 0)
    return fail("need -n > 0, -l <= 50, -t > 0");
  return 0;
}

int main(int argc, char **argv) {
  static peer pr; /* 128 KB of buffers: not on the stack */
  peer *p = &pr;
  uint64_t seed = 1;
  uint32_t timeout_s = 20;
  p->n = 300;
  p->loss_pct = 10;
  p->built = UINT32_MAX;
  if (parse_args(argc, argv, p, &seed, &timeout_s) < 0)
    return 2;
  p->rng_tx = seed;
  p->rng_rx = seed ^ 0x5DEECE66Du;
  if (open_socket(p) < 0 || open_kcp(p) < 0)
    return 1;

  int ms = run(p, timeout_s * 1000);
  kite__kcp_stats st;
  kite__kcp_get_stats(p->kcp, &st);
  if (ms >= 0 && check_exercised(p, &st) < 0)
    ms = -1;
  if (ms >= 0)
    printf("kcp_udp_peer: OK: received %u messages (%llu bytes), sent %u "
           "(%llu bytes) in %d ms; retransmits %u timeout + %u fast; "
           "datagrams out %llu (dropped %llu, send errors %llu), in %llu "
           "(dropped %llu)\n",
           p->received, (unsigned long long)p->bytes_received, p->sent,
           (unsigned long long)p->bytes_sent, ms, st.retransmits,
           st.fast_retransmits, (unsigned long long)p->dgrams_out,
           (unsigned long long)p->dropped_out,
           (unsigned long long)p->send_errors,
           (unsigned long long)p->dgrams_in,
           (unsigned long long)p->dropped_in);
  fflush(stdout);
  kite__kcp_destroy(p->kcp);
  kite__kcp_pool_destroy(p->pool);
  close(p->fd);
  return ms >= 0 ? 0 : 1;
}
