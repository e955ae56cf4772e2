/* store_redis_msgs.c - messages that live, on the Redis store (contract
 * v2): reading a message as it is now (history, since, store_msg_get),
 * replies, store_msg_edit, store_msg_delete and the reactions.
 *
 * Keys, in the conversation's slot (the tag of its stream):
 *   parley:{<conv>}:mx    what changed about its messages: a hash, stream
 *                         id -> JSON {c: edited content, e: edit time,
 *                         r: [[emoji, [[user id, username]...]]...] in
 *                         order of first use}, or a tombstone {d: 1, ts,
 *                         f: sender, fid, to};
 *   parley:{<conv>}:tomb  the tombstones in order: a sorted set, score 0,
 *                         member "<ms>-<seq> padded to 20 digits each"
 *                         + " " + the stream id (lexical order is id
 *                         order).
 * A plain append writes neither (XADD alone, as before); a reply is one
 * script (the target checked, then XADD with a field rt). Every read of
 * messages is one script (store_redis__lua_read) that merges the stream's
 * entries with the tombstones in id order and applies :mx, the reply's
 * target read as it is now; every change is one script on the three keys,
 * so it is atomic: two servers reacting at once never lose a count. These
 * ops join the conversation's lane, like appends and history.
 *
 * What a delete guarantees: one script XDELs the stream entry, replaces
 * its :mx record (edited content and reactions) by the tombstone and adds
 * it to :tomb. Every read shows the tombstone at its place, never the
 * text. Redis itself frees the entry's bytes only when the whole stream
 * node holding it (stream-node-max-entries, 100 by default) is deleted or
 * trimmed: until then the text stays in the server's memory, and in RDB
 * snapshots, which save nodes as they are; an AOF keeps the XADD (and an
 * edit's HSET) until its next rewrite, and replicas and backups have their
 * own copies. Operators who need the text gone from disk must rewrite the
 * AOF (BGREWRITEAOF) and let snapshots be replaced.
 *
 * Not kept in step with trimming: the :mx records of messages MAXLEN
 * trimmed away stay (one per edited, reacted or deleted message), and a
 * tombstone stays in :tomb (and in history, below the oldest message kept)
 * after MAXLEN trimmed the messages around it: the stream cannot tell a
 * trimmed id from a deleted one.
 * The read state walk (store_redis_users.c) reads the stream alone: a
 * deleted message counts neither as unread nor as a read point. */
#include "store/store_redis_int.h"

#include <inttypes.h>
#include <stdio.h>

#include "util/log.h"
#include "util/mem.h"

/* What every script of this file starts with: KEYS = stream, :mx, :tomb;
 * render(id, fields) is a message as it is now, {id, fields, edited_ms,
 * deleted, {reply id, from, content} or {}, {{emoji, count, users...}}},
 * or nil (no such message). */
#define STORE_REDIS__LUA_PRELUDE                                                                 \
    "local S, X, T = KEYS[1], KEYS[2], KEYS[3] "                                                 \
    "local function pad(id) local a, b = string.match(id, '^(%d+)-(%d+)$') "                     \
    "return string.rep('0', 20 - #a) .. a .. '-' .. string.rep('0', 20 - #b) .. b end "          \
    "local function state(id) local s = redis.call('HGET', X, id) "                              \
    "if s then return cjson.decode(s) end return nil end "                                       \
    "local function field(f, k) for i = 1, #f, 2 do if f[i] == k then return f[i + 1] end end " \
    "return nil end "                                                                            \
    "local function entry(id) local e = redis.call('XRANGE', S, id, id) "                        \
    "if #e == 1 then return e[1][2] end return nil end "                                         \
    "local function render(id, f) local st = state(id) "                                         \
    "if st and st.d then local o = {'ts', st.ts, 'from', st.f, 'content', ''} "                  \
    "if st.fid then o[#o + 1] = 'fid' o[#o + 1] = st.fid end "                                   \
    "if st.to then o[#o + 1] = 'to' o[#o + 1] = st.to end "                                      \
    "return {id, o, '0', 1, {}, {}} end "                                                        \
    "if not f then return nil end "                                                              \
    "local o, rt = {}, nil "                                                                     \
    "for i = 1, #f, 2 do local k, v = f[i], f[i + 1] "                                           \
    "if k == 'content' and st and st.c then v = st.c end if k == 'rt' then rt = v end "          \
    "o[#o + 1] = k o[#o + 1] = v end "                                                           \
    "local rp = {} if rt then local rs, rf = state(rt), entry(rt) "                              \
    "if rs and rs.d then rp = {rt, rs.f, ''} "                                                   \
    "elseif rf then rp = {rt, field(rf, 'from') or '', (rs and rs.c) or field(rf, 'content') "   \
    "or ''} else rp = {rt, '', ''} end end "                                                     \
    "local rx = {} if st and st.r then for _, e in ipairs(st.r) do local x = {e[1], #e[2]} "     \
    "for j = 1, math.min(" STORE_REDIS__USERS_MAX_TXT ", #e[2]) do x[#x + 1] = e[2][j][2] end "  \
    "rx[#rx + 1] = x end end "                                                                   \
    "return {id, o, (st and st.e) or '0', 0, rp, rx} end "

