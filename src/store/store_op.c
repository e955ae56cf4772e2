/* store_op.c - completing a store operation with its typed callback: the
 * one dispatch over store_op_kind that both backends use (store_op.h). */
#include "store/store_op.h"

void store_op__clear(store_op_kind kind, store_op_result *res)
{
    switch (kind) {
    case STORE_OP_ROOM:
        mem_free(res->room.name);
        break;
    case STORE_OP_LIST:
        store_room_list_free(&res->list);
        break;
    case STORE_OP_PAGE:
        store_history_free(&res->page);
        break;
    case STORE_OP_CONVS:
        store_conv_list_free(&res->convs);
        break;
    case STORE_OP_USER:
        mem_free(res->user.key);
        mem_free(res->user.name);
        break;
    case STORE_OP_SECRET:
        mem_free(res->secret.bytes);
        break;
    case STORE_OP_MEMBERS:
        store_member_list_free(&res->members);
        break;
    case STORE_OP_MSG:
        store_msg_free(&res->msg.msg);
        break;
    case STORE_OP_INFO:
        mem_free(res->info.name);
        mem_free(res->info.topic);
        break;
    case STORE_OP_APPEND:
    case STORE_OP_COUNT:
    case STORE_OP_READ:
        break;
    }
    memset(res, 0, sizeof(*res));
}

void store_op__complete(const store_op_call *call, int rc, store_op_result *res)
{
    if (rc != 0)
        store_op__clear(call->kind, res);
    switch (call->kind) {
    case STORE_OP_ROOM:
        call->cb.room(call->ud, rc, res->room.name, res->room.created);
        break;
    case STORE_OP_LIST:
        call->cb.list(call->ud, rc, &res->list);
        break;
    case STORE_OP_APPEND:
        call->cb.append(call->ud, rc, &res->append);
        break;
    case STORE_OP_PAGE:
        call->cb.page(call->ud, rc, &res->page);
        break;
    case STORE_OP_COUNT:
        call->cb.count(call->ud, rc, res->count);
        break;
    case STORE_OP_CONVS:
        call->cb.convs(call->ud, rc, &res->convs);
        break;
    case STORE_OP_USER:
        call->cb.user(call->ud, rc, rc == 0 ? &res->user : NULL);
        break;
    case STORE_OP_SECRET:
        call->cb.secret(call->ud, rc, res->secret.bytes, res->secret.len);
        break;
    case STORE_OP_MEMBERS:
        call->cb.members(call->ud, rc, &res->members);
        break;
    case STORE_OP_READ:
        call->cb.read(call->ud, rc, &res->read);
        break;
    case STORE_OP_MSG:
        call->cb.msg(call->ud, rc, rc == 0 ? &res->msg.msg : NULL, res->msg.changed);
        break;
    case STORE_OP_INFO:
        call->cb.info(call->ud, rc, rc == 0 ? &res->info : NULL);
        break;
    }
    store_op__clear(call->kind, res);
}

char *store_op__excerpt(const char *content, size_t len)
{
    size_t i = 0, cp = 0;
    while (i < len && cp < STORE_EXCERPT_CP) {
        i++; /* past a lead byte, then its continuation bytes */
        while (i < len && ((unsigned char)content[i] & 0xC0) == 0x80)
            i++;
        cp++;
    }
    return mem_strndup(content, i);
}

void store_op__reaction_push(store_msg_t *m, const char *emoji, size_t emoji_len,
                             const char *username, size_t username_len)
{
    store_reaction_t *r = NULL;
    for (size_t i = 0; i < m->nreactions; i++) {
        if (strlen(m->reactions[i].emoji) == emoji_len &&
            memcmp(m->reactions[i].emoji, emoji, emoji_len) == 0) {
            r = &m->reactions[i];
            break;
        }
    }
    if (r == NULL) {
        m->reactions = mem_realloc(m->reactions, (m->nreactions + 1) * sizeof(*m->reactions));
        r = &m->reactions[m->nreactions++];
        memset(r, 0, sizeof(*r));
        r->emoji = mem_strndup(emoji, emoji_len);
        r->users = mem_calloc(STORE_REACTION_USERS_MAX, sizeof(*r->users));
    }
    r->count++;
    if (r->nusers < STORE_REACTION_USERS_MAX)
        r->users[r->nusers++] = mem_strndup(username, username_len);
}
