/* store_redis_int.h - the Redis store's internals shared by its files:
 * store_redis.c (op records, lanes, commands, replies; rooms and messages),
 * store_redis_users.c (contract v2: users, secrets, membership, read
 * state), store_redis_msgs.c (messages that live) and store_redis_rooms.c
 * (roles and owners). Internal to src/store/: the chat layer sees store.h
 * only. */
#ifndef PARLEY_STORE_REDIS_INT_H
#define PARLEY_STORE_REDIS_INT_H

#include "redis/rc.h"
#include "store/store.h"
#include "store/store_op.h"
#include "util/lanes.h"

typedef struct store_redis__op store_redis__op;
typedef struct store_redis store_redis;

/* A reply handler: one step of one kind of operation. r is the reply, or
 * NULL when the command failed (rc's error or an error reply, logged). */
typedef void (*store_redis__reply_fn)(store_redis__op *op, const redisReply *r);

/* What differs between the kinds of operation: how one starts (once it
 * heads its lanes) and what its inputs hold. */
typedef struct {
    const char *name; /* for the log */
    void (*run)(store_redis__op *op);
} store_redis__kind;

struct store_redis__op {
    store_redis__op *prev, *next; /* every live op of the store, in start order */
    store_redis__op *ready_next;  /* failed before reaching Redis */
    store_redis *st;
    const store_redis__kind *kind;
    store_op_call call;
    store_op_result res;
    store_redis__reply_fn on_reply; /* the step whose commands are out */
    const char *cmd;                /* its command's name, for the log */
    int started;
    int inflight; /* rc commands out: the last callback frees a done op */
    int done;     /* the callback ran */
    int ready_rc; /* for a ready op */
    lanes_node ln[2];
    int nlanes;
    char *key;    /* the key of its first step: the room's hash, the
                     conversation's stream or the user's pconv index */
    char *mx_key, *tomb_key; /* with a stream: its :mx and :tomb
                                (store_redis_msgs.c) */
    uint32_t tag; /* the conversation's, in its message ids */
    void *x;                 /* a v2 op's state (store_redis_users.c) ... */
    void (*x_free)(void *x); /* ... and how to free it, with the op */
    union {       /* inputs, copied, by kind */
        struct {
            char *key;  /* the room's key as given: its field in the index */
            char *name; /* the display name to create it with */
            int is_private;
            char *topic, *owner; /* or NULL */
            int64_t now_ms;
        } room_create;
        struct {
            char *from, *to, *content;
            size_t content_len;
            int64_t ts_ms;
            char *cid_key;   /* the clientId entry's key, or NULL */
            size_t cid_key_len;
            char *cid_route; /* its key up to the hash tag's end: its lane */
            int64_t cid_expires_ms;
            char *conv;      /* a private conversation: its name ... */
            char *pconv[2];  /* ... and its users' pconv index keys */
            int npconv;
            char *from_id;   /* the sender's user id, or NULL */
            char *dconv[2];  /* a direct conversation: its users' index keys */
            int ndconv;
            char *reply;     /* the stream id it replies to, or NULL */
            char *action, *user; /* a system message's, or NULL */
            int reply_rc;    /* replyTo malformed or foreign: fails at start */
        } append;
        struct {
            char *before; /* the stream id part of `before`, or NULL */
            size_t limit;
        } history;
        struct {
            int64_t since_ms;
            size_t limit;
            size_t asked; /* entries the last XRANGE asked for */
            size_t cap;   /* of res.page.msgs */
            char *after;  /* "(" + the last entry read: the next chunk's start */
        } since;
        struct {
            int64_t since_ms;
        } convs;
        struct {            /* role_set, and (store_redis_rooms.c) flags, topic */
            char *keys[3];  /* the room's members, joined, roles; a flag:
                               the flags hash */
            char *user_id;  /* a flag: its field; the topic */
            int role;       /* a flag: its kind */
            int op;         /* a flag: STORE_FLAG__* */
            int64_t ms;     /* a flag: until or now */
        } role;
        struct {
            int which;     /* STORE_REDIS__MSG_* */
            int rc;        /* the id malformed or foreign: fails at start */
            char *sid;     /* the message's stream id */
            char *text;    /* edit: the content; reaction: the emoji */
            size_t text_len;
            int64_t now_ms;
            char *user_id, *username;
        } msg;
    } in;
};