#define STORE_REDIS__USERS_MAX_TXT "20" /* STORE_REACTION_USERS_MAX */

/* Reads messages: ARGV = mode, arg, count. 'one' id: {message} or 0;
 * 'rev' before ('' for the newest): up to count messages before it,
 * newest first, or 0 when before is not a message of the conversation;
 * 'fwd' start (as XRANGE takes it: '-', '<ms>' or '(<id>'): up to count
 * from it, oldest first. Stream entries and tombstones merged in id
 * order. */
static const char store_redis__lua_read[] =
    STORE_REDIS__LUA_PRELUDE
    "local mode, n = ARGV[1], tonumber(ARGV[3]) "
    "if mode == 'one' then local r = render(ARGV[2], entry(ARGV[2])) "
    "if not r then return 0 end return {r} end "
    "local es, ts "
    "if mode == 'rev' then local b = ARGV[2] "
    "if b ~= '' then local st = state(b) "
    "if not entry(b) and not (st and st.d) then return 0 end "
    "es = redis.call('XREVRANGE', S, '(' .. b, '-', 'COUNT', n) "
    "ts = redis.call('ZREVRANGEBYLEX', T, '(' .. pad(b), '-', 'LIMIT', 0, n) "
    "else es = redis.call('XREVRANGE', S, '+', '-', 'COUNT', n) "
    "ts = redis.call('ZREVRANGEBYLEX', T, '+', '-', 'LIMIT', 0, n) end "
    "else local a, lo = ARGV[2], '-' "
    "if string.sub(a, 1, 1) == '(' then lo = '[' .. pad(string.sub(a, 2)) .. '~' "
    "elseif a ~= '-' then lo = '[' .. pad(a .. '-0') end "
    "es = redis.call('XRANGE', S, a, '+', 'COUNT', n) "
    "ts = redis.call('ZRANGEBYLEX', T, lo, '+', 'LIMIT', 0, n) end "
    "local out, i, j = {}, 1, 1 "
    "while #out < n and (i <= #es or j <= #ts) do "
    "local tid = ts[j] and string.match(ts[j], ' (.*)$') local take "
    "if not es[i] then take = true elseif not tid then take = false else "
    "local pe, pt = pad(es[i][1]), pad(tid) "
    "if mode == 'rev' then take = pt > pe else take = pt < pe end end "
    "local r if take then r = render(tid, nil) j = j + 1 "
    "else r = render(es[i][1], es[i][2]) i = i + 1 end "
    "if r then out[#out + 1] = r end end "
    "return out";

/* A reply: ARGV = its target, maxlen, then the entry's fields. The new
 * stream id, or 0 when the target is not a message of the conversation. */
static const char store_redis__lua_reply[] =
    STORE_REDIS__LUA_PRELUDE
    "local st = state(ARGV[1]) "
    "if not entry(ARGV[1]) and not (st and st.d) then return 0 end "
    "return redis.call('XADD', S, 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))";

/* An edit: ARGV = id, content, now. {1, message}, or 0 (none, or a
 * tombstone). */
static const char store_redis__lua_edit[] =
    STORE_REDIS__LUA_PRELUDE
    "local id = ARGV[1] local f, st = entry(id), state(id) "
    "if not f or (st and st.d) then return 0 end st = st or {} "
    "st.c = ARGV[2] st.e = ARGV[3] redis.call('HSET', X, id, cjson.encode(st)) "
    "return {1, render(id, f)}";

