/*
 * The TCP output queue over a real stream socket pair whose reader is
 * stopped: direct writes while the kernel has room, queueing (in order)
 * when it has not, the all-or-nothing bound, the stall clock, a buffer
 * freed once drained, and a broken socket reported without SIGPIPE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/error.h"
#include "net/tcp_out.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX (64 * 1024)

static void pair(int sv[2]) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int small = 4096; /* the kernel fills up quickly */
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  fcntl(sv[1], F_SETFL, O_NONBLOCK);
}

/* A unit of two buffers whose bytes continue the sequence at *seq. */
static int send_unit(kite__tcp_out *o, int fd, uint32_t *seq, size_t a, size_t b,
                     uint32_t now, bool *pollout) {
  static uint8_t x[8192], y[8192];
  for (size_t i = 0; i < a; i++)
    x[i] = (uint8_t)(*seq + i);
  for (size_t i = 0; i < b; i++)
    y[i] = (uint8_t)(*seq + a + i);
  struct iovec v[2] = {{x, a}, {y, b}};
  int rc = kite__tcp_out_send(o, fd, v, 2, now, pollout);
  if (rc == 0)
    *seq += (uint32_t)(a + b);
  return rc;
}

/* Reads what is there, checking the sequence; returns the bytes read. */
static size_t drain(int fd, uint32_t *seq) {
  uint8_t b[4096];
  size_t total = 0;
  ssize_t n;
  while ((n = read(fd, b, sizeof(b))) > 0) {
    for (ssize_t i = 0; i < n; i++)
      assert_int_equal(b[i], (uint8_t)(*seq + (uint32_t)i));
    *seq += (uint32_t)n;
    total += (size_t)n;
  }
  return total;
}

/* The reader keeps reading and the queue is flushed until it is empty. */
static void drain_all(kite__tcp_out *o, int sv[2], uint32_t *rseq, uint32_t now,
                      bool *pollout) {
  for (int i = 0; i < 10000 && kite__tcp_out_pending(o); i++) {
    drain(sv[1], rseq);
    assert_int_equal(kite__tcp_out_flush(o, sv[0], now, pollout), 0);
  }
  drain(sv[1], rseq);
}

static void direct_then_queued_then_drained(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  kite__tcp_out o;
  kite__tcp_out_init(&o, MAX);
  uint32_t wseq = 0, rseq = 0;
  bool pollout = true;

  /* Room in the kernel: straight through, nothing held. */
  assert_int_equal(send_unit(&o, sv[0], &wseq, 12, 100, 1000, &pollout), 0);
  assert_false(pollout);
  assert_null(o.buf);
  assert_int_equal(drain(sv[1], &rseq), 112);

  /* Fill the kernel: units queue, in order, up to MAX and not past it. */
  int rc;
  while ((rc = send_unit(&o, sv[0], &wseq, 12, 4000, 1000, &pollout)) == 0)
    ;
  assert_int_equal(rc, KITE_EFULL);
  assert_true(pollout);
  uint32_t held = kite__tcp_out_pending(&o);
  assert_true(held > MAX - 4012 && held <= MAX);
  assert_true(o.cap <= MAX);
  /* All or nothing: the refused unit left no trace. */
  assert_int_equal(kite__tcp_out_pending(&o), held);
  assert_int_equal(kite__tcp_out_stalled_ms(&o, 1250), 250);

  /* A small unit still fits if there is room for all of it. */
  if (MAX - held >= 5)
    assert_int_equal(send_unit(&o, sv[0], &wseq, 2, 3, 1300, &pollout), 0);

  /* The reader wakes: flush until drained; the bytes arrive in order. */
  drain_all(&o, sv, &rseq, 2000, &pollout);
  assert_false(pollout);
  assert_int_equal(kite__tcp_out_pending(&o), 0);
  assert_null(o.buf); /* an idle connection holds no output memory */
  assert_int_equal(kite__tcp_out_stalled_ms(&o, 5000), 0);
  assert_int_equal(rseq, wseq);
  assert_int_equal(o.bytes_out, wseq);
  kite__tcp_out_free(&o);
  close(sv[0]);
  close(sv[1]);
}

static void queued_sends_keep_order_after_partial_flush(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  kite__tcp_out o;
  kite__tcp_out_init(&o, MAX);
  uint32_t wseq = 0, rseq = 0;
  bool pollout;
  for (int round = 0; round < 200; round++) {
    /* Odd sizes, so queue boundaries fall everywhere. */
    size_t a = 1 + (size_t)round % 13, b = (size_t)(round * 37) % 3000;
    int rc = send_unit(&o, sv[0], &wseq, a, b, (uint32_t)round, &pollout);
    assert_true(rc == 0 || rc == KITE_EFULL);
    if (round % 3 == 0)
      drain(sv[1], &rseq);
    if (pollout)
      assert_int_equal(kite__tcp_out_flush(&o, sv[0], (uint32_t)round, &pollout), 0);
  }
  drain_all(&o, sv, &rseq, 0, &pollout);
  assert_int_equal(rseq, wseq);
  kite__tcp_out_free(&o);
  close(sv[0]);
  close(sv[1]);
}

static void broken_socket_is_an_error_not_a_signal(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  kite__tcp_out o;
  kite__tcp_out_init(&o, MAX);
  close(sv[1]);
  uint32_t seq = 0;
  bool pollout;
  /* No SIGPIPE (the test would die), an error instead. */
  assert_int_equal(send_unit(&o, sv[0], &seq, 12, 10, 0, &pollout), KITE_ESYS);
  kite__tcp_out_free(&o);
  close(sv[0]);
}

static void flush_of_a_broken_socket(void **state) {
  (void)state;
  int sv[2];
  pair(sv);
  kite__tcp_out o;
  kite__tcp_out_init(&o, MAX);
  uint32_t seq = 0;
  bool pollout = false;
  while (!pollout)
    assert_int_equal(send_unit(&o, sv[0], &seq, 12, 4000, 0, &pollout), 0);
  close(sv[1]);
  assert_int_equal(kite__tcp_out_flush(&o, sv[0], 0, &pollout), KITE_ESYS);
  kite__tcp_out_free(&o);
  assert_null(o.buf);
  close(sv[0]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(direct_then_queued_then_drained),
      cmocka_unit_test(queued_sends_keep_order_after_partial_flush),
      cmocka_unit_test(broken_socket_is_an_error_not_a_signal),
      cmocka_unit_test(flush_of_a_broken_socket),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
