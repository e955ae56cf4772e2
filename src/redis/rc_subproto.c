/* rc_subproto.c - the protocol engine of a subscriber link: bytes in,
 * events out, no I/O (rc_sub.c wires it to a libuv TCP stream; the fuzzer
 * and unit tests feed it directly).
 *
 * hiredis' async API cannot be used for sharded pub/sub: it does not know
 * ssubscribe/smessage/sunsubscribe and would match those arrays against its
 * queue of reply callbacks. So replies are parsed here with hiredis' public
 * reader, and matched by us: every command we send is SSUBSCRIBE or
 * SUNSUBSCRIBE of one channel, and is answered by exactly one reply, in
 * order, either an array naming the channel or an error. smessage arrays
 * and sunsubscribe arrays the server sends on its own (when a slot moves
 * away from the node) can come in between. An error reply therefore
 * belongs to the oldest command not answered yet; a sunsubscribe array
 * answers our SUNSUBSCRIBE when that is the oldest command and names the
 * same channel, and is a kick otherwise.
 *
 * The reader builds ordinary redisReply trees (freeReplyObject frees them)
 * but through our own object functions, which refuse arrays larger than a
 * cap instead of allocating whatever element count the peer announces. */
#include "redis/rc_internal.h"
#include "util/mem.h"

#include <string.h>

/* ---- reply objects ------------------------------------------------------ */

static redisReply *rc__obj(const redisReadTask *task, int type)
{
    redisReply *r = mem_calloc(1, sizeof(*r));
    r->type = type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *rc__obj_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r = rc__obj(task, task->type);
    r->str = mem_alloc(len + 1);
    if (len)
        memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void *rc__obj_array(const redisReadTask *task, int elements)
{
    /* The cap rides in the reader's privdata, copied into every task. */
    if (elements > (int)(intptr_t)task->privdata)
        return NULL; /* the reader reports it as out of memory: we close */
    redisReply *r = rc__obj(task, REDIS_REPLY_ARRAY);
    if (elements > 0)
        r->element = mem_calloc((size_t)elements, sizeof(*r->element));
    r->elements = (size_t)(elements > 0 ? elements : 0);
    return r;
}

static void *rc__obj_integer(const redisReadTask *task, long long value)
{
    redisReply *r = rc__obj(task, REDIS_REPLY_INTEGER);
    r->integer = value;
    return r;
}

static void *rc__obj_nil(const redisReadTask *task)
{
    return rc__obj(task, REDIS_REPLY_NIL);
}

redisReader *rc__reader_new(int max_elements)
{
    /* hiredis takes a non-const pointer but never writes through it: this
     * table is constant in all but name. */
    static redisReplyObjectFunctions fns = {
        rc__obj_string, rc__obj_array, rc__obj_integer, rc__obj_nil, freeReplyObject,
    };
    redisReader *r = redisReaderCreateWithFunctions(&fns);
    if (r == NULL)
        return NULL;
    r->privdata = (void *)(intptr_t)max_elements;
    return r;
}

/* ---- the engine --------------------------------------------------------- */

int rc__subproto_init(rc__subproto *p)
{
    memset(p, 0, sizeof(*p));
    p->reader = rc__reader_new(RC__SUB_MAX_ELEMENTS);
    return p->reader ? 0 : -1;
}

void rc__subproto_free(rc__subproto *p)
{
    rc__op *op = p->head;
    while (op) {
        rc__op *next = op->next;
        mem_free(op);
        op = next;
    }
    redisReaderFree(p->reader);
    memset(p, 0, sizeof(*p));
}

void rc__subproto_send(rc__subproto *p, rc__op_kind kind, const char *channel, size_t len,
                       buf_t *out)
{
    const char *cmd = kind == RC__OP_SSUBSCRIBE ? "SSUBSCRIBE" : "SUNSUBSCRIBE";
    buf_appendf(out, "*2\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(cmd), cmd, len);
    buf_append(out, channel, len);
    buf_append(out, "\r\n", 2);

    rc__op *op = mem_alloc(sizeof(*op) + len + 1);
    op->next = NULL;
    op->kind = kind;
    op->len = len;
    memcpy(op->channel, channel, len);
    op->channel[len] = '\0';
    if (p->tail)
        p->tail->next = op;
    else
        p->head = op;
    p->tail = op;
    p->nops++;
}

/* Unlinks the oldest command; the caller frees it. */
static rc__op *rc__subproto_pop(rc__subproto *p)
{
    rc__op *op = p->head;
    p->head = op->next;
    if (p->head == NULL)
        p->tail = NULL;
    p->nops--;
    return op;
}

static int rc__str_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, s, n) == 0;
}