/* A delete: ARGV = id. {changed, tombstone}, or 0 (none). */
static const char store_redis__lua_delete[] =
    STORE_REDIS__LUA_PRELUDE
    "local id = ARGV[1] local st = state(id) "
    "if st and st.d then return {0, render(id, nil)} end "
    "local f = entry(id) if not f then return 0 end "
    "local t = {d = 1, ts = field(f, 'ts'), f = field(f, 'from'), fid = field(f, 'fid'), "
    "to = field(f, 'to')} "
    "redis.call('XDEL', S, id) redis.call('HSET', X, id, cjson.encode(t)) "
    "redis.call('ZADD', T, 0, pad(id) .. ' ' .. id) "
    "return {1, render(id, nil)}";

/* A reaction: ARGV = id, user id, username, emoji, '1' add / '0' remove,
 * the most distinct emoji. {changed, message}, 0 (none, or a tombstone)
 * or -1 (a new emoji over the limit). */
static const char store_redis__lua_react[] =
    STORE_REDIS__LUA_PRELUDE
    "local id, uid, un, em, add = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1' "
    "local f, st = entry(id), state(id) "
    "if not f or (st and st.d) then return 0 end st = st or {} st.r = st.r or {} "
    "local k = nil for i, e in ipairs(st.r) do if e[1] == em then k = i end end "
    "local changed = 0 "
    "if add then if not k then if #st.r >= tonumber(ARGV[6]) then return -1 end "
    "st.r[#st.r + 1] = {em, {}} k = #st.r end "
    "local us, has = st.r[k][2], false "
    "for _, u in ipairs(us) do if u[1] == uid then has = true end end "
    "if not has then us[#us + 1] = {uid, un} changed = 1 end "
    "elseif k then local us = st.r[k][2] "
    "for i, u in ipairs(us) do if u[1] == uid then table.remove(us, i) changed = 1 break end end "
    "if #us == 0 then table.remove(st.r, k) end end "
    "if changed == 1 then redis.call('HSET', X, id, cjson.encode(st)) end "
    "return {changed, render(id, f)}";

/* ---- keys and ids -------------------------------------------------------- */

char *store_redis__conv_key(const char *conv, const char *suffix)
{
    size_t n = strlen(conv) + strlen(suffix) + sizeof("parley:{}:");
    char *k = mem_alloc(n);
    snprintf(k, n, "parley:{%s}:%s", conv, suffix);
    return k;
}

int store_redis__id_parse(const char *id, uint32_t tag, char **sid)
{
    *sid = NULL;
    size_t n = strnlen(id, STORE_ID_MAX);
    if (n == STORE_ID_MAX)
        return STORE_EBADID;
    char *s = mem_strndup(id, n);
    if (store_redis__id_split(s, tag)) {
        *sid = s;
        return 0;
    }
    /* well-formed with another conversation's tag: not one of this one */
    char *dot = strrchr(s, '.');
    int rc = STORE_EBADID;
    if (dot && strlen(dot) == 9 && strspn(dot + 1, "0123456789abcdef") == 8) {
        *dot = '\0';
        if (store_redis__stream_id_valid(s))
            rc = STORE_ENOTFOUND;
    }
    mem_free(s);
    return rc;
}

/* ---- parsing a message as it is now -------------------------------------- */

static int store_redis__parse_reactions(const redisReply *rx, store_msg_t *m)
{
    if (rx->type != REDIS_REPLY_ARRAY)
        return STORE_EIO;
    if (rx->elements == 0)
        return 0;
    m->reactions = mem_calloc(rx->elements, sizeof(*m->reactions));
    for (size_t i = 0; i < rx->elements; i++) {
        const redisReply *x = rx->element[i];
        if (x->type != REDIS_REPLY_ARRAY || x->elements < 2 ||
            x->element[1]->type != REDIS_REPLY_INTEGER || x->element[1]->integer < 0)
            return STORE_EIO;
        store_reaction_t *r = &m->reactions[m->nreactions++];
        if ((r->emoji = store_redis__dup_reply(x->element[0])) == NULL)
            return STORE_EIO;
        r->count = (uint64_t)x->element[1]->integer;
        r->users = mem_calloc(x->elements - 1, sizeof(*r->users));
        for (size_t j = 2; j < x->elements; j++)
            if ((r->users[r->nusers++] = store_redis__dup_reply(x->element[j])) == NULL)
                return STORE_EIO;
    }
    return 0;
}

