/*
 * A server with two shards out of descriptors under a flood of TCP
 * connects (issue 13). The shards share one descriptor table, so the
 * slot one shard's spare frees for its EMFILE dance can be taken by the
 * other shard (or any thread) before its accept(): the connection then
 * stays queued and a level-triggered listener fires again at once. The
 * server must not spin (its CPU over an idle window stays far below a
 * core), must count no refusal it did not make, must answer every queued
 * connection once descriptors come back, and must then let every
 * legitimate client in. The first test takes the slot away for certain
 * (a soft limit below every descriptor held); the second floods until the
 * two shards race for it, which needs both to run at once.
 *
 * The server runs in a child with RLIMIT_NOFILE at 64 so that the
 * parent's descriptors and CPU are not its own; the parent reads the
 * child's CPU time from /proc and its counters through a pipe, and kills
 * it by PID whatever happens (the teardown, or SIGKILL if the parent
 * dies).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "base/clock.h"
#include "tcp_raw.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_NOFILE 64
#define BURST 200     /* connects a round, far beyond what 64 descriptors hold */
#define ROUNDS 5      /* bursts at most, until two shards have raced */
#define FLOOD (BURST * ROUNDS)
#define LEGIT 16      /* legitimate clients once descriptors are free */
#define WINDOW_MS 2000
#define CPU_BOUND_MS 400 /* 20% of a core over the window; a spin takes it all */

static pid_t child = -1;
static int to_child = -1, from_child = -1;
/* The parent's peers: closed by the teardown if a test fails first, so
 * the next child does not inherit them. */
static int peers[FLOOD + LEGIT];
static int npeers;

typedef struct report {
  kite_server_stats st;
  int64_t fds; /* descriptors open in the child, -1 when it could not look */
} report;

static void echo(kite_server *s, kite_session_id id, uint16_t m,
                 const uint8_t *b, size_t n, void *u) {
  (void)u;
  kite_session_send(s, id, m, b, n);
}

static int64_t count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1; /* the table is full */
  int64_t n = 0;
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own */
}

/* The child: a two-shard server with 64 descriptors. It writes its port,
 * then answers each byte from the parent: 's' with a report; 'l' and an
 * int by making that its soft descriptor limit, then a report; anything
 * else by stopping. */
static void run_server(int out, int in) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct rlimit rl = {CHILD_NOFILE, CHILD_NOFILE};
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
    _exit(2);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.idle_timeout_ms = 120000; /* the flood's sessions hold their descriptors */
  cfg.log_level = KITE_LOG_ERROR;
  cfg.on_message = echo;
  kite_server *srv;
  if (kite_server_create(&srv, &cfg) < 0 || kite_server_start(srv) < 0)
    _exit(3);
  int port = kite_server_tcp_port(srv);
  if (write(out, &port, sizeof(port)) != sizeof(port))
    _exit(4);
  char cmd;
  while (read(in, &cmd, 1) == 1 && (cmd == 's' || cmd == 'l')) {
    int limit;
    if (cmd == 'l') {
      if (read(in, &limit, sizeof(limit)) != sizeof(limit))
        _exit(6);
      rl.rlim_cur = (rlim_t)limit;
      if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        _exit(7);
    }
    report r;
    memset(&r, 0, sizeof(r));
    kite_server_stats_get(srv, &r.st);
    r.fds = count_fds();
    if (write(out, &r, sizeof(r)) != sizeof(r))
      _exit(5);
  }
  kite_server_destroy(srv);
  _exit(0);
}

static void ask(report *r) {
  assert_int_equal(write(to_child, "s", 1), 1);
  assert_int_equal(read(from_child, r, sizeof(*r)), sizeof(*r));
}

static void set_child_limit(int limit) {
  char cmd[1 + sizeof(int)] = {'l'};
  memcpy(cmd + 1, &limit, sizeof(int));
  assert_int_equal(write(to_child, cmd, sizeof(cmd)), sizeof(cmd));
  report r;
  assert_int_equal(read(from_child, &r, sizeof(r)), sizeof(r));
}

/* The child's user + system CPU time, all threads, in ms. */
static uint64_t child_cpu_ms(void) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)child);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  assert_true(n > 0);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the name may hold spaces */
  assert_non_null(p);
  unsigned long long ut = 0, st = 0;
  /* After the name: state, then 10 fields, then utime and stime. */
  int got = sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu",
                   &ut, &st);
  assert_int_equal(got, 2);
  return (ut + st) * 1000 / (uint64_t)sysconf(_SC_CLK_TCK);
}

