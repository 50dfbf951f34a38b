/*
 * kcp_bench: what kite's KCP engine costs per message, and what an idle
 * session costs in memory.
 *
 *   kcp_bench [--quick] [--msgs N] [--reps N]
 *
 * Two engines, A and B, with kite's default config, each on its own pool,
 * talk through an in-memory link on a simulated clock (1 ms per wake-up,
 * never a sleep). A sends 64-byte messages in batches, the way a shard
 * does: sends, then inputs, recv loops and a flush whenever
 * kite__kcp_next_due() says one is due. B verifies every message (count,
 * order, content) and the run aborts on the first mismatch, on a dead link
 * or on a stall: a broken run is never reported as a figure.
 *
 * Lines printed:
 *   baseline   the same messages through the same link with no KCP at all
 *              (one datagram per message), measured in the same run, so
 *              KCP's cost is also stated as a ratio;
 *   kcp 0%     in-memory link, no loss;
 *   kcp 10%    tests/sim's seeded link, 10% loss each way, delay + jitter;
 *   idle       heap per idle session: sessions that have sent and received
 *              a message, with everything acknowledged (mallinfo2);
 * and last, for scripts:
 *   kcp_bench ns_per_msg=N bytes_per_idle_session=N
 *
 * Wall time is CLOCK_MONOTONIC, CPU time CLOCK_PROCESS_CPUTIME_ID; each is
 * the best of --reps repetitions, baseline and KCP runs interleaved so that
 * a noisy neighbour slows both alike.
 */
#include "base/time.h"
#include "kcp/kcp.h"
#include "kcp/kcp_pool.h"
#include "kite/error.h"
#include "sim_link.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MSG_SIZE 64
#define BATCH 64        /* sends per wake-up */
#define BENCH_MTU 1400  /* kite's default mtu: the largest datagram */
#define FIFO_SLOTS 1024 /* datagrams the in-memory link holds */
#define STALL_MS 30000  /* simulated time without progress: a stall */
#define LOSS_SEED 1
#define LOSS_DELAY_MS 5
#define LOSS_JITTER_MS 4

/* Each measured run stays a function of its own, so callgrind can give
 * its inclusive instruction count (docs/BENCHMARKS.md). */
#if defined(__GNUC__)
#define BENCH_NOINLINE __attribute__((noinline))
#else
#define BENCH_NOINLINE
#endif