struct store_redis {
    struct store base; /* first: a store_t * is a store_redis * */
    uv_loop_t *loop;
    turn_t *turn;
    rc_cluster *rc;
    turn_hook ready_hook; /* TURN_STORE: completes ready ops */
    char maxlen_txt[16];
    uint32_t wait_replicas;   /* replicas to WAIT for; 0: none */
    char wait_txt[16];        /* the same as text */
    uint64_t wait_skip_until; /* uv_now before which appends skip WAIT */
    int owns_rc;              /* store_redis_open made st->rc: close frees it */
    store_redis__op *first, *last;
    store_redis__op *ready, *ready_last;
    lanes_t lanes;
};

/* Op records: a new one of `kind` for call (in the store's list; inputs
 * are the caller's to fill), its lanes (joined in start order), its start
 * (now if it heads its lanes). */
store_redis__op *store_redis__op_new(store_redis *st, const store_redis__kind *kind,
                                     store_op_call call);
void store_redis__lane_join(store_redis__op *op, const char *key);
void store_redis__submit(store_redis__op *op);
/* Runs op's callback with rc and op->res (emptied on error); a reply
 * that is not what the step expects (or NULL: a failed command) fails it
 * with STORE_EIO; ready completes it at the end of the turn (no Redis involved). */
void store_redis__finish(store_redis__op *op, int rc);
void store_redis__fail(store_redis__op *op, const redisReply *r);
void store_redis__ready(store_redis__op *op, int rc);
/* Sends one command of op's step, replies to on_reply: command returns
 * STORE_EIO when rc refused it; send fails op at the end of the turn then. */
int store_redis__command(store_redis__op *op, store_redis__reply_fn on_reply, const char *key,
                         int argc, const char **argv, const size_t *argvlen);
void store_redis__send(store_redis__op *op, store_redis__reply_fn on_reply, const char *key,
                       int argc, const char **argv, const size_t *argvlen);
/* Replies: a string's copy (NULL when not a string), a decimal int64. */
char *store_redis__dup_reply(const redisReply *r);
int store_redis__parse_i64(const char *s, size_t n, int64_t *out);
int store_redis__reply_i64(const redisReply *r, int64_t *out);
/* Message ids: "<stream id>.<conversation tag>" (see store_redis.c). */
uint32_t store_redis__conv_tag(const char *conv);
int store_redis__stream_id_valid(const char *s);
int store_redis__id_split(char *s, uint32_t tag);
int store_redis__id_make(char id[STORE_ID_MAX], const char *sid, size_t len, uint32_t tag);
/* One stream entry into *m (zeroed): 0 or STORE_EIO (free m either way). */
int store_redis__parse_entry(const redisReply *e, uint32_t tag, store_msg_t *m);
/* "parley:{<conv>}:msgs". Caller frees. */
char *store_redis__stream_key(const char *conv);
store_redis *store_redis__self(store_t *s);
/* "parley:{i:<id>}" + suffix: a user's keys (store_redis_users.c). */
char *store_redis__user_key(const char *id, const char *suffix);

/* "a" b "c", mem_alloc'd (store_redis_users.c). */
char *store_redis__fmt(const char *a, const char *b, const char *c);
/* Rooms with owners (store_redis_rooms.c): the room side's scripts, its
 * keys (members, joined, roles; caller frees), a role reply as STORE_ROLE_*. */
extern const char store_redis__lua_room_join[];
extern const char store_redis__lua_room_leave[];
extern const char store_redis__lua_room_members[];
void store_redis__room_keys(const char *room, char *k[3]);
int store_redis__role_parse(const redisReply *r);
void store_redis__member_role_set(store_t *s, const char *room_key, const char *user_id,
                                  int role, store_count_cb cb, void *ud);
/* A room just created (or found): its owner's membership when the create
 * asked for one, then the create's completion. */
void store_redis__room_owned(store_redis__op *op);
/* store_member_rooms' last step: the user's role in each room of the
 * list (op->res.list), then the op's completion. */
void store_redis__member_roles(store_redis__op *op, const char *user_id);
void store_redis__room_info(store_t *s, const char *key, store_room_info_cb cb, void *ud);
void store_redis__room_topic(store_t *s, const char *key, const char *topic, store_count_cb cb,
                             void *ud);
void store_redis__flag(store_t *s, const char *room_key, const char *user_id, int kind, int op,
                       int64_t ms, store_count_cb cb, void *ud);
