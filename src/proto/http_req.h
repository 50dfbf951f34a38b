/*
 * HTTP/1.1 request heads on kite's TCP port (issue 17): the WebSocket
 * opening handshake (RFC 6455 section 4) and the GETs of the static route.
 * Three jobs, three files:
 *
 *   http_req.c   an incremental, bounded parser of one request head
 *   http_resp.c  the answers: 101 with Sec-WebSocket-Accept (nettle's
 *                SHA-1 and base64), 200's head, 400 403 404 405 414 426
 *                431 505
 *   http_path.c  the static route's path normaliser, which refuses
 *                traversal before any file is looked at
 *
 *   kite__http_req r;
 *   kite__http_req_init(&r, &limits);            // NULL: the defaults
 *   size_t used;
 *   int rc = kite__http_req_feed(&r, buf, n, &used);
 *   if (rc == KITE_EAGAIN) ... read more;        // all n bytes were taken
 *   if (rc < 0) answer kite__http_why_status(r.why), count r.why, close;
 *   // rc == 0: the head is whole; buf[used..n) is not part of it
 *   int status;
 *   switch (kite__http_req_verdict(&r, &status)) { ... }
 *
 * The parser keeps only what the server acts on (method, target, Host,
 * Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version, Origin)
 * in fixed fields of the struct, so it allocates nothing and holds no
 * copy of the head: a connection in its handshake costs sizeof(r).
 * Everything a peer can push is bounded by kite__http_limits, and each
 * refusal has its own kite__http_why, so that each can be counted.
 *
 * Not thread-safe: a request belongs to the thread of its connection.
 */
#ifndef KITE_PROTO_HTTP_REQ_H
#define KITE_PROTO_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fixed capacities of the fields kept (bytes, without the NUL). */
#define KITE__HTTP_METHOD_CAP 15
#define KITE__HTTP_TARGET_CAP 2048 /* a longer request-target: 414 */
#define KITE__HTTP_VALUE_CAP 255   /* Host, Origin, Upgrade, Connection... */
#define KITE__HTTP_KEY_CAP 24      /* base64 of 16 bytes: exactly 24 */

/* The limits a peer's request head is held to. */
typedef struct kite__http_limits {
  uint32_t head_max;    /* request line + headers + the blank line (8192) */
  uint32_t line_max;    /* one line, without its CRLF (4096) */
  uint32_t headers_max; /* header lines (64) */
} kite__http_limits;

#define KITE__HTTP_HEAD_MAX_DEFAULT 8192
#define KITE__HTTP_LINE_MAX_DEFAULT 4096
#define KITE__HTTP_HEADERS_MAX_DEFAULT 64

/* Fills |l| with the defaults above. */
void kite__http_limits_init(kite__http_limits *l);

/* Why a head was refused, X(name, status, text): the status to answer and
 * a description. Positive, like kite__frame_err: they travel in r.why. */
#define KITE__HTTP_WHYS(X)                                                    \
  X(HEAD_TOO_LONG, 431, "request head over head_max")                         \
  X(LINE_TOO_LONG, 431, "a request or header line over line_max")             \
  X(TOO_MANY_HEADERS, 431, "more header lines than headers_max")              \
  X(TARGET_TOO_LONG, 414, "request-target over its capacity")                 \
  X(VALUE_TOO_LONG, 400, "a header the server keeps is over its capacity")    \
  X(BAD_METHOD, 400, "method missing, too long, or not a token")              \
  X(BAD_TARGET, 400, "request-target empty or with a control byte")           \
  X(BAD_VERSION, 505, "not HTTP/1.x")                                         \
  X(BAD_LINE, 400, "a malformed line: bare CR, or no colon after a name")     \
  X(BAD_HEADER_NAME, 400, "a header name that is not a token")                \
  X(BAD_HEADER_VALUE, 400, "a control byte in a header value")                \
  X(OBS_FOLD, 400, "a header continued on the next line (obs-fold)")          \
  X(DUPLICATE, 400, "Host, Origin, Sec-WebSocket-Key or -Version twice")

enum kite__http_why {
  KITE__HTTP_OK = 0,
#define KITE__HTTP_WHY_ENUM(name, status, text) KITE__HTTP_E##name,
  KITE__HTTP_WHYS(KITE__HTTP_WHY_ENUM)
#undef KITE__HTTP_WHY_ENUM
  KITE__HTTP_WHY_COUNT
};

/* The status to answer for a kite__http_why (400 for unknown values). */
int kite__http_why_status(int why);
/* A static description (never NULL). */
const char *kite__http_why_str(int why);

/* Counters by refusal, for whoever owns the connections (a shard): bump
 * refused[why] for each refusal. Plain integers: the owner's thread only. */
typedef struct kite__http_stats {
  uint64_t heads;                          /* heads parsed whole */
  uint64_t refused[KITE__HTTP_WHY_COUNT];  /* by kite__http_why; [0] unused */
} kite__http_stats;

enum kite__http_method {
  KITE__HTTP_M_OTHER = 0,
  KITE__HTTP_M_GET,
  KITE__HTTP_M_HEAD,
};