int store_redis__parse_item(const redisReply *e, uint32_t tag, store_msg_t *m)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 6 ||
        e->element[2]->type != REDIS_REPLY_STRING ||
        e->element[3]->type != REDIS_REPLY_INTEGER || e->element[4]->type != REDIS_REPLY_ARRAY ||
        store_redis__parse_entry(e, tag, m) != 0 ||
        store_redis__parse_i64(e->element[2]->str, e->element[2]->len, &m->edited_ms) != 0)
        return STORE_EIO;
    m->deleted = e->element[3]->integer != 0;
    const redisReply *rp = e->element[4];
    if (rp->elements == 3) {
        char id[STORE_ID_MAX];
        if (rp->element[0]->type != REDIS_REPLY_STRING ||
            rp->element[2]->type != REDIS_REPLY_STRING ||
            store_redis__id_make(id, rp->element[0]->str, rp->element[0]->len, tag) != 0 ||
            (m->reply_from = store_redis__dup_reply(rp->element[1])) == NULL)
            return STORE_EIO;
        m->reply_id = mem_strdup(id);
        m->reply_excerpt = store_op__excerpt(rp->element[2]->str, rp->element[2]->len);
    } else if (rp->elements != 0) {
        return STORE_EIO;
    }
    return store_redis__parse_reactions(e->element[5], m);
}

/* ---- reads --------------------------------------------------------------- */

/* Sets op's message keys: its stream (op->key), :mx and :tomb. */
void store_redis__msg_keys(store_redis__op *op, const char *conv)
{
    op->key = store_redis__stream_key(conv);
    op->mx_key = store_redis__conv_key(conv, "mx");
    op->tomb_key = store_redis__conv_key(conv, "tomb");
    op->tag = store_redis__conv_tag(conv);
}

void store_redis__read_send(store_redis__op *op, store_redis__reply_fn on_reply, const char *mode,
                            const char *arg, size_t count)
{
    char n[24];
    snprintf(n, sizeof(n), "%zu", count);
    const char *argv[] = {"EVAL", store_redis__lua_read, "3", op->key, op->mx_key, op->tomb_key,
                          mode, arg, n};
    store_redis__send(op, on_reply, op->key, 9, argv, NULL);
}

/* A reply to an append with replyTo: the new stream id, or 0 (the target
 * is not a message of the conversation). */
static void store_redis__on_reply_added(store_redis__op *op, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        store_redis__finish(op, STORE_ENOTFOUND);
    else
        store_redis__on_xadded(op, r);
}

void store_redis__reply_xadd(store_redis__op *op, int argc, const char **argv,
                             const size_t *len)
{
    /* argv = XADD key MAXLEN ~ maxlen * fields...: the script takes the
     * fields after its target and maxlen */
    const char *a[32];
    size_t l[32];
    int n = 0;
    a[n] = "EVAL", l[n++] = 4;
    a[n] = store_redis__lua_reply, l[n++] = strlen(store_redis__lua_reply);
    a[n] = "3", l[n++] = 1;
    a[n] = op->key, l[n++] = strlen(op->key);
    a[n] = op->mx_key, l[n++] = strlen(op->mx_key);
    a[n] = op->tomb_key, l[n++] = strlen(op->tomb_key);
    a[n] = op->in.append.reply, l[n++] = strlen(op->in.append.reply);
    a[n] = argv[4], l[n++] = len[4];
    for (int i = 6; i < argc && n < 32; i++)
        a[n] = argv[i], l[n++] = len[i];
    store_redis__send(op, store_redis__on_reply_added, op->key, n, a, l);
}

/* ---- store_msg_get, edit, delete, reactions ------------------------------ */

/* The read script's {message} (or 0), or a change script's {changed,
 * message} (or 0, or -1). */
static void store_redis__on_msg(store_redis__op *op, const redisReply *r)
{
    store_msg_t *m = &op->res.msg.msg;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        store_redis__finish(op, r->integer == -1 ? STORE_ELIMIT : STORE_ENOTFOUND);
        return;
    }
    size_t at = op->in.msg.which == STORE_REDIS__MSG_GET ? 0 : 1;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != at + 1 ||
        (at && r->element[0]->type != REDIS_REPLY_INTEGER) ||
        store_redis__parse_item(r->element[at], op->tag, m) != 0) {
        store_redis__fail(op, r); /* frees what was parsed */
        return;
    }
    op->res.msg.changed = at ? r->element[0]->integer == 1 : 0;
    store_redis__finish(op, 0);
}

