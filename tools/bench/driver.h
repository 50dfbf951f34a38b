/*
 * The load both transports share: when each session sends (a timer wheel,
 * sessions spread evenly over each period), what it sends, and the checks
 * on every echo. A transport supplies send() and feeds echoes back through
 * driver_echo().
 */
#ifndef KITE_BENCH_DRIVER_H
#define KITE_BENCH_DRIVER_H

#include "bench.h"

#include "base/wheel.h"

typedef struct driver_session {
  kite__timer timer;
  uint64_t next_seq, expect_seq;
  uint32_t id;
  bool ready; /* connected (kite) or always (floor) */
} driver_session;

typedef struct driver {
  const bench_config *cfg;
  bench_result *res;
  driver_session *sess;
  kite__wheel wheel;
  uint8_t *body;
  uint64_t period_us;
  uint64_t window_start_us, window_end_us; /* 0 until sending starts */
  bool sending;
  /* The transport: queue one frame for |session|; 0, or <0 to count a
   * send refused (the frame is not sent and its seq is reused). */
  int (*send)(void *transport, uint32_t session, const uint8_t *body,
              uint32_t len);
  void *transport;
} driver;

int driver_init(driver *d, const bench_config *cfg, bench_result *res);
void driver_free(driver *d);
/* Starts the schedule: warmup, then the measured window. */
void driver_start(driver *d, uint64_t now_us);
/* Sends what is due. */
void driver_tick(driver *d, uint64_t now_us);
/* ms until the next send (-1: none), capped. */
int driver_timeout_ms(const driver *d, uint64_t now_us, int cap);
void driver_echo(driver *d, uint32_t session, const uint8_t *body,
                 uint32_t len, uint64_t now_us);
/* true once the window has ended and every echo is in, or |drain_us|
 * passed since it ended (then the rest count as lost). */
bool driver_finished(driver *d, uint64_t now_us, uint64_t drain_us);

/* The measured run, whatever the transport: starts the schedule, then
 * loops: |wait| for I/O up to the given ms (handling what arrives), send
 * what is due; the server is sampled from /proc as the window opens and
 * closes. Returns when driver_finished(). */
void driver_run(driver *d, void (*wait)(void *transport, int timeout_ms));

#endif