extern const char store_redis__lua_oset_add[];
extern const char store_redis__lua_oset_del[];
void store_redis__room_delete(store_t *s, const char *key, store_count_cb cb, void *ud);
/* Messages that live (store_redis_msgs.c). */
enum {
    STORE_REDIS__MSG_GET = 1,
    STORE_REDIS__MSG_EDIT,
    STORE_REDIS__MSG_DELETE,
    STORE_REDIS__MSG_REACT_ADD,
    STORE_REDIS__MSG_REACT_DEL
};
#define STORE_REDIS__EMOJI_MAX_TXT "20" /* STORE_REACTION_EMOJI_MAX */
/* "parley:{<conv>}:<suffix>". Caller frees. */
char *store_redis__conv_key(const char *conv, const char *suffix);
/* op's stream, :mx and :tomb keys and tag for conv. */
void store_redis__msg_keys(store_redis__op *op, const char *conv);
/* A message id of the conversation tagged tag: 0 and its stream id
 * (*sid, caller frees), STORE_EBADID (malformed) or STORE_ENOTFOUND
 * (another conversation's). */
int store_redis__id_parse(const char *id, uint32_t tag, char **sid);
/* One item of the read script (a message as it is now) into *m, zeroed:
 * 0 or STORE_EIO (free m either way). */
int store_redis__parse_item(const redisReply *e, uint32_t tag, store_msg_t *m);
/* Sends the read script (mode "one", "rev" or "fwd", see
 * store_redis_msgs.c) as op's step. */
void store_redis__read_send(store_redis__op *op, store_redis__reply_fn on_reply, const char *mode,
                            const char *arg, size_t count);
/* An append with replyTo: the XADD's argv/len as the reply script. */
void store_redis__reply_xadd(store_redis__op *op, int argc, const char **argv,
                             const size_t *len);
void store_redis__on_xadded(store_redis__op *op, const redisReply *r);
void store_redis__msg_get(store_t *s, const char *conv, const char *id, store_msg_cb cb,
                          void *ud);
void store_redis__msg_edit(store_t *s, const char *conv, const char *id, const char *content,
                           size_t content_len, int64_t now_ms, store_msg_cb cb, void *ud);
void store_redis__msg_delete(store_t *s, const char *conv, const char *id, store_msg_cb cb,
                             void *ud);
void store_redis__reaction(store_t *s, const char *conv, const char *id, const char *user_id,
                           const char *username, const char *emoji, int add, store_msg_cb cb,
                           void *ud);

/* The v2 operations (store_redis_users.c), for the ops table. */
void store_redis__user_claim(store_t *s, const char *key, const char *name, int64_t now_ms,
                             int64_t ttl_ms, store_user_cb cb, void *ud);
void store_redis__user_ensure(store_t *s, const char *key, const char *name, int64_t now_ms,
                              store_user_cb cb, void *ud);
void store_redis__user_get(store_t *s, const char *id, int64_t now_ms, int64_t ttl_ms,
                           store_user_cb cb, void *ud);
void store_redis__user_find(store_t *s, const char *key, int64_t now_ms, int64_t ttl_ms,
                            store_user_cb cb, void *ud);
void store_redis__user_rename(store_t *s, const char *id, const char *key, const char *name,
                              int64_t now_ms, int64_t ttl_ms, store_user_cb cb, void *ud);
void store_redis__user_touch(store_t *s, const char *id, int64_t now_ms, store_count_cb cb,
                             void *ud);
void store_redis__user_purge(store_t *s, int64_t now_ms, int64_t ttl_ms, store_count_cb cb,
                             void *ud);
void store_redis__secret_get(store_t *s, const char *name, size_t len, store_secret_cb cb,
                             void *ud);
void store_redis__member_add(store_t *s, const char *room_key, const char *user_id,
                             int64_t now_ms, store_count_cb cb, void *ud);
void store_redis__member_remove(store_t *s, const char *room_key, const char *user_id,
                                store_count_cb cb, void *ud);
void store_redis__member_rooms(store_t *s, const char *user_id, store_room_list_cb cb, void *ud);
void store_redis__room_members(store_t *s, const char *room_key, store_member_list_cb cb,
                               void *ud);
void store_redis__direct_convs(store_t *s, const char *user_id, store_conv_list_cb cb, void *ud);
void store_redis__read_mark(store_t *s, const char *user_id, const char *conv,
                            const char *msg_id, store_read_cb cb, void *ud);
void store_redis__read_get(store_t *s, const char *user_id, const char *conv, store_read_cb cb,
                           void *ud);

#endif
