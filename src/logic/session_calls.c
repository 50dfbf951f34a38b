/*
 * The public calls on a session's logic side (include/kite/server.h and
 * logic.h): its user pointer and affinity, owned by its executor; the
 * reply from a handler; and the executor's own close.
 */
#include "logic/logic_internal.h"

#include "server/port.h"

static _Thread_local kite__mailbox *running_mailbox;

void kite__logic_set_running(kite__mailbox *mb) { running_mailbox = mb; }

bool kite__logic_on_executor(const kite__logic *lg, const kite__lsess *ls) {
  if (lg->mode == KITE_WORKERS_INLINE)
    return kite__port_shard_current(lg->srv) == (int)ls->shard;
  return running_mailbox == &ls->mb;
}

/* The session |id|'s state, when the caller is its executor (its
 * callbacks, its timers): only then may the caller read and write what
 * the executor owns, and only then can the slot not be released under it. */
static kite__lsess *own(kite_server *srv, kite_session_id id) {
  kite__lsess *ls = kite__port_lsess(srv, id);
  if (!ls || !kite__logic_on_executor(kite__port_logic(srv), ls) || ls->id != id)
    return NULL;
  return ls;
}

int kite_session_set_user(kite_server *srv, kite_session_id id, void *user) {
  kite__lsess *ls = own(srv, id);
  if (!ls)
    return KITE_ENOTFOUND;
  ls->user = user;
  return 0;
}

void *kite_session_user(kite_server *srv, kite_session_id id) {
  kite__lsess *ls = own(srv, id);
  return ls ? ls->user : NULL;
}

int kite_session_set_affinity(kite_server *srv, kite_session_id id,
                              uint64_t key) {
  if (kite__logic_mode(kite__port_logic(srv)) != KITE_WORKERS_HASH)
    return KITE_ESTATE;
  kite__lsess *ls = own(srv, id);
  if (!ls)
    return KITE_ENOTFOUND;
  atomic_store_explicit(&ls->mb.affinity, key, memory_order_relaxed);
  return 0;
}

int kite_reply(const kite_request *req, uint16_t msg_id, const void *body,
               size_t len) {
  return kite_session_send(req->srv, req->session, msg_id, body, len);
}

bool kite__logic_close_requested(kite__logic *lg, kite__lsess *ls) {
  /* Only its executor: it alone knows the slot still holds this session
   * (the slot cannot be released while the executor runs it). */
  if (lg->mode != KITE_WORKERS_INLINE && kite__logic_on_executor(lg, ls))
    return kite__mailbox_set(&ls->mb, KITE__MB_CLOSING) & KITE__MB_CLOSING;
  return false;
}

bool kite__logic_closing(const kite__lsess *ls) {
  return kite__mailbox_flags((kite__mailbox *)&ls->mb) & KITE__MB_CLOSING;
}
