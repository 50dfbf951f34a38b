/*
 * A server with two shards out of descriptors under a flood of TCP
 * connects (issue 13). The shards share one descriptor table, so the
 * spare one shard gives up for its EMFILE dance can be taken by the other
 * shard before its accept(): the connection then stays queued and a
 * level-triggered listener fires again at once. The server must not spin
 * (its CPU over an idle window stays far below a core), must count no
 * refusal it did not make, must answer every queued connection once
 * descriptors come back, and must then let every legitimate client in.
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
#define FLOOD 400     /* connects, far beyond what 64 descriptors hold */
#define LEGIT 16      /* legitimate clients once descriptors are free */
#define WINDOW_MS 2000
#define CPU_BOUND_MS 400 /* 20% of a core over the window; a spin takes it all */

static pid_t child = -1;
static int to_child = -1, from_child = -1;

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
 * then answers each byte from the parent: 's' with a report, 'q' by
 * stopping. */
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
  while (read(in, &cmd, 1) == 1 && cmd == 's') {
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

static void two_shards_out_of_descriptors_do_not_spin(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  int port = 0;
  start_child(&port);
  report r0, r;
  ask(&r0);
  print_message("child: %lld descriptors open of %d\n", (long long)r0.fds,
                CHILD_NOFILE);
  assert_true(r0.fds > 0 && r0.fds + LEGIT + 8 < CHILD_NOFILE);

  int fds[FLOOD];
  flood(port, fds, FLOOD);
  /* The flood is in: until now the server had real work. Let it finish
   * (its counters stop moving, or a bound passes), then watch it idle
   * with its table full and connections still queued. */
  ask(&r);
  uint64_t end = kite__now_us() + 5000000;
  for (uint64_t last = ~0ull; kite__now_us() < end;) {
    uint64_t seen = r.st.tcp_accepted + r.st.tcp_refused_nofd;
    if (seen == last)
      break;
    last = seen;
    usleep(200000);
    ask(&r);
  }
  uint64_t cpu0 = child_cpu_ms();
  usleep(WINDOW_MS * 1000);
  uint64_t cpu = child_cpu_ms() - cpu0;
  ask(&r);
  print_message("starved: cpu %llu ms over %d ms; accepted %llu, refused "
                "%llu, accept back-offs %llu\n",
                (unsigned long long)cpu, WINDOW_MS,
                (unsigned long long)r.st.tcp_accepted,
                (unsigned long long)r.st.tcp_refused_nofd,
                (unsigned long long)r.st.tcp_accept_backoffs);
  assert_true(cpu < CPU_BOUND_MS);
  /* Each refusal is a connection taken and closed: never more than came. */
  assert_true(r.st.tcp_accepted + r.st.tcp_refused_nofd <= FLOOD);

  /* Every queued connection is answered as descriptors come back. */
  assert_int_equal(drain(fds, FLOOD, 30000), 0);
  end = kite__now_us() + 20000000;
  do {
    ask(&r);
  } while ((r.st.sessions != 0 || r.fds < 0 || r.fds > r0.fds) &&
           kite__now_us() < end && usleep(10000) == 0);
  assert_int_equal(r.st.sessions, 0);
  assert_true(r.fds >= 0 && r.fds <= r0.fds);
  assert_int_equal(r.st.tcp_accepted + r.st.tcp_refused_nofd, FLOOD);

  /* Descriptors are free: every legitimate client gets in at once. */
  int lf[LEGIT], in = 0;
  for (int i = 0; i < LEGIT; i++) {
    lf[i] = tcp_raw_connect(port, 5000, 0);
    assert_true(lf[i] >= 0);
    in += legit(lf[i]);
  }
  for (int i = 0; i < LEGIT; i++)
    close(lf[i]);
  ask(&r);
  print_message("legitimate clients in: %d of %d; refused in all %llu\n", in,
                LEGIT, (unsigned long long)r.st.tcp_refused_nofd);
  assert_int_equal(in, LEGIT);
  assert_int_equal(r.st.tcp_accepted + r.st.tcp_refused_nofd, FLOOD + LEGIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(two_shards_out_of_descriptors_do_not_spin,
                                stop_child),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
