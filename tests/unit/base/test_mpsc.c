/* The cross-thread queue: producers on several threads, one consumer;
 * nothing lost, nothing duplicated, each producer's order kept, and a full
 * queue refuses instead of blocking. Run under TSan too (scripts/test.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/mpsc.h"

#define PRODUCERS 4
#define PER_PRODUCER 100000

typedef struct item {
  int producer;
  int seq;
} item;

static kite__mpsc q;
static item items[PRODUCERS][PER_PRODUCER];

static void *produce(void *arg) {
  int p = (int)(intptr_t)arg;
  for (int i = 0; i < PER_PRODUCER; i++) {
    items[p][i] = (item){p, i};
    while (!kite__mpsc_push(&q, &items[p][i]))
      ; /* full: the consumer catches up */
  }
  return NULL;
}

static void many_producers_one_consumer(void **state) {
  (void)state;
  assert_int_equal(kite__mpsc_init(&q, 1024), 0);
  pthread_t t[PRODUCERS];
  for (int p = 0; p < PRODUCERS; p++)
    pthread_create(&t[p], NULL, produce, (void *)(intptr_t)p);
  int next[PRODUCERS] = {0};
  long total = 0;
  while (total < (long)PRODUCERS * PER_PRODUCER) {
    item *it = kite__mpsc_pop(&q);
    if (!it)
      continue;
    assert_int_equal(it->seq, next[it->producer]); /* order per producer */
    next[it->producer]++;
    total++;
  }
  for (int p = 0; p < PRODUCERS; p++)
    pthread_join(t[p], NULL);
  assert_null(kite__mpsc_pop(&q));
  kite__mpsc_free(&q);
}

static void full_queue_refuses(void **state) {
  (void)state;
  kite__mpsc small;
  assert_int_equal(kite__mpsc_init(&small, 3), 0); /* rounds up to 4 */
  int v[5];
  for (int i = 0; i < 4; i++)
    assert_true(kite__mpsc_push(&small, &v[i]));
  assert_false(kite__mpsc_push(&small, &v[4]));
  assert_ptr_equal(kite__mpsc_pop(&small), &v[0]);
  assert_true(kite__mpsc_push(&small, &v[4]));
  for (int i = 1; i < 5; i++)
    assert_ptr_equal(kite__mpsc_pop(&small), &v[i]);
  assert_null(kite__mpsc_pop(&small));
  kite__mpsc_free(&small);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(full_queue_refuses),
      cmocka_unit_test(many_producers_one_consumer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
