/* turn.h - the one end-of-loop-turn mechanism: work that modules batch
 * over a loop turn (a store's commit, the bus's presence delta, held
 * long-polling answers, socket writes) runs once, in a stated order, just
 * before the loop blocks for I/O.
 *
 * A module embeds a turn_hook and arms it when it has work for the end of
 * the turn; the turn runs the armed hooks phase by phase, in this order:
 *
 *   TURN_STORE  a store commits what the turn wrote and runs the
 *               completions: acks and deliveries are queued by them, so
 *               nothing is sent before it is durable
 *   TURN_BUS    the bus publishes the turn's presence changes, which the
 *               completions above may have made
 *   TURN_EIO    Engine.IO answers the held long-polling GETs with the
 *               packets queued above
 *   TURN_NET    net writes every connection that has output, once (one
 *               writev each), and resumes HTTP parsing held behind a
 *               response
 *
 * A hook armed while the turn runs (a completion that starts another
 * store operation, a write that frees a connection) runs in a later pass
 * of the same turn: passes repeat until nothing is armed, up to
 * TURN_PASSES_MAX; what is still armed then runs at the end of the next
 * turn, and the loop does not block meanwhile. Inside one pass, hooks of
 * a phase run in the order they were armed.
 *
 * One libuv prepare handle (and an idle handle, started only while work is
 * left over), active only while a hook is armed: a loop with nothing armed
 * holds nothing of the turn's and can run until idle. Everything runs on
 * the loop's thread. */
#ifndef PARLEY_UTIL_TURN_H
#define PARLEY_UTIL_TURN_H

#include <uv.h>

typedef enum { TURN_STORE = 0, TURN_BUS, TURN_EIO, TURN_NET, TURN_PHASES } turn_phase;

/* Passes of one turn before the rest waits for the next turn. */
#define TURN_PASSES_MAX 16

typedef struct turn_hook turn_hook;
typedef void (*turn_fn)(void *ud);

/* Embedded in its module; owned by it. */
struct turn_hook {
    turn_fn fn;
    void *ud;
    turn_phase phase;
    turn_hook *prev, *next; /* in an armed list (or the pass running it) */
    turn_hook **list;       /* that list's head; NULL when not armed */
};

typedef struct {
    uv_prepare_t prepare;
    uv_idle_t idle;
    turn_hook *armed[TURN_PHASES];
    unsigned running;       /* turn__run is on the stack */
    unsigned started;       /* prepare (bit 0) and idle (bit 1) started */
} turn_t;

/* Initialises t on loop (both handles, stopped). Returns 0 or ERR_IO. */
int turn_init(uv_loop_t *loop, turn_t *t);

/* Closes both handles (uv_close); the caller frees t after the loop has
 * run the close callbacks. Armed hooks are dropped, not run. */
void turn_close(turn_t *t);

/* Sets up h to run fn(ud) in phase p when armed; h is not armed. */
void turn_hook_init(turn_hook *h, turn_phase p, turn_fn fn, void *ud);

/* Arms h for the end of this turn (a no-op when it is armed already). */
void turn_arm(turn_t *t, turn_hook *h);

/* Disarms h (a no-op when it is not armed); call it before freeing the
 * struct that embeds h. */
void turn_disarm(turn_t *t, turn_hook *h);

/* The loop t runs on. */
static inline uv_loop_t *turn_loop(turn_t *t)
{
    return t->prepare.loop;
}

static inline int turn_armed(const turn_hook *h)
{
    return h->list != NULL;
}

#endif