static _Noreturn void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("kcp_bench: FAILED: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Message |seq|: its number, then words that depend on it, so a message
 * delivered twice, out of order or torn is caught by content alone. Word
 * stores, so that checking stays a small part of the baseline. */
static void msg_fill(uint8_t *p, uint64_t seq) {
  uint64_t w = seq;
  for (size_t i = 0; i < MSG_SIZE; i += sizeof(w)) {
    memcpy(p + i, &w, sizeof(w));
    w = w * 0x9E3779B97F4A7C15ull + i;
  }
}

static void msg_check(const uint8_t *p, int len, uint64_t want) {
  uint8_t expect[MSG_SIZE];
  if (len != MSG_SIZE)
    die("message %" PRIu64 ": %d bytes, want %d", want, len, MSG_SIZE);
  msg_fill(expect, want);
  if (memcmp(p, expect, MSG_SIZE) != 0) {
    uint64_t seq;
    memcpy(&seq, p, sizeof(seq));
    die("message %" PRIu64 ": got message %" PRIu64 " or corrupt content", want,
        seq);
  }
}

/*
 * The link: a FIFO of datagram slots (no loss, no delay: the cheapest
 * link there is, so the engine's own cost shows), or tests/sim's seeded
 * link. Either way each datagram is copied in and copied out, as a socket
 * would.
 */
typedef struct fifo_slot {
  uint32_t len;
  uint8_t data[BENCH_MTU];
} fifo_slot;

typedef struct bench_link {
  sim_link *sim; /* NULL: the FIFO */
  fifo_slot *slots;
  uint32_t head, tail; /* free-running, masked on use */
  uint64_t sent;
} bench_link;

static void link_init(bench_link *l, const sim_link_config *sim) {
  memset(l, 0, sizeof(*l));
  if (sim) {
    if (!(l->sim = sim_link_create(sim)))
      die("sim_link_create: out of memory");
  } else if (!(l->slots = malloc(FIFO_SLOTS * sizeof(fifo_slot)))) {
    die("link: out of memory");
  }
}

static void link_free(bench_link *l) {
  sim_link_destroy(l->sim);
  free(l->slots);
}

static void link_send(bench_link *l, const uint8_t *buf, size_t len,
                      uint32_t now) {
  l->sent++;
  if (l->sim) {
    sim_link_send(l->sim, buf, len, now);
    return;
  }
  if (l->tail - l->head == FIFO_SLOTS)
    die("in-memory link full (%d datagrams)", FIFO_SLOTS);
  if (len > BENCH_MTU)
    die("datagram of %zu bytes, above the mtu", len);
  fifo_slot *s = &l->slots[l->tail++ % FIFO_SLOTS];
  s->len = (uint32_t)len;
  memcpy(s->data, buf, len);
}

static int link_recv(bench_link *l, uint32_t now, uint8_t *buf, size_t cap) {
  if (l->sim)
    return sim_link_recv(l->sim, now, buf, cap);
  if (l->head == l->tail)
    return -1;
  const fifo_slot *s = &l->slots[l->head++ % FIFO_SLOTS];
  size_t n = s->len < cap ? s->len : cap;
  memcpy(buf, s->data, n);
  return (int)n;
}

static bool link_empty(const bench_link *l) {
  uint32_t when;
  return l->sim ? !sim_link_next(l->sim, &when) : l->head == l->tail;
}

/* One engine and its end of the link. */
typedef struct peer {
  kite__kcp *kcp;
  bench_link *in, *out;
  uint32_t now;    /* the wake-up being served, for the output callback */
  uint64_t expect; /* the next message this end must receive */
  bool echo;       /* answer message n with message n + 1 */
} peer;

static void on_output(kite__kcp *kcp, const uint8_t *buf, size_t len,
                      void *user) {
  peer *p = user;
  link_send(p->out, buf, len, p->now);
}

static void on_dead(kite__kcp *kcp, void *user) {
  peer *p = user;
  die("conv %" PRIu32 " declared the link dead at t=%" PRIu32 " ms "
      "(%" PRIu32 " segments unacked)",
      kite__kcp_conv(kcp), p->now, kite__kcp_unacked(kcp));
}

static const kite__kcp_ops peer_ops = {on_output, on_dead};

static bool peer_due(const peer *p, uint32_t now) {
  uint32_t due;
  return kite__kcp_next_due(p->kcp, now, &due) && kite__ms_reached(now, due);
}

/* One wake-up of one end: every datagram due, every whole message, then
 * a flush if the engine asks for one. */
static void peer_pump(peer *p, uint32_t now) {
  uint8_t buf[BENCH_MTU];
  int n;
  p->now = now;
  while ((n = link_recv(p->in, now, buf, sizeof(buf))) >= 0) {
    int rc = kite__kcp_input(p->kcp, buf, (size_t)n, now);
    if (rc != 0)
      die("input at t=%" PRIu32 ": %s", now, kite_err_name(rc));
  }
  while ((n = kite__kcp_recv(p->kcp, buf, sizeof(buf))) != KITE_EAGAIN) {
    if (n < 0)
      die("recv at t=%" PRIu32 ": %s", now, kite_err_name(n));
    msg_check(buf, n, p->expect++);
    if (p->echo) {
      msg_fill(buf, p->expect);
      int rc = kite__kcp_send(p->kcp, buf, MSG_SIZE);
      if (rc != 0)
        die("echo at t=%" PRIu32 ": %s", now, kite_err_name(rc));
    }
  }
  if (peer_due(p, now))
    kite__kcp_flush(p->kcp, now);
}

static kite__kcp_pool *pool_new(void) {
  kite__kcp_pool_config cfg;
  kite__kcp_pool_config_default(&cfg);
  kite__kcp_pool *pool = kite__kcp_pool_create(&cfg);
  if (!pool)
    die("kite__kcp_pool_create: out of memory");
  return pool;
}

static kite__kcp *kcp_new(uint32_t conv, kite__kcp_pool *pool, peer *p) {
  kite__kcp_config cfg;
  kite__kcp *kcp;
  kite__kcp_config_default(&cfg);
  int rc = kite__kcp_create(&kcp, conv, &cfg, pool, &peer_ops, p);
  if (rc != 0)
    die("kite__kcp_create: %s", kite_err_name(rc));
  return kcp;
}

typedef struct timing {
  uint64_t wall_ns, cpu_ns;
} timing;

static void timing_best(timing *best, const timing *t) {
  if (best->wall_ns == 0 || t->wall_ns < best->wall_ns)
    best->wall_ns = t->wall_ns;
  if (best->cpu_ns == 0 || t->cpu_ns < best->cpu_ns)
    best->cpu_ns = t->cpu_ns;
}

/* The baseline: each message copied into its own datagram, through the
 * in-memory link, and verified on the other side. */
static BENCH_NOINLINE void run_baseline(uint64_t msgs, timing *t,
                                        uint64_t *datagrams) {
  bench_link link;
  uint8_t msg[MSG_SIZE], buf[BENCH_MTU];
  uint64_t sent = 0, got = 0;
  uint32_t now = 1;
  link_init(&link, NULL);
  uint64_t wall0 = clock_ns(CLOCK_MONOTONIC);
  uint64_t cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  while (got < msgs) {
    for (int i = 0; i < BATCH && sent < msgs; i++) {
      msg_fill(msg, sent++);
      link_send(&link, msg, MSG_SIZE, now);
    }
    int n;
    while ((n = link_recv(&link, now, buf, sizeof(buf))) >= 0)
      msg_check(buf, n, got++);
    now++;
  }
  t->wall_ns = clock_ns(CLOCK_MONOTONIC) - wall0;
  t->cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
  *datagrams = link.sent;
  link_free(&link);
}

typedef struct kcp_run {
  timing t;
  uint32_t sim_ms;
  uint64_t datagrams_ab, datagrams_ba;
  uint64_t link_dropped;
  kite__kcp_stats a, b;
  uint64_t stale;        /* late copies dropped, a window behind */
  uint64_t acks_dropped; /* acks not sent: the ack chunk was full */
} kcp_run;

/* An honest peer on a link that only drops, delays and reorders trips
 * none of the pool's refusal counters but these: a retransmitted copy, or
 * a duplicate ack, that arrives after its side moved a whole window past it
 * (in_out_of_window, in_stale_ack), dropped since una already said it all;
 * and acks_dropped, when more segments arrive between two flushes than one
 * ack chunk holds (the sender retransmits). Any other is a bug in the
 * engine, or in this benchmark. Adds the benign ones to |r|. */
static void pool_check(const kite__kcp_pool *pool, const char *name,
                       kcp_run *r) {
  const kite__kcp_pool_stats *s = &pool->stats;
  struct {
    const char *what;
    uint64_t n;
  } bad[] = {
      {"in_short", s->in_short},         {"in_bad_conv", s->in_bad_conv},
      {"in_bad_len", s->in_bad_len},     {"in_bad_cmd", s->in_bad_cmd},
      {"in_bad_frg", s->in_bad_frg},     {"in_bad_una", s->in_bad_una},
      {"in_bad_ack", s->in_bad_ack},     {"in_no_buffer", s->in_no_buffer},
      {"in_dead", s->in_dead},           {"send_no_buffer", s->send_no_buffer},
      {"recv_bad_frg", s->recv_bad_frg},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (bad[i].n)
      die("pool %s counted %" PRIu64 " %s on an honest link", name, bad[i].n,
          bad[i].what);
  r->stale += s->in_out_of_window + s->in_stale_ack;
  r->acks_dropped += s->acks_dropped;
}

/* A sends |msgs| messages to B over the FIFO (|sim| NULL) or the seeded
 * link (one per direction, seeds apart), until B has them all and A has
 * every ack, with both engines idle. */
static void run_kcp(uint64_t msgs, const sim_link_config *sim, kcp_run *r) {
  bench_link ab, ba;
  sim_link_config sim_ba;
  if (sim) {
    sim_ba = *sim;
    sim_ba.seed = sim->seed + 1;
  }
  link_init(&ab, sim);
  link_init(&ba, sim ? &sim_ba : NULL);
  kite__kcp_pool *pool_a = pool_new(), *pool_b = pool_new();
  peer a = {.in = &ba, .out = &ab}, b = {.in = &ab, .out = &ba};
  a.kcp = kcp_new(0x4b495445, pool_a, &a);
  b.kcp = kcp_new(0x4b495445, pool_b, &b);
  uint8_t msg[MSG_SIZE];
  uint64_t sent = 0, progress = 0;
  uint32_t now = 1, progress_at = now;

  uint64_t wall0 = clock_ns(CLOCK_MONOTONIC);
  uint64_t cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  for (;;) {
    for (int i = 0; i < BATCH && sent < msgs; i++) {
      msg_fill(msg, sent);
      int rc = kite__kcp_send(a.kcp, msg, MSG_SIZE);
      if (rc == KITE_EFULL)
        break; /* the send queue is full: retry at the next wake-up */
      if (rc != 0)
        die("send at t=%" PRIu32 ": %s", now, kite_err_name(rc));
      sent++;
    }
    peer_pump(&a, now);
    peer_pump(&b, now);
    uint64_t acked = sent - kite__kcp_unacked(a.kcp);
    if (b.expect + acked != progress) {
      progress = b.expect + acked;
      progress_at = now;
    } else if (kite__ms_diff(now, progress_at) > STALL_MS) {
      die("stalled at t=%" PRIu32 " ms: %" PRIu64 " of %" PRIu64
          " delivered, %" PRIu32 " unacked, A due %d, B due %d",
          now, b.expect, msgs, kite__kcp_unacked(a.kcp), peer_due(&a, now),
          peer_due(&b, now));
    }
    now++;
    if (sent == msgs && b.expect == msgs && kite__kcp_unacked(a.kcp) == 0 &&
        !peer_due(&a, now) && !peer_due(&b, now) && link_empty(&ab) &&
        link_empty(&ba))
      break;
  }
  r->t.wall_ns = clock_ns(CLOCK_MONOTONIC) - wall0;
  r->t.cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;

  uint32_t due;
  if (kite__kcp_next_due(a.kcp, now, &due) ||
      kite__kcp_next_due(b.kcp, now, &due))
    die("an engine still has work due once everything was acknowledged");
  kite__kcp_get_stats(a.kcp, &r->a);
  kite__kcp_get_stats(b.kcp, &r->b);
  if (r->b.bytes_received != msgs * MSG_SIZE)
    die("B received %" PRIu64 " bytes, want %" PRIu64, r->b.bytes_received,
        msgs * MSG_SIZE);
  if (pool_a->stats.segs_used || pool_b->stats.segs_used ||
      pool_a->stats.rings_used || pool_b->stats.rings_used)
    die("idle engines still hold segments (%" PRIu32 ", %" PRIu32
        ") or rings (%" PRIu32 ", %" PRIu32 ")",
        pool_a->stats.segs_used, pool_b->stats.segs_used,
        pool_a->stats.rings_used, pool_b->stats.rings_used);
  r->sim_ms = now - 1;
  r->datagrams_ab = ab.sent;
  r->datagrams_ba = ba.sent;
  r->link_dropped = sim ? sim_link_get_stats(ab.sim)->dropped +
                              sim_link_get_stats(ba.sim)->dropped
                        : 0;
  r->stale = 0;
  r->acks_dropped = 0;
  pool_check(pool_a, "A", r);
  pool_check(pool_b, "B", r);
  kite__kcp_destroy(a.kcp);
  kite__kcp_destroy(b.kcp);
  kite__kcp_pool_destroy(pool_a);
  kite__kcp_pool_destroy(pool_b);
  link_free(&ab);
  link_free(&ba);
}

static BENCH_NOINLINE void run_kcp_clean(uint64_t msgs, kcp_run *r) {
  run_kcp(msgs, NULL, r);
}

static BENCH_NOINLINE void
run_kcp_lossy(uint64_t msgs, const sim_link_config *sim, kcp_run *r) {
  run_kcp(msgs, sim, r);
}

/* Heap bytes in use, mmapped blocks included. */
static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

typedef struct idle_run {
  size_t per_session; /* heap held by the blocks themselves, per block */
  size_t total;       /* all the heap the sessions took, pool included */
  size_t pool_kept;   /* slabs and rings the pool keeps on its free lists */
  bool seen;          /* mallinfo2() saw the allocations */
} idle_run;

/* One message each way: the client sends, the server answers in the
 * datagram that carries its ack; then the client's ack. Both end idle. */
static void idle_exchange(peer *srv, peer *cli, uint64_t seq, uint32_t now) {
  uint8_t msg[MSG_SIZE];
  srv->expect = seq;
  srv->echo = true;
  cli->expect = seq + 1;
  msg_fill(msg, seq);
  if (kite__kcp_send(cli->kcp, msg, MSG_SIZE) != 0)
    die("idle: client send refused");
  for (int round = 0; round < 4; round++) {
    peer_pump(cli, now);
    peer_pump(srv, now);
    if (srv->expect == seq + 1 && cli->expect == seq + 2 &&
        !peer_due(srv, now) && !peer_due(cli, now) && link_empty(srv->in) &&
        link_empty(cli->in))
      return;
  }
  die("idle: session %" PRIu32 " did not settle", kite__kcp_conv(srv->kcp));
}

/* |n| server blocks on one pool, each having exchanged a message with a
 * client; the clients live on another pool, one at a time, so that only
 * the servers' memory is counted. Sessions are served one after another,
 * so the pool's free lists hold what one active session needed. */
static BENCH_NOINLINE void run_idle(uint32_t n, idle_run *r) {
  bench_link c2s, s2c;
  link_init(&c2s, NULL);
  link_init(&s2c, NULL);
  peer *srv = calloc(n, sizeof(*srv));
  if (!srv)
    die("idle: out of memory");
  kite__kcp_pool *pool_s = pool_new(), *pool_c = pool_new();
  peer cli = {.in = &s2c, .out = &c2s};
  uint32_t now = 1;

  /* Warm the client pool, so its free lists are in place before counting. */
  peer warm = {.in = &c2s, .out = &s2c};
  warm.kcp = kcp_new(0, pool_c, &warm);
  cli.kcp = kcp_new(0, pool_c, &cli);
  idle_exchange(&warm, &cli, 0, now++);
  kite__kcp_destroy(cli.kcp);
  kite__kcp_destroy(warm.kcp);

  size_t before = heap_in_use();
  for (uint32_t i = 0; i < n; i++) {
    peer *s = &srv[i];
    s->in = &c2s;
    s->out = &s2c;
    s->kcp = kcp_new(i + 1, pool_s, s);
    cli.kcp = kcp_new(i + 1, pool_c, &cli);
    idle_exchange(s, &cli, 2 * (uint64_t)(i + 1), now++);
    kite__kcp_destroy(cli.kcp);
  }
  size_t idle = heap_in_use();
  for (uint32_t i = 0; i < n; i++) {
    uint32_t due;
    if (kite__kcp_unacked(srv[i].kcp) != 0 ||
        kite__kcp_next_due(srv[i].kcp, now, &due))
      die("idle: session %" PRIu32 " is not idle", i);
  }
  if (pool_s->stats.segs_used || pool_s->stats.rings_used)
    die("idle: %" PRIu32 " segments and %" PRIu32 " rings held by idle blocks",
        pool_s->stats.segs_used, pool_s->stats.rings_used);
  for (uint32_t i = 0; i < n; i++)
    kite__kcp_destroy(srv[i].kcp);
  size_t after = heap_in_use();

  /* A sanitizer's allocator bypasses glibc's arenas, so mallinfo2() sees
   * nothing: report 0 rather than a difference of unrelated numbers. */
  r->seen = idle > after && after >= before;
  r->total = r->seen ? idle - before : 0;
  r->per_session = r->seen ? (idle - after + n / 2) / n : 0;
  r->pool_kept = r->seen ? after - before : 0;
  kite__kcp_pool_destroy(pool_s);
  kite__kcp_pool_destroy(pool_c);
  free(srv);
  link_free(&c2s);
  link_free(&s2c);
}

static uint64_t per_msg(uint64_t ns, uint64_t msgs) {
  return (ns + msgs / 2) / msgs;
}

static uint64_t parse_count(const char *opt, const char *s) {
  char *end;
  unsigned long long v = s ? strtoull(s, &end, 10) : 0;
  if (!s || *end || v == 0 || v > 1000000000ull)
    die("%s wants a count from 1 to 1e9", opt);
  return v;
}

int main(int argc, char **argv) {
  uint64_t msgs = 2000000, loss_msgs = 200000;
  uint32_t sessions = 100000;
  int reps = 7;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      msgs = 100000;
      loss_msgs = 20000;
      sessions = 10000;
      reps = 2;
    } else if (strcmp(argv[i], "--msgs") == 0) {
      msgs = parse_count("--msgs", ++i < argc ? argv[i] : NULL);
      loss_msgs = msgs / 10 > 1000 ? msgs / 10 : 1000;
    } else if (strcmp(argv[i], "--reps") == 0) {
      reps = (int)parse_count("--reps", ++i < argc ? argv[i] : NULL);
    } else {
      fprintf(stderr, "usage: %s [--quick] [--msgs N] [--reps N]\n", argv[0]);
      return 2;
    }
  }

  printf("kcp_bench: %d-byte messages A->B, %d sends per 1 ms wake-up, "
         "kite's default engine config; best of %d (wall, process CPU)\n",
         MSG_SIZE, BATCH, reps);
  fflush(stdout);

  timing base = {0, 0}, kcp = {0, 0};
  uint64_t base_datagrams = 0;
  kcp_run r0;
  for (int rep = 0; rep < reps; rep++) {
    timing t;
    run_baseline(msgs, &t, &base_datagrams);
    timing_best(&base, &t);
    run_kcp_clean(msgs, &r0);
    timing_best(&kcp, &r0.t);
  }
  uint64_t base_ns = per_msg(base.wall_ns, msgs);
  uint64_t kcp_ns = per_msg(kcp.wall_ns, msgs);
  printf("baseline   no KCP, in-memory link, %" PRIu64 " msgs: %" PRIu64
         " ns/msg wall, %" PRIu64 " ns/msg CPU (%" PRIu64 " datagrams)\n",
         msgs, base_ns, per_msg(base.cpu_ns, msgs), base_datagrams);
  printf("kcp 0%%     in-memory link, %" PRIu64 " msgs: %" PRIu64
         " ns/msg wall = %.1fx baseline (+%" PRIu64 " ns), %" PRIu64
         " ns/msg CPU; datagrams %" PRIu64 " A->B, %" PRIu64
         " B->A; retransmits %" PRIu32 "; all %" PRIu64 " arrived in order\n",
         msgs, kcp_ns, (double)kcp.wall_ns / (double)base.wall_ns,
         kcp_ns > base_ns ? kcp_ns - base_ns : 0, per_msg(kcp.cpu_ns, msgs),
         r0.datagrams_ab, r0.datagrams_ba,
         r0.a.retransmits + r0.a.fast_retransmits, msgs);
  fflush(stdout);

  sim_link_config lossy = {.seed = LOSS_SEED,
                           .loss = 0.10,
                           .delay_ms = LOSS_DELAY_MS,
                           .jitter_ms = LOSS_JITTER_MS};
  timing loss = {0, 0};
  kcp_run r10, first;
  for (int rep = 0; rep < reps; rep++) {
    run_kcp_lossy(loss_msgs, &lossy, &r10);
    timing_best(&loss, &r10.t);
    if (rep == 0)
      first = r10;
    else if (r10.a.retransmits != first.a.retransmits ||
             r10.a.fast_retransmits != first.a.fast_retransmits ||
             r10.sim_ms != first.sim_ms)
      die("10%% loss: repetition %d differs from the first on the same seed",
          rep);
  }
  printf("kcp 10%%    sim_link seed=%d, 10%% loss each way, %d + 0..%d ms "
         "delay, %" PRIu64 " msgs: %" PRIu64 " ns/msg wall, %" PRIu64
         " ns/msg CPU; retransmits %" PRIu32 " on timeout + %" PRIu32
         " fast, %" PRIu64 " data segments in all; datagrams %" PRIu64
         " A->B, %" PRIu64 " B->A, %" PRIu64 " lost; %" PRIu64
         " late copies and %" PRIu64 " acks dropped; %.1f s simulated; "
         "all %" PRIu64 " arrived in order\n",
         LOSS_SEED, LOSS_DELAY_MS, LOSS_JITTER_MS, loss_msgs,
         per_msg(loss.wall_ns, loss_msgs), per_msg(loss.cpu_ns, loss_msgs),
         r10.a.retransmits, r10.a.fast_retransmits, r10.a.segs_sent,
         r10.datagrams_ab, r10.datagrams_ba, r10.link_dropped, r10.stale,
         r10.acks_dropped, r10.sim_ms / 1000.0, loss_msgs);
  fflush(stdout);

  idle_run idle;
  run_idle(sessions, &idle);
  printf("idle       %" PRIu32 " sessions on one pool, one message each way, "
         "all acked: %zu B heap per idle session (kite__kcp_sizeof() = %zu B); "
         "the pool keeps %zu B on its free lists (%zu B per session all "
         "told)%s\n",
         sessions, idle.per_session, kite__kcp_sizeof(), idle.pool_kept,
         (idle.total + sessions / 2) / sessions,
         idle.seen ? "" : " [mallinfo2() saw no allocations: sanitizer?]");

  printf("kcp_bench ns_per_msg=%" PRIu64 " bytes_per_idle_session=%zu\n",
         kcp_ns, idle.per_session);
  return 0;
}
