/* turn.c - the end-of-loop-turn hooks (see turn.h): one prepare handle runs
 * the armed hooks phase by phase; an idle handle keeps the loop from
 * blocking while work is left over past TURN_PASSES_MAX. */
#include "util/turn.h"

#include <utlist.h>

#include "util/err.h"

#define TURN__PREPARE 1u
#define TURN__IDLE 2u

static void turn__on_prepare(uv_prepare_t *h);
static void turn__on_idle(uv_idle_t *h);

int turn_init(uv_loop_t *loop, turn_t *t)
{
    *t = (turn_t){0};
    if (uv_prepare_init(loop, &t->prepare) != 0)
        return ERR_IO;
    if (uv_idle_init(loop, &t->idle) != 0) {
        uv_close((uv_handle_t *)&t->prepare, NULL);
        return ERR_IO;
    }
    t->prepare.data = t->idle.data = t;
    return 0;
}

static int turn__any_armed(const turn_t *t)
{
    for (int p = 0; p < TURN_PHASES; p++)
        if (t->armed[p])
            return 1;
    return 0;
}

/* The prepare handle runs while anything is armed; the idle handle only
 * while work is left over past the pass limit. */
static void turn__update_handles(turn_t *t, int left_over)
{
    int want_prepare = turn__any_armed(t);
    if (want_prepare && !(t->started & TURN__PREPARE)) {
        uv_prepare_start(&t->prepare, turn__on_prepare);
        t->started |= TURN__PREPARE;
    } else if (!want_prepare && (t->started & TURN__PREPARE)) {
        uv_prepare_stop(&t->prepare);
        t->started &= ~TURN__PREPARE;
    }
    int want_idle = want_prepare && left_over;
    if (want_idle && !(t->started & TURN__IDLE)) {
        uv_idle_start(&t->idle, turn__on_idle);
        t->started |= TURN__IDLE;
    } else if (!want_idle && (t->started & TURN__IDLE)) {
        uv_idle_stop(&t->idle);
        t->started &= ~TURN__IDLE;
    }
}

void turn_hook_init(turn_hook *h, turn_phase p, turn_fn fn, void *ud)
{
    *h = (turn_hook){.fn = fn, .ud = ud, .phase = p};
}

void turn_arm(turn_t *t, turn_hook *h)
{
    if (h->list)
        return;
    h->list = &t->armed[h->phase];
    DL_APPEND(*h->list, h);
    if (!t->running)
        turn__update_handles(t, 0);
}

void turn_disarm(turn_t *t, turn_hook *h)
{
    if (h->list == NULL)
        return;
    DL_DELETE(*h->list, h);
    h->list = NULL;
    h->prev = h->next = NULL;
    if (!t->running)
        turn__update_handles(t, 0);
}

/* Runs every hook armed in phase p when the pass reached it. A hook armed
 * again by its own run (or in an earlier phase) waits for the next pass. */
static void turn__run_phase(turn_t *t, int p)
{
    turn_hook *pass = t->armed[p];
    t->armed[p] = NULL;
    for (turn_hook *h = pass; h; h = h->next)
        h->list = &pass;
    while (pass) {
        turn_hook *h = pass;
        DL_DELETE(pass, h);
        h->list = NULL;
        h->prev = h->next = NULL;
        h->fn(h->ud); /* may arm or disarm any hook, h included */
    }
}

static void turn__run(turn_t *t)
{
    t->running = 1;
    int pass = 0;
    for (; pass < TURN_PASSES_MAX && turn__any_armed(t); pass++)
        for (int p = 0; p < TURN_PHASES; p++)
            turn__run_phase(t, p);
    t->running = 0;
    turn__update_handles(t, pass == TURN_PASSES_MAX);
}

static void turn__on_prepare(uv_prepare_t *h)
{
    turn__run(h->data);
}

/* Only keeps the loop from blocking: the prepare handle runs the hooks. */
static void turn__on_idle(uv_idle_t *h)
{
    (void)h;
}

void turn_close(turn_t *t)
{
    for (int p = 0; p < TURN_PHASES; p++)
        while (t->armed[p])
            turn_disarm(t, t->armed[p]);
    uv_close((uv_handle_t *)&t->prepare, NULL);
    uv_close((uv_handle_t *)&t->idle, NULL);
}
