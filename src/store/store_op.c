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
    }
    store_op__clear(call->kind, res);
}