static void start_child(int *port) {
  int up[2], down[2];
  assert_int_equal(pipe2(up, O_CLOEXEC), 0);
  assert_int_equal(pipe2(down, O_CLOEXEC), 0);
  child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    close(up[0]);
    close(down[1]);
    run_server(up[1], down[0]);
  }
  close(up[1]);
  close(down[0]);
  from_child = up[0];
  to_child = down[1];
  assert_int_equal(read(from_child, port, sizeof(*port)), sizeof(*port));
}

static int stop_child(void **state) {
  (void)state;
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  }
  child = -1;
  if (to_child >= 0)
    close(to_child);
  if (from_child >= 0)
    close(from_child);
  to_child = from_child = -1;
  for (int i = 0; i < npeers; i++)
    if (peers[i] >= 0)
      close(peers[i]);
  npeers = 0;
  return 0;
}

/* Connects |n| peers that each write OPEN and read nothing yet: those the
 * server takes hold a descriptor there, the rest wait in its backlogs or
 * are refused. */
static void flood(int port, int *fds, int n) {
  uint8_t open[KITE__CTRL_MAX];
  int len = tcp_raw_ctrl(open, KITE__CTRL_OPEN, 0);
  for (int i = 0; i < n; i++) {
    fds[i] = tcp_raw_connect(port, 5000, 0);
    npeers++;
    assert_true(fds[i] >= 0); /* the kernel completes it into a backlog */
    tcp_raw_write(fds[i], open, (size_t)len); /* may meet a refusal's reset */
  }
}

/* Closes each flood peer once the server has answered it (OPENED, or the
 * refusal's EOF or reset), until all are answered or |ms| pass. Closing
 * the answered frees the server's descriptors for those still queued.
 * Returns how many were never answered. */
static int drain(int *fds, int n, int ms) {
  struct pollfd *p = calloc((size_t)n, sizeof(*p));
  assert_non_null(p);
  int left = n;
  uint64_t end = kite__now_us() + (uint64_t)ms * 1000;
  while (left > 0 && kite__now_us() < end) {
    for (int i = 0; i < n; i++)
      p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    if (poll(p, (nfds_t)n, 100) <= 0)
      continue;
    for (int i = 0; i < n; i++)
      if (fds[i] >= 0 && p[i].revents) {
        close(fds[i]);
        fds[i] = -1;
        left--;
      }
  }
  free(p);
  return left;
}

/* A legitimate client: OPEN, OPENED, and one frame echoed. */
static bool legit(int fd) {
  kite__ctrl k;
  if (!tcp_raw_open(fd, &k))
    return false;
  uint8_t frame[32];
  uint32_t seq = 7, got = 0;
  size_t n = tcp_raw_frame(frame, 9, 0, &seq, 4, false);
  kite__frame_hdr h;
  return tcp_raw_write(fd, frame, n) &&
         tcp_raw_read_frame(fd, &h, &got, sizeof(got)) && got == seq;
}

/* The parent's descriptor limit fits the flood. */
static void parent_limit(void) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < FLOOD + 64) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= FLOOD + 64
                      ? FLOOD + 64
                      : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  assert_true(rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= FLOOD + 64);
}

/* The server's counters and descriptors as the test starts. */
static void baseline(report *r0) {
  ask(r0);
  print_message("child: %lld descriptors open of %d\n", (long long)r0->fds,
                CHILD_NOFILE);
  assert_true(r0->fds > 0 && r0->fds + LEGIT + 8 < CHILD_NOFILE);
}

/* The child's CPU over the window, with its counters after. */
static uint64_t watch_idle(int made, report *r) {
  uint64_t cpu0 = child_cpu_ms();
  usleep(WINDOW_MS * 1000);
  uint64_t cpu = child_cpu_ms() - cpu0;
  ask(r);
  print_message("starved: %d connects; cpu %llu ms over %d ms; accepted "
                "%llu, refused %llu, accept back-offs %llu\n",
                made, (unsigned long long)cpu, WINDOW_MS,
                (unsigned long long)r->st.tcp_accepted,
                (unsigned long long)r->st.tcp_refused_nofd,
                (unsigned long long)r->st.tcp_accept_backoffs);
  return cpu;
}

/* Descriptors come back: every queued flood connection is answered, the
 * server returns to its baseline, and every legitimate client gets in. */