/* Whether the oldest command is `kind` of channel ch. */
static int rc__head_is(const rc__subproto *p, rc__op_kind kind, const redisReply *ch)
{
    const rc__op *op = p->head;
    return op && op->kind == kind && op->len == ch->len && memcmp(op->channel, ch->str, ch->len) == 0;
}

/* One reply: 0, 1 (stop) or ERR_MALFORMED (protocol error). */
static int rc__subproto_reply(rc__subproto *p, const redisReply *r, rc__ev_cb cb, void *ud)
{
    rc__ev ev = {0};
    int rc;

    if (r->type == REDIS_REPLY_ERROR) {
        if (p->head == NULL)
            return ERR_MALFORMED; /* an error nobody asked for (e.g. max clients) */
        rc__op *op = rc__subproto_pop(p);
        ev.kind = op->kind == RC__OP_SSUBSCRIBE ? RC__EV_REFUSED : RC__EV_UNSUBSCRIBED;
        ev.channel = op->channel;
        ev.channel_len = op->len;
        ev.data = r->str;
        ev.len = r->len;
        rc = cb(ud, &ev);
        mem_free(op);
        return rc ? 1 : 0;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return ERR_MALFORMED;
    const redisReply *kind = r->element[0], *ch = r->element[1], *arg = r->element[2];
    if (kind == NULL || ch == NULL || arg == NULL || ch->type != REDIS_REPLY_STRING)
        return ERR_MALFORMED;
    ev.channel = ch->str;
    ev.channel_len = ch->len;

    if (rc__str_is(kind, "smessage")) {
        if (arg->type != REDIS_REPLY_STRING)
            return ERR_MALFORMED;
        ev.kind = RC__EV_MESSAGE;
        ev.data = arg->str;
        ev.len = arg->len;
    } else if (rc__str_is(kind, "ssubscribe")) {
        if (arg->type != REDIS_REPLY_INTEGER || !rc__head_is(p, RC__OP_SSUBSCRIBE, ch))
            return ERR_MALFORMED;
        mem_free(rc__subproto_pop(p));
        ev.kind = RC__EV_SUBSCRIBED;
    } else if (rc__str_is(kind, "sunsubscribe")) {
        if (arg->type != REDIS_REPLY_INTEGER)
            return ERR_MALFORMED;
        if (rc__head_is(p, RC__OP_SUNSUBSCRIBE, ch)) {
            mem_free(rc__subproto_pop(p));
            ev.kind = RC__EV_UNSUBSCRIBED;
        } else {
            ev.kind = RC__EV_KICKED;
        }
    } else {
        return ERR_MALFORMED;
    }
    return cb(ud, &ev) ? 1 : 0;
}

int rc__subproto_feed(rc__subproto *p, const char *data, size_t len, rc__ev_cb cb, void *ud)
{
    if (redisReaderFeed(p->reader, data, len) != REDIS_OK)
        return ERR_MALFORMED;
    for (;;) {
        void *obj = NULL;
        if (redisReaderGetReply(p->reader, &obj) != REDIS_OK)
            return ERR_MALFORMED;
        if (obj == NULL)
            break;
        int rc = rc__subproto_reply(p, obj, cb, ud);
        freeReplyObject(obj);
        if (rc != 0)
            return rc;
    }
    /* An unfinished reply may not hold more than this. */
    if (p->reader->len - p->reader->pos > RC__SUB_MAX_INPUT)
        return ERR_MALFORMED;
    return 0;
}