static void store_redis__run_msg(store_redis__op *op)
{
    if (op->in.msg.rc != 0) {
        store_redis__ready(op, op->in.msg.rc);
        return;
    }
    char now[24];
    const char *argv[12] = {"EVAL", NULL, "3", op->key, op->mx_key, op->tomb_key,
                            op->in.msg.sid};
    size_t len[12];
    int argc = 7;
    switch (op->in.msg.which) {
    case STORE_REDIS__MSG_GET:
        store_redis__read_send(op, store_redis__on_msg, "one", op->in.msg.sid, 1);
        return;
    case STORE_REDIS__MSG_EDIT:
        snprintf(now, sizeof(now), "%" PRId64, op->in.msg.now_ms);
        argv[1] = store_redis__lua_edit;
        argv[argc++] = op->in.msg.text;
        argv[argc++] = now;
        break;
    case STORE_REDIS__MSG_DELETE:
        argv[1] = store_redis__lua_delete;
        break;
    default:
        argv[1] = store_redis__lua_react;
        argv[argc++] = op->in.msg.user_id;
        argv[argc++] = op->in.msg.username;
        argv[argc++] = op->in.msg.text;
        argv[argc++] = op->in.msg.which == STORE_REDIS__MSG_REACT_ADD ? "1" : "0";
        argv[argc++] = STORE_REDIS__EMOJI_MAX_TXT;
        break;
    }
    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    if (op->in.msg.which == STORE_REDIS__MSG_EDIT)
        len[7] = op->in.msg.text_len;
    store_redis__send(op, store_redis__on_msg, op->key, argc, argv, len);
}

static const store_redis__kind store_redis__msg_kind = {"msg", store_redis__run_msg};

/* A new message op on id of conv (a malformed or foreign id fails it at
 * its start). */
static store_redis__op *store_redis__msg_op(store_t *s, store_op_call call, const char *conv,
                                            const char *id, int which)
{
    store_redis__op *op = store_redis__op_new(store_redis__self(s), &store_redis__msg_kind, call);
    store_redis__msg_keys(op, conv);
    op->in.msg.which = which;
    op->in.msg.rc = store_redis__id_parse(id, op->tag, &op->in.msg.sid);
    store_redis__lane_join(op, op->key);
    return op;
}

void store_redis__msg_get(store_t *s, const char *conv, const char *id, store_msg_cb cb,
                          void *ud)
{
    store_op_call call = STORE_OP_CALL_MSG(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__submit(store_redis__msg_op(s, call, conv, id, STORE_REDIS__MSG_GET));
}

void store_redis__msg_edit(store_t *s, const char *conv, const char *id, const char *content,
                           size_t content_len, int64_t now_ms, store_msg_cb cb, void *ud)
{
    store_op_call call = STORE_OP_CALL_MSG(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__msg_op(s, call, conv, id, STORE_REDIS__MSG_EDIT);
    op->in.msg.text = mem_strndup(content, content_len);
    op->in.msg.text_len = content_len;
    op->in.msg.now_ms = now_ms;
    store_redis__submit(op);
}

void store_redis__msg_delete(store_t *s, const char *conv, const char *id, store_msg_cb cb,
                             void *ud)
{
    store_op_call call = STORE_OP_CALL_MSG(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__submit(store_redis__msg_op(s, call, conv, id, STORE_REDIS__MSG_DELETE));
}

void store_redis__reaction(store_t *s, const char *conv, const char *id, const char *user_id,
                           const char *username, const char *emoji, int add, store_msg_cb cb,
                           void *ud)
{
    store_op_call call = STORE_OP_CALL_MSG(cb, ud);
    if (store_op__refused(s, &call))
        return;
    store_redis__op *op = store_redis__msg_op(
        s, call, conv, id, add ? STORE_REDIS__MSG_REACT_ADD : STORE_REDIS__MSG_REACT_DEL);
    op->in.msg.text = mem_strdup(emoji);
    op->in.msg.text_len = strlen(emoji);
    op->in.msg.user_id = mem_strdup(user_id);
    op->in.msg.username = mem_strdup(username);
    store_redis__submit(op);
}
