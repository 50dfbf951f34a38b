/*
 * What a shard still holds in its inbox when the server is destroyed is
 * released with it: a broadcast's share of its frame included (each
 * command holds one reference; the broadcaster holds its own).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/server_internal.h"

#include <stdlib.h>

static void pending_broadcasts_give_back_their_frames(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.log_level = KITE_LOG_ERROR;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  /* Never started: the shards will not run what their inboxes hold. */
  kite__shared_frame *f = malloc(sizeof(*f) + 16);
  assert_non_null(f);
  atomic_init(&f->refs, 1); /* the test's own */
  f->bytes = 16;
  for (uint32_t i = 0; i < srv->nshards; i++) {
    kite__cmd *c = calloc(1, sizeof(*c) + sizeof(kite_session_id));
    assert_non_null(c);
    c->type = KITE__CMD_BROADCAST;
    c->frame = f;
    c->count = 1;
    atomic_fetch_add(&f->refs, 1);
    assert_true(kite__shard_post(&srv->shards[i], c));
    kite__cmd *s = calloc(1, sizeof(*s) + 8);
    assert_non_null(s);
    s->type = KITE__CMD_SEND;
    assert_true(kite__shard_post(&srv->shards[i], s));
  }
  assert_int_equal(atomic_load(&f->refs), 1 + srv->nshards);
  kite_server_destroy(srv);
  assert_int_equal(atomic_load(&f->refs), 1); /* every share given back */
  kite__shared_frame_put(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pending_broadcasts_give_back_their_frames),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
