/* tq.c - FIFO deadline queues on one libuv timer each (see tq.h). */
#include "util/tq.h"

#include "util/mem.h"

static void tq__fire(uv_timer_t *t);

static void tq__arm(tq_queue *q)
{
    tq_node *first = q->head.next;
    if (first == &q->head) {
        uv_timer_stop(&q->timer);
        q->armed = 0;
        return;
    }
    if (q->armed == first->deadline)
        return;
    uint64_t now = uv_now(q->timer.loop);
    uint64_t delay = first->deadline > now ? first->deadline - now : 0;
    uv_timer_start(&q->timer, tq__fire, delay, 0);
    q->armed = first->deadline ? first->deadline : 1;
}

static void tq__fire(uv_timer_t *t)
{
    tq_queue *q = t->data;
    q->armed = 0;
    uint64_t now = uv_now(t->loop);
    while (q->head.next != &q->head && q->head.next->deadline <= now) {
        tq_node *n = q->head.next;
        tq_remove(n);
        q->expire(q, n);
    }
    tq__arm(q);
}

void tq_init(tq_queue *q, uv_loop_t *loop, tq_expire_cb expire, void *data)
{
    q->head.prev = q->head.next = &q->head;
    q->head.deadline = 0;
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    q->armed = 0;
    q->expire = expire;
    q->data = data;
}

void tq_close(tq_queue *q)
{
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, NULL);
}

void tq_remove(tq_node *n)
{
    if (n->next == NULL)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

void tq_push(tq_queue *q, tq_node *n, uint64_t deadline)
{
    tq_remove(n);
    n->deadline = deadline;
    tq_node *at = q->head.prev; /* walk back from the tail */
    while (at != &q->head && at->deadline > deadline)
        at = at->prev;
    n->prev = at;
    n->next = at->next;
    at->next->prev = n;
    at->next = n;
    if (q->armed == 0 || deadline < q->armed) {
        q->armed = 0;
        uv_timer_stop(&q->timer);
        uint64_t now = uv_now(q->timer.loop);
        uv_timer_start(&q->timer, tq__fire, deadline > now ? deadline - now : 0, 0);
        q->armed = deadline ? deadline : 1;
    }
}

void tq_owned_push(tq_queue *q, tq_owned **slot, void *owner, uint64_t deadline)
{
    if (*slot == NULL) {
        *slot = mem_calloc(1, sizeof(**slot));
        (*slot)->slot = slot;
    }
    (*slot)->owner = owner;
    tq_push(q, &(*slot)->node, deadline);
}

void tq_owned_cancel(tq_owned **slot)
{
    if (*slot == NULL)
        return;
    tq_remove(&(*slot)->node);
    mem_free(*slot);
    *slot = NULL;
}

void *tq_owned_expired(tq_node *n)
{
    tq_owned *o = mem_container_of(n, tq_owned, node);
    void *owner = o->owner;
    *o->slot = NULL;
    mem_free(o);
    return owner;
}
