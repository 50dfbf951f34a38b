#include "driver.h"
#include "progress.h"

#include "base/clock.h"
#include "base/time.h"

#include <stdlib.h>
#include <string.h>

int driver_init(driver *d, const bench_config *cfg, bench_result *res) {
  memset(d, 0, sizeof(*d));
  d->cfg = cfg;
  d->res = res;
  d->sess = calloc(cfg->sessions, sizeof(*d->sess));
  d->body = malloc(cfg->size);
  if (!d->sess || !d->body)
    return -1;
  for (uint32_t i = 0; i < cfg->sessions; i++) {
    d->sess[i].id = i;
    kite__timer_init(&d->sess[i].timer);
  }
  d->period_us = cfg->rate > 0 ? (uint64_t)(1e6 / cfg->rate) : 0;
  kite__wheel_init(&d->wheel, kite__now_ms());
  return 0;
}

void driver_free(driver *d) {
  free(d->sess);
  free(d->body);
}

void driver_start(driver *d, uint64_t now_us) {
  d->window_start_us = now_us + (uint64_t)(d->cfg->warmup_s * 1e6);
  d->window_end_us = d->window_start_us + (uint64_t)(d->cfg->duration_s * 1e6);
  d->sending = d->period_us > 0;
  if (!d->sending)
    return;
  /* Spread the first sends over one period, so the load is smooth. */
  for (uint32_t i = 0; i < d->cfg->sessions; i++) {
    uint64_t at = now_us + d->period_us * i / d->cfg->sessions;
    kite__wheel_add(&d->wheel, &d->sess[i].timer, (uint32_t)(at / 1000));
  }
}

static void fire(kite__timer *t, void *user) {
  driver *d = user;
  driver_session *s = (driver_session *)((char *)t - offsetof(driver_session, timer));
  uint64_t now = kite__now_us();
  if (now >= d->window_end_us)
    return; /* the window is over: no more sends */
  if (s->ready) {
    bench_fill(d->body, d->cfg->size, s->id, s->next_seq, now);
    if (d->send(d->transport, s->id, d->body, d->cfg->size) == 0) {
      s->next_seq++;
      d->res->sent++;
    }
  }
  kite__wheel_add(&d->wheel, t, kite__wheel_now(&d->wheel) +
                                   (uint32_t)(d->period_us / 1000 ? d->period_us / 1000 : 1));
}

void driver_tick(driver *d, uint64_t now_us) {
  kite__wheel_advance(&d->wheel, (uint32_t)(now_us / 1000), fire, d);
}

int driver_timeout_ms(const driver *d, uint64_t now_us, int cap) {
  return kite__wheel_timeout_ms(&d->wheel, (uint32_t)(now_us / 1000), cap);
}

void driver_echo(driver *d, uint32_t session, const uint8_t *body,
                 uint32_t len, uint64_t now_us) {
  bench_payload p;
  bench_result *r = d->res;
  if (session >= d->cfg->sessions || !bench_parse(body, len, d->cfg->size, &p) ||
      p.session != session) {
    r->corrupt++;
    return;
  }
  driver_session *s = &d->sess[session];
  if (p.seq != s->expect_seq)
    r->out_of_order++; /* a gap, a repeat, or a reorder */
  if (p.seq >= s->expect_seq)
    s->expect_seq = p.seq + 1;
  r->received++;
  if (p.sent_us >= d->window_start_us && p.sent_us < d->window_end_us) {
    r->window_received++;
    hist_add(&r->rtt, now_us - p.sent_us);
  }
}

bool driver_finished(driver *d, uint64_t now_us, uint64_t drain_us) {
  if (now_us < d->window_end_us)
    return false;
  if (d->res->received + d->res->corrupt >= d->res->sent ||
      now_us >= d->window_end_us + drain_us) {
    d->res->lost = d->res->sent > d->res->received ? d->res->sent - d->res->received : 0;
    d->res->window_s = (double)(d->window_end_us - d->window_start_us) / 1e6;
    return true;
  }
  return false;
}

void driver_run(driver *d, void (*wait)(void *transport, int timeout_ms)) {
  const bench_config *cfg = d->cfg;
  uint64_t now = kite__now_us();
  driver_start(d, now);
  proc_sample before = {0}, after = {0};
  bool opened = false, closed = false;
  progress line;
  progress_init(&line, cfg, now);
  while (!driver_finished(d, now, (uint64_t)(cfg->drain_s * 1e6))) {
    int timeout = driver_timeout_ms(d, now, 10);
    wait(d->transport, timeout < 0 ? 10 : timeout);
    now = kite__now_us();
    if (!opened && now >= d->window_start_us) {
      opened = true;
      if (cfg->server_pid)
        proc_read(cfg->server_pid, &before);
    }
    driver_tick(d, now);
    progress_tick(&line, d, now);
    if (!closed && now >= d->window_end_us) {
      closed = true;
      if (cfg->server_pid)
        proc_read(cfg->server_pid, &after);
    }
  }
  progress_end(&line);
  if (cfg->server_pid) {
    d->res->server_cpu_s = after.cpu_s - before.cpu_s;
    d->res->server_rss_kb = after.rss_kb;
    d->res->server_hwm_kb = after.hwm_kb;
  }
}
