/*
 * The snapshot lane's sequencing after the sender forgets a msg_id (found
 * by the outsider's game; public API only).
 *
 * PROTOCOL-v2.md section 6: seq is "the sender's count per session,
 * direction and msg_id, from 0, +1 each, 65535 wraps"; only the receiver
 * may forget a msg_id (then one late message may get through). kite's
 * sender keeps 64 msg_ids (docs/PROTOCOL-v2.md: "The seq counts per msg_id
 * from 0 (64 msg_ids kept, most recently used)"): once 64 other sequenced
 * msg_ids were sent after msg_id A, A's count starts again from 0. If the
 * network lost those 64 others, the receiver still holds A's newest seq N,
 * so A's next N messages are dropped as stale (unreliable_drop_stale):
 * a game's snapshots of A stop for N sends, seconds to minutes.
 *
 * Here, each way (the server's sender, then the client's): A 100 times
 * (all delivered), then 64 messages of other msg_ids that a relay on the
 * path drops, then A once more, which must be delivered. Without a fix it
 * is dropped as stale, both ways. With 63 others (-DSEQ_OTHERS=63) the
 * sender still holds A and both pass: the sender's forgetting is the bug.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <kite/kite.h>

enum { MSG_STAGE = 1, MSG_ACK = 2, MSG_A = 100, MSG_B0 = 200 };
#ifndef SEQ_OTHERS
#define SEQ_OTHERS 64 /* -DSEQ_OTHERS=63: the sender still holds A, passes */
#endif
enum { A_FIRST = 100, OTHERS = SEQ_OTHERS };

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The relay at the server's public_addr: passes both ways, or drops what
 * the server sends while |drop| is set; |drain| asks it to discard what is
 * pending from the server, then pass again. Owner: the relay thread, told
 * by the test thread through the atomics. */
static int relay_fd, up_fd;
static struct sockaddr_in server_sa;
static atomic_bool run, drop, drop_up, drain;
static atomic_uint dropped;

static int udp_bind(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0)
    return fd;
  return -1;
}
static int udp_port(int fd) {
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  return ntohs(a.sin_port);
}

