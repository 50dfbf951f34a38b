/*
 * kite-cli: a terminal client for kited. Connects, logs in, optionally
 * joins a room, then reads commands from stdin and prints what happens,
 * one line per event.
 *
 *   kite-cli --name NAME [--server HOST:PORT | --token FILE | --login URL]
 *            [--tcp] [--join ROOM]
 *
 * --token connects with protocol version 2 from a connect token (the
 * file kite-token writes: 800 bytes raw, or as hexadecimal with --hex);
 * the servers are the token's, in its order. --login gets that token from
 * a login route first (kited's POST /login: login.h).
 *
 * Commands: /rooms  /join ROOM  /leave  /who  /move DX DY  /stop  /quit
 * /help; any other line is said in the room.
 */
#include "kite/kite.h"

#include "../../examples/kited/demo_proto.h"
#include "render.h"
#include "help.h"
#include "login.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cli {
  kite_conn *conn;
  render view;
  const char *name, *join;
  bool open, done;
  bool v2; /* connected from a token */
  int status; /* the exit code */
} cli;

static void on_connect(kite_conn *c, void *user) {
  cli *st = user;
  st->open = true;
  fprintf(stdout, st->v2 ? "* connected (protocol 2)\n" : "* connected\n");
  kite_conn_send(c, DEMO_LOGIN, st->name, strlen(st->name));
  if (st->join)
    kite_conn_send(c, DEMO_JOIN, st->join, strlen(st->join));
}

static void on_message(kite_conn *c, uint16_t msg_id, const uint8_t *body,
                       size_t len, void *user) {
  (void)c;
  render_message(&((cli *)user)->view, msg_id, body, len);
}

static void on_disconnect(kite_conn *c, int reason, void *user) {
  (void)c;
  cli *st = user;
  if (!st->open)
    st->status = 1; /* never connected */
  fprintf(stdout, "* disconnected (%s)\n", kite_client_reason_name(reason));
  fflush(stdout);
  st->conn = NULL;
  st->done = true;
}

static void help(void) {
  fprintf(stdout,
          "* /rooms  /join ROOM  /leave  /who  /move DX DY (each -1, 0, 1)\n"
          "* /stop  /quit  /help; any other line is said in your room\n");
}

static void send_or_say(cli *st, uint16_t id, const void *body, size_t len) {
  int rc = st->conn && st->open ? kite_conn_send(st->conn, id, body, len) : KITE_ESTATE;
  if (rc == KITE_ESTATE)
    fprintf(stdout, "! not connected yet\n");
  else if (rc < 0)
    fprintf(stdout, "! not sent: %s\n", kite_strerror(rc));
}

static void command(cli *st, char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
    line[--n] = 0;
  if (n == 0)
    return;
  int dx, dy;
  if (!strcmp(line, "/quit")) {
    if (st->conn)
      kite_conn_close(st->conn);
    else
      st->done = true;
  } else if (!strcmp(line, "/rooms")) {
    send_or_say(st, DEMO_ROOMS, NULL, 0);
  } else if (!strncmp(line, "/join ", 6)) {
    send_or_say(st, DEMO_JOIN, line + 6, strlen(line + 6));
  } else if (!strcmp(line, "/leave")) {
    send_or_say(st, DEMO_LEAVE, NULL, 0);
  } else if (!strcmp(line, "/who")) {
    render_who(&st->view);
  } else if (sscanf(line, "/move %d %d", &dx, &dy) == 2) {
    int8_t d[2] = {(int8_t)(dx > 0) - (int8_t)(dx < 0), (int8_t)(dy > 0) - (int8_t)(dy < 0)};
    send_or_say(st, DEMO_MOVE, d, 2);
  } else if (!strcmp(line, "/stop")) {
    send_or_say(st, DEMO_MOVE, "\0\0", 2);
  } else if (line[0] == '/') {
    help();
  } else {
    send_or_say(st, DEMO_CHAT, line, n);
  }
  fflush(stdout);
}

/* Reads what stdin has; runs each whole line. false at end of input. */
static bool read_input(cli *st, char *buf, size_t cap, size_t *have) {
  ssize_t n = read(STDIN_FILENO, buf + *have, cap - 1 - *have);
  if (n < 0)
    return errno == EINTR || errno == EAGAIN;
  if (n == 0)
    return false;
  *have += (size_t)n;
  buf[*have] = 0;
  char *nl;
  while ((nl = memchr(buf, '\n', *have))) {
    *nl = 0;
    command(st, buf);
    size_t used = (size_t)(nl + 1 - buf);
    memmove(buf, nl + 1, *have - used);
    *have -= used;
  }
  if (*have == cap - 1) { /* a line longer than any command: said in part */
    command(st, buf);
    *have = 0;
  }
  return true;
}

static void usage(void) {
  fprintf(stderr, "usage: kite-cli --name NAME [--server HOST:PORT | --token FILE |\n"
                  "                --login URL] [--tcp] [--join ROOM]\n");
  exit(2);
}