/* One request head. Fields are read-only for the caller once feed has
 * returned 0; before that only |why| means anything. Strings are
 * NUL-terminated; header values have leading and trailing blanks removed. */
typedef struct kite__http_req {
  kite__http_limits lim;
  /* The parser's own state. */
  uint32_t head_len, line_len, headers;
  uint16_t state, name_len, value_len;
  uint8_t hdr_id;   /* which kept header the current line is */
  uint8_t why;      /* kite__http_why of a sticky refusal */
  char name[24];    /* a header name, as far as a kept one could be */
  char value[KITE__HTTP_VALUE_CAP + 1];
  /* What the head said. */
  uint8_t method;   /* kite__http_method */
  uint8_t minor;    /* HTTP/1.<minor> */
  bool has_host, has_origin, has_key, has_version;
  bool upgrade_websocket; /* Upgrade: lists "websocket" */
  bool connection_upgrade; /* Connection: lists "upgrade" */
  char method_str[KITE__HTTP_METHOD_CAP + 1];
  char target[KITE__HTTP_TARGET_CAP + 1];
  char host[KITE__HTTP_VALUE_CAP + 1];
  char origin[KITE__HTTP_VALUE_CAP + 1];
  char key[KITE__HTTP_KEY_CAP + 1];      /* as sent, when it fits */
  char version[8];                       /* Sec-WebSocket-Version, as sent */
  uint32_t method_len, target_len, version_len; /* request line progress */
} kite__http_req;

/* Prepares |r| for one head under |lim| (copied; NULL: the defaults).
 * Allocates nothing; cannot fail. */
void kite__http_req_init(kite__http_req *r, const kite__http_limits *lim);

/* Parses the |len| bytes at |data| (NULL when |len| is 0), continuing
 * where the last call stopped: a head may arrive in any number of pieces.
 * Returns:
 *   0            the head is whole (its blank line ended within |data|);
 *                *used is the bytes of |data| that were part of it: the
 *                rest belongs to what follows (for a WebSocket, frames);
 *   KITE_EAGAIN  no end yet: every byte was taken (*used = len);
 *   KITE_EPROTO  refused: r->why says why (a kite__http_why), answer
 *                kite__http_why_status(r->why) and close. Sticky: later
 *                calls return it again. *used is unspecified.
 * After 0, later calls return 0 with *used = 0. */
int kite__http_req_feed(kite__http_req *r, const uint8_t *data, size_t len,
                        size_t *used);

/* What a whole head asks for. */
enum kite__http_verdict {
  KITE__HTTP_UPGRADE = 1, /* a valid WebSocket opening handshake: 101 */
  KITE__HTTP_GET,         /* a GET with no WebSocket in it: static route */
  KITE__HTTP_REFUSE,      /* answer *status and close */
};

/* Judges a head that feed returned 0 for (RFC 6455 section 4.2.1; RFC 9112
 * section 3.2 for Host). Returns a kite__http_verdict; for REFUSE, *status
 * is the status to answer:
 *   405  a method other than GET (Allow: GET);
 *   400  a WebSocket request (Upgrade: websocket, or a key) on HTTP/1.0,
 *        without Connection: upgrade, Host or a valid 16-byte key, or an
 *        HTTP/1.1 GET without Host;
 *   426  a WebSocket request whose Sec-WebSocket-Version is not 13 (the
 *        answer names 13).
 * The Origin is not judged here: r->origin is the caller's to check (403).
 * *status is 101 for UPGRADE and 200 for GET. */
int kite__http_req_verdict(const kite__http_req *r, int *status);

/* true when |key| is a valid Sec-WebSocket-Key: base64 of 16 bytes. */
bool kite__http_ws_key_valid(const char *key);

/* ---- answers (http_resp.c) ---- */

/* Writes the 28-character Sec-WebSocket-Accept for |key| (RFC 6455
 * section 4.2.2: base64 of SHA-1 of the key and the GUID) and a NUL. */
void kite__http_ws_accept(const char *key, char out[29]);

/* The 101 for |key|, into |out| (|cap| bytes). Returns its length, or
 * KITE_EMSGSIZE when it does not fit (160 bytes always do). */
int kite__http_resp_101(char *out, size_t cap, const char *key);

/* A refusal with an empty body and Connection: close, for |status| in 400
 * 403 404 405 (with Allow: GET) 414 426 (with Upgrade: websocket and
 * Sec-WebSocket-Version: 13) 431 505; any other status is answered as 400.
 * Returns its length, or KITE_EMSGSIZE (256 bytes always do). */
int kite__http_resp_error(char *out, size_t cap, int status);

/* The head of a 200 for a static file of |len| bytes, with Content-Type
 * |type| (not NULL; kite__http_content_type() gives one), Content-Length,
 * Connection: close, Cache-Control: no-cache and nosniff. The body follows
 * the head. Returns its length, or KITE_EMSGSIZE (512 bytes always do
 * with a type under 128 bytes). */
int kite__http_resp_200(char *out, size_t cap, const char *type,
                        uint64_t len);

/* The Content-Type for a file name by its extension (html, js, mjs, css,
 * json, png, svg, ico, wasm, txt); application/octet-stream otherwise. */
const char *kite__http_content_type(const char *path);

#endif