static void *relay(void *arg) {
  (void)arg;
  struct sockaddr_in client = {0};
  uint8_t buf[2048];
  while (atomic_load(&run)) {
    if (atomic_load(&drain)) {
      if (atomic_load(&drop))
        while (recv(up_fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
          atomic_fetch_add(&dropped, 1);
      if (atomic_load(&drop_up))
        while (recv(relay_fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
          atomic_fetch_add(&dropped, 1);
      atomic_store(&drop, false);
      atomic_store(&drop_up, false);
      atomic_store(&drain, false);
    }
    struct pollfd pf[2] = {{relay_fd, POLLIN, 0}, {up_fd, POLLIN, 0}};
    if (poll(pf, 2, 10) <= 0)
      continue;
    if (pf[0].revents & POLLIN) {
      socklen_t l = sizeof client;
      ssize_t n = recvfrom(relay_fd, buf, sizeof buf, 0,
                           (struct sockaddr *)&client, &l);
      if (n > 0 && atomic_load(&drop_up))
        atomic_fetch_add(&dropped, 1);
      else if (n > 0)
        sendto(up_fd, buf, (size_t)n, 0, (struct sockaddr *)&server_sa,
               sizeof server_sa);
    }
    if (pf[1].revents & POLLIN) {
      ssize_t n = recv(up_fd, buf, sizeof buf, 0);
      if (n > 0 && atomic_load(&drop))
        atomic_fetch_add(&dropped, 1);
      else if (n > 0 && client.sin_port)
        sendto(relay_fd, buf, (size_t)n, 0, (struct sockaddr *)&client,
               sizeof client);
    }
  }
  return NULL;
}

/* Server: stage 1 sends A A_FIRST times, stage 2 one message of each of
 * OTHERS other msg_ids, stage 3 A once; each stage then acknowledges
 * reliably with the first failing send's code. Runs inline (shard). */
static void h_stage(const kite_request *req) {
  static const uint8_t body[4];
  int rc = 0, n = 0;
  uint16_t id = MSG_A;
  switch (req->len == 1 ? req->body[0] : 0) {
  case 1: n = A_FIRST; break;
  case 2: n = OTHERS; break;
  case 3: n = 1; break;
  default: return;
  }
  for (int i = 0; i < n; i++) {
    if (req->body[0] == 2)
      id = (uint16_t)(MSG_B0 + i);
    int r = kite_session_send_unreliable(req->srv, req->session, id, body,
                                         sizeof body, KITE_UNRELIABLE_SEQUENCED);
    if (r != 0 && rc == 0)
      rc = r;
  }
  uint8_t ack[2] = {req->body[0], (uint8_t)-rc};
  kite_reply(req, MSG_ACK, ack, sizeof ack);
}

/* What the server's handlers took of the client's lane (inline: the
 * shard thread writes, the test thread reads). */
static atomic_int srv_a, srv_others;
static void h_lane(const kite_request *req) {
  atomic_fetch_add(req->msg_id == MSG_A ? &srv_a : &srv_others, 1);
}

/* Client state: the test thread's own (callbacks run inside its poll). */
static int acks[4], ack_rc[4], a_got, others_got;
static bool open_;
static void c_connect(kite_conn *c, void *u) { (void)c, (void)u; open_ = true; }
static void c_message(kite_conn *c, uint16_t id, const uint8_t *b, size_t len,
                      void *u) {
  (void)c, (void)u;
  if (id == MSG_ACK && len == 2 && b[0] <= 3) {
    acks[b[0]]++;
    ack_rc[b[0]] = -(int)b[1];
  }
}
static void c_unreliable(kite_conn *c, uint16_t id, unsigned flags,
                         const uint8_t *b, size_t len, void *u) {
  (void)c, (void)flags, (void)b, (void)len, (void)u;
  if (id == MSG_A)
    a_got++;
  else
    others_got++;
}

static void stage(kite_client *cli, kite_conn *conn, uint8_t n) {
  assert_int_equal(kite_conn_send(conn, MSG_STAGE, &n, 1), 0);
  uint64_t end = now_ms() + 10000;
  while (acks[n] == 0 && now_ms() < end)
    kite_client_poll(cli, 10);
  assert_int_equal(acks[n], 1);
  assert_int_equal(ack_rc[n], 0);
}

static kite_server *srv;
static kite_client *cli;
static kite_conn *conn;
static pthread_t relay_th;

/* A server behind the relay, a client connected through it. */
static int setup(void **state) {
  (void)state;
  open_ = false;
  memset(acks, 0, sizeof acks);
  a_got = others_got = 0;
  atomic_store(&srv_a, 0);
  atomic_store(&srv_others, 0);
  atomic_store(&drop, false);
  atomic_store(&drop_up, false);
  atomic_store(&drain, false);
  uint8_t key[KITE_TOKEN_KEY_BYTES];
  assert_int_equal(kite_token_key_new(key), 0);
  relay_fd = udp_bind();
  up_fd = udp_bind();
  assert_true(relay_fd >= 0 && up_fd >= 0);
  char relay_addr[32];
  snprintf(relay_addr, sizeof relay_addr, "127.0.0.1:%d", udp_port(relay_fd));

  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.versions = KITE_VERSION_2;
  cfg.token_key_set = true;
  memcpy(cfg.token_key, key, sizeof key);
  cfg.protocol_id = 7;
  cfg.public_addr = relay_addr;
  cfg.unreliable_bytes_per_s = 1u << 20; /* no budget drop in the way */
  cfg.log_level = KITE_LOG_WARN;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_route(srv, MSG_STAGE, h_stage, NULL), 0);
  assert_int_equal(kite_server_route(srv, MSG_A, h_lane, NULL), 0);
  for (int i = 0; i < OTHERS; i++)
    assert_int_equal(kite_server_route(srv, (uint16_t)(MSG_B0 + i), h_lane, NULL), 0);
  assert_int_equal(kite_server_start(srv), 0);
  server_sa = (struct sockaddr_in){
      .sin_family = AF_INET,
      .sin_port = htons((uint16_t)kite_server_udp_port(srv)),
      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  atomic_store(&run, true);
  assert_int_equal(pthread_create(&relay_th, NULL, relay, NULL), 0);

  const char *addrs[] = {relay_addr};
  kite_token_params p = {.protocol_id = 7, .client_id = 1, .ttl_s = 60,
                         .addrs = addrs, .naddrs = 1};
  uint8_t token[KITE_TOKEN_BYTES];
  assert_int_equal(kite_token_mint(token, key, &p), 0);
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.bind_addr = "127.0.0.1:0";
  cc.on_connect = c_connect;
  cc.on_message = c_message;
  cc.on_unreliable = c_unreliable;
  cc.log_level = KITE_LOG_WARN;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  assert_int_equal(kite_client_connect_token(cli, token, NULL, &conn), 0);
  uint64_t end = now_ms() + 10000;
  while (!open_ && now_ms() < end)
    kite_client_poll(cli, 10);
  assert_true(open_);

  return 0;
}

static int teardown(void **state) {
  (void)state;
  kite_client_destroy(cli);
  atomic_store(&run, false);
  pthread_join(relay_th, NULL);
  kite_server_stop(srv);
  kite_server_destroy(srv);
  close(relay_fd);
  close(up_fd);
  return 0;
}

/* Server to client. */
static void after_loss_next_one_is_delivered(void **state) {
  (void)state;
  uint64_t end;
  /* A, A_FIRST times, all delivered (loopback; bounded wait). */
  stage(cli, conn, 1);
  end = now_ms() + 5000;
  while (a_got < A_FIRST && now_ms() < end)
    kite_client_poll(cli, 10);
  assert_int_equal(a_got, A_FIRST);

  /* OTHERS msg_ids, lost on the path: the relay drops what the server
   * sends until KCP has retransmitted (the items left long before), then
   * discards what is pending and passes again. */
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  uint64_t retransmits = st.retransmits;
  atomic_store(&drop, true);
  uint8_t two = 2;
  assert_int_equal(kite_conn_send(conn, MSG_STAGE, &two, 1), 0);
  end = now_ms() + 10000;
  do {
    kite_client_poll(cli, 10);
    kite_server_stats_get(srv, &st);
  } while ((st.unreliable_out < A_FIRST + OTHERS ||
            st.retransmits == retransmits) && now_ms() < end);
  atomic_store(&drain, true);
  end = now_ms() + 10000;
  while (acks[2] == 0 && now_ms() < end)
    kite_client_poll(cli, 10);
  assert_int_equal(acks[2], 1);
  assert_int_equal(ack_rc[2], 0);
  assert_int_equal(others_got, 0); /* all lost, as meant */
  assert_true(atomic_load(&dropped) > 0);

  /* A once more: the newest A; it must be delivered. */
  kite_client_stats cs;
  stage(cli, conn, 3);
  end = now_ms() + 5000;
  do {
    kite_client_poll(cli, 10);
    kite_client_stats_get(cli, &cs);
  } while (a_got == A_FIRST && cs.unreliable_drop_stale == 0 && now_ms() < end);
  printf("after the loss: A delivered %d, dropped as stale %llu\n",
         a_got - A_FIRST, (unsigned long long)cs.unreliable_drop_stale);

  assert_int_equal(cs.unreliable_drop_stale, 0);
  assert_int_equal(a_got, A_FIRST + 1);
}

/* Client to server: the client's sender forgets likewise. */
static void after_loss_server_takes_the_next_one(void **state) {
  (void)state;
  static const uint8_t body[4];
  for (int i = 0; i < A_FIRST; i++) {
    assert_int_equal(kite_conn_send_unreliable(conn, MSG_A, body, sizeof body,
                                               KITE_UNRELIABLE_SEQUENCED), 0);
    kite_client_poll(cli, 0);
  }
  uint64_t end = now_ms() + 5000;
  while (atomic_load(&srv_a) < A_FIRST && now_ms() < end)
    kite_client_poll(cli, 10);
  assert_int_equal(atomic_load(&srv_a), A_FIRST);

  /* OTHERS msg_ids, lost on the path. */
  atomic_store(&drop_up, true);
  for (int i = 0; i < OTHERS; i++) {
    assert_int_equal(kite_conn_send_unreliable(conn, (uint16_t)(MSG_B0 + i),
                                               body, sizeof body,
                                               KITE_UNRELIABLE_SEQUENCED), 0);
    kite_client_poll(cli, 0); /* sent with this poll's batch */
  }
  kite_client_stats cs;
  kite_client_stats_get(cli, &cs);
  assert_true(cs.unreliable_out >= A_FIRST + OTHERS);
  unsigned before = atomic_load(&dropped);
  end = now_ms() + 5000; /* the relay has read (and dropped) some */
  while (atomic_load(&dropped) == before && now_ms() < end)
    kite_client_poll(cli, 10);
  atomic_store(&drain, true);
  end = now_ms() + 5000;
  while (atomic_load(&drain) && now_ms() < end)
    kite_client_poll(cli, 10);
  assert_false(atomic_load(&drain));
  assert_int_equal(atomic_load(&srv_others), 0); /* all lost, as meant */

  /* A once more: the newest A; the server must take it. */
  assert_int_equal(kite_conn_send_unreliable(conn, MSG_A, body, sizeof body,
                                             KITE_UNRELIABLE_SEQUENCED), 0);
  kite_server_stats st;
  end = now_ms() + 5000;
  do {
    kite_client_poll(cli, 10);
    kite_server_stats_get(srv, &st);
  } while (atomic_load(&srv_a) == A_FIRST && st.unreliable_drop_stale == 0 &&
           now_ms() < end);
  printf("after the loss: the server took %d A, dropped as stale %llu\n",
         atomic_load(&srv_a) - A_FIRST,
         (unsigned long long)st.unreliable_drop_stale);
  assert_int_equal(st.unreliable_drop_stale, 0);
  assert_int_equal(atomic_load(&srv_a), A_FIRST + 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(after_loss_next_one_is_delivered, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(after_loss_server_takes_the_next_one,
                                      setup, teardown)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