static int hex_digit(int ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* A token file: exactly KITE_TOKEN_BYTES raw bytes, or twice as many
 * hexadecimal digits (white space around and between lines ignored). */
static bool read_token(const char *path, uint8_t out[KITE_TOKEN_BYTES]) {
  static uint8_t raw[4 * KITE_TOKEN_BYTES];
  FILE *f = fopen(path, "rb");
  if (!f)
    return false;
  size_t n = fread(raw, 1, sizeof(raw), f);
  fclose(f);
  bool ok = false;
  if (n == KITE_TOKEN_BYTES) {
    memcpy(out, raw, n);
    ok = true;
  } else {
    size_t digits = 0;
    ok = true;
    for (size_t i = 0; i < n && ok; i++) {
      int d = hex_digit(raw[i]);
      if (d < 0) {
        ok = raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\r' ||
             raw[i] == '\t';
        continue;
      }
      if (digits >= 2 * KITE_TOKEN_BYTES) {
        ok = false;
        break;
      }
      if (digits % 2 == 0)
        out[digits / 2] = (uint8_t)(d << 4);
      else
        out[digits / 2] |= (uint8_t)d;
      digits++;
    }
    ok = ok && digits == 2 * KITE_TOKEN_BYTES;
  }
  memset(raw, 0, sizeof(raw)); /* it holds the token's keys */
  return ok;
}

int main(int argc, char **argv) {
  cli st = {0};
  const char *server = "127.0.0.1:7001";
  const char *token_file = NULL, *login_url = NULL;
  static uint8_t token[KITE_TOKEN_BYTES];
  bool tcp = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(kite_cli_help, stdout);
      return 0;
    }
    if (!strcmp(a, "--name") && v)
      st.name = argv[++i];
    else if (!strcmp(a, "--server") && v)
      server = argv[++i];
    else if (!strcmp(a, "--token") && v)
      token_file = argv[++i];
    else if (!strcmp(a, "--login") && v)
      login_url = argv[++i];
    else if (!strcmp(a, "--tcp"))
      tcp = true;
    else if (!strcmp(a, "--join") && v)
      st.join = argv[++i];
    else
      usage();
  }
  if (!st.name || !demo_name_ok((const uint8_t *)st.name, strlen(st.name))) {
    fprintf(stderr, "kite-cli: --name takes 1 to 16 printable characters, no spaces\n");
    usage();
  }
  if (token_file && login_url) {
    fprintf(stderr, "kite-cli: --token or --login, not both\n");
    usage();
  }
  if (token_file && !read_token(token_file, token)) {
    fprintf(stderr, "kite-cli: %s: not a token (800 bytes, or 1600 hex "
                    "digits)\n", token_file);
    return 2;
  }
  if (login_url) {
    char why[512];
    fprintf(stdout, "* logging in at %s as %s\n", login_url, st.name);
    fflush(stdout);
    if (cli_login(login_url, st.name, token, why, sizeof(why)) < 0) {
      fprintf(stderr, "kite-cli: login failed: %s\n", why);
      return 1;
    }
  }
  st.v2 = token_file || login_url;
  render_init(&st.view, stdout);

  kite_client_config cfg;
  kite_client_config_init(&cfg);
  cfg.on_connect = on_connect;
  cfg.on_message = on_message;
  cfg.on_disconnect = on_disconnect;
  cfg.user = &st;
  cfg.log_level = KITE_LOG_WARN;
  kite_client *c;
  int rc = kite_client_create(&c, &cfg);
  if (rc == 0 && st.v2)
    rc = tcp ? kite_client_connect_token_tcp(c, token, NULL, &st.conn)
             : kite_client_connect_token(c, token, NULL, &st.conn);
  else if (rc == 0)
    rc = tcp ? kite_client_connect_tcp(c, server, NULL, &st.conn)
             : kite_client_connect(c, server, NULL, &st.conn);
  memset(token, 0, sizeof(token)); /* the client keeps its own copy */
  if (rc < 0) {
    fprintf(stderr, "kite-cli: %s\n", kite_strerror(rc));
    kite_client_destroy(c);
    return 1;
  }
  fprintf(stdout, "* connecting to %s over %s as %s\n",
          st.v2 ? "the token's servers (protocol 2)" : server,
          tcp ? "TCP" : "KCP", st.name);
  fflush(stdout);

  char buf[512];
  size_t have = 0;
  bool input = true;
  while (!st.done) {
    struct pollfd p[2] = {{.fd = kite_client_fd(c), .events = POLLIN},
                          {.fd = STDIN_FILENO, .events = POLLIN}};
    int wait = kite_client_timeout_ms(c);
    if (wait < 0 || wait > 100)
      wait = 100;
    if (poll(p, input ? 2 : 1, wait) < 0 && errno != EINTR)
      break;
    if (input && p[1].revents && !read_input(&st, buf, sizeof(buf), &have)) {
      input = false; /* end of input: leave as /quit would */
      command(&st, strcpy(buf, "/quit"));
    }
    if (kite_client_poll(c, 0) < 0)
      break;
  }
  kite_client_destroy(c);
  return st.status;
}