static void recovers(int port, int *fds, int made, const report *r0) {
  report r;
  assert_int_equal(drain(fds, made, 30000), 0);
  uint64_t end = kite__now_us() + 20000000;
  do {
    ask(&r);
  } while ((r.st.sessions != 0 || r.fds < 0 || r.fds > r0->fds) &&
           kite__now_us() < end && usleep(10000) == 0);
  assert_int_equal(r.st.sessions, 0);
  assert_true(r.fds >= 0 && r.fds <= r0->fds);
  assert_int_equal(r.st.tcp_accepted + r.st.tcp_refused_nofd, made);

  int *lf = fds + made, in = 0;
  for (int i = 0; i < LEGIT; i++) {
    lf[i] = tcp_raw_connect(port, 5000, 0);
    npeers++;
    assert_true(lf[i] >= 0);
    in += legit(lf[i]);
  }
  for (int i = 0; i < LEGIT; i++) {
    close(lf[i]);
    lf[i] = -1;
  }
  ask(&r);
  print_message("legitimate clients in: %d of %d; refused in all %llu\n", in,
                LEGIT, (unsigned long long)r.st.tcp_refused_nofd);
  assert_int_equal(in, LEGIT);
  assert_int_equal(r.st.tcp_accepted + r.st.tcp_refused_nofd, made + LEGIT);
}

/* Deterministic: the soft limit dropped below every descriptor the child
 * holds, so no slot is free and a slot the server frees (its spare's) is
 * beyond the limit: exactly what the server sees when another thread
 * takes the slot first. No refusal is possible and none may be counted;
 * the shards must pause, not spin. Then the limit comes back. */
static void slot_taken_elsewhere_pauses_not_spins(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  parent_limit();
  int port = 0;
  start_child(&port);
  report r0, r;
  baseline(&r0);
  set_child_limit(3);
  int *fds = peers;
  flood(port, fds, BURST);
  /* Both shards have met it: each paused (or, before the fix, counted
   * refusals that never happened). */
  uint64_t end = kite__now_us() + 10000000;
  do {
    ask(&r);
  } while (r.st.tcp_accept_backoffs < 2 && r.st.tcp_refused_nofd == 0 &&
           kite__now_us() < end && usleep(10000) == 0);
  uint64_t cpu = watch_idle(BURST, &r);
  assert_true(cpu < CPU_BOUND_MS);
  assert_int_equal(r.st.tcp_accepted, 0);
  assert_int_equal(r.st.tcp_refused_nofd, 0);
  assert_true(r.st.tcp_accept_backoffs >= 2);
  /* Paused, not stopped: a few back-offs a second at most. */
  assert_true(r.st.tcp_accept_backoffs < 2 * 10 * (WINDOW_MS / 1000 + 10));
  set_child_limit(CHILD_NOFILE);
  recovers(port, fds, BURST, &r0);
}

/* The race itself: bursts until the shards have raced for a slot (a
 * back-off counted, or, before the fix, refusals that never happened), or
 * ROUNDS. After each, the server had real work: let it finish (its
 * counters stop moving, or a bound passes). Then watch it idle with its
 * table full and connections perhaps still queued. Whether two shards
 * race depends on both running at once: on a loaded machine they may
 * not, and the test above shows the same without a race. */
static void two_shards_out_of_descriptors_do_not_spin(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  parent_limit();
  int port = 0;
  start_child(&port);
  report r0, r;
  baseline(&r0);
  int *fds = peers;
  int made = 0;
  for (int round = 0; round < ROUNDS; round++) {
    /* Stopped, the server lets the burst pile up in both backlogs: when
     * it resumes, both shards accept at once, as under a real flood. */
    assert_int_equal(kill(child, SIGSTOP), 0);
    flood(port, fds + made, BURST);
    made += BURST;
    assert_int_equal(kill(child, SIGCONT), 0);
    ask(&r);
    uint64_t end = kite__now_us() + 2000000;
    for (uint64_t last = ~0ull; kite__now_us() < end;) {
      uint64_t seen = r.st.tcp_accepted + r.st.tcp_refused_nofd;
      if (seen == last)
        break;
      last = seen;
      usleep(200000);
      ask(&r);
    }
    if (r.st.tcp_accept_backoffs > 0 ||
        r.st.tcp_accepted + r.st.tcp_refused_nofd > (uint64_t)made)
      break;
  }
  uint64_t cpu = watch_idle(made, &r);
  assert_true(cpu < CPU_BOUND_MS);
  /* Each refusal is a connection taken and closed: never more than came. */
  assert_true(r.st.tcp_accepted + r.st.tcp_refused_nofd <= (uint64_t)made);
  recovers(port, fds, made, &r0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(slot_taken_elsewhere_pauses_not_spins,
                                stop_child),
      cmocka_unit_test_teardown(two_shards_out_of_descriptors_do_not_spin,
                                stop_child),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
