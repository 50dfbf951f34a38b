/*
 * The server's Prometheus endpoint (cfg.metrics_addr): started with the
 * server, stopped before its threads are joined. The families it writes
 * are listed in docs/OPERATIONS.md.
 */
#ifndef KITE_SERVER_METRICS_EXPORT_H
#define KITE_SERVER_METRICS_EXPORT_H

typedef struct kite_server kite_server;

/* 0 when cfg.metrics_addr is NULL or the endpoint is up, else the error of
 * kite__metrics_http_start() (logged). */
int kite__metrics_export_start(kite_server *srv);
void kite__metrics_export_stop(kite_server *srv);

#endif
