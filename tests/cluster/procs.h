/*
 * The cluster test's outside world: processes it starts (redis-server,
 * kited nodes, kite-lobby), each with its output in a file and stopped by
 * its PID; a small blocking HTTP GET for the lobby. Test thread only.
 */
#ifndef KITE_TEST_CLUSTER_PROCS_H
#define KITE_TEST_CLUSTER_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct proc {
  pid_t pid; /* 0: not running */
  char log[256];
} proc;

/* Creates the directory the processes' logs go to. 0 or -1. */
int procs_init(void);
/* Removes it (and the logs) unless KITE_TEST_KEEP is set. */
void procs_cleanup(void);

/* Starts argv[0] with its stdout and stderr in a log named |name|. */
int proc_start(proc *p, const char *name, char *const argv[]);

/* Waits up to |ms| for a line of the log matching "prefix%d" somewhere
 * (sscanf on the text after |marker|); 0 with *value, or -1. */
int proc_wait_int(const proc *p, const char *marker, const char *fmt,
                  int *value, int ms);

/* Sends |sig|; for SIGTERM and SIGKILL, waits (up to 5 s, then SIGKILL)
 * and forgets the PID. Returns how it ended: its exit code, 128 + the
 * signal that ended it, or 0 (not running, or not waited for). */
int proc_signal(proc *p, int sig);

/* A free TCP port on 127.0.0.1 (bound and released: a race the caller
 * covers by retrying). */
int free_tcp_port(void);

/* GET http://127.0.0.1:port|path| within |ms|: the status (0 when no
 * answer) and the body, NUL-terminated, into |body| (cap bytes). */
int http_get(int port, const char *path, char *body, size_t cap, int ms);
/* The same for a request written out whole (|len| bytes at |req|). */
int http_raw(int port, const char *req, size_t len, char *body, size_t cap,
             int ms);

/* The string value of "key":"..." in a flat JSON object, into |out|. */
bool json_str(const char *json, const char *key, char *out, size_t cap);

uint64_t now_ms(void);

#endif
