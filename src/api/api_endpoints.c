/* api_endpoints.c - the table of the Server API's endpoints (the routes of
 * docs/API.md) and their handlers.
 *
 * NOT IMPLEMENTED YET: every endpoint of the contract needs the chat layer
 * (users, rooms, messages), which is being rewritten for contract v2; until
 * it is wired in, their handlers answer 501 {"ok":false,"error":"internal",
 * "message":"not implemented yet"} after the front has checked the key, the
 * rate limit, the route and the body's shape. Each is marked below. */
#include <string.h>

#include "api/api_internal.h"
#include "util/err.h"
#include "util/mem.h"
#include "webhook/webhook.h"

/* TODO(chat v2): replace with the chat operation of the endpoint. */
static void api__not_implemented(api_req *r)
{
    api_reply_status(r, 501, "internal", "not implemented yet", NULL);
}

/* Test-only (api_config.test_hooks, the hidden option --test-hooks):
 * {type, data?, count?} emits `count` webhook events of that type, so the
 * integration tests can drive the webhook sender without the chat layer. */
static void api__test_events(api_req *r)
{
    webhook_t *wh = api__webhook(r->api);
    const char *type = json_string_value(json_object_get(r->body, "type"));
    json_t *data = json_object_get(r->body, "data");
    json_t *count = json_object_get(r->body, "count");
    json_int_t n = count ? json_integer_value(count) : 1;
    if (wh == NULL) {
        api_reply_status(r, 400, "invalid_payload", "no webhook configured", NULL);
        return;
    }
    if (n < 1 || n > 100000) {
        api_reply_status(r, 400, "invalid_payload", "count must be 1..100000", NULL);
        return;
    }
    for (json_int_t i = 0; i < n; i++) {
        json_t *d = data ? json_deep_copy(data) : json_object();
        if (d == NULL || webhook_emit(wh, type, d) != 0) {
            api_reply_status(r, 500, "internal", "cannot queue the event", NULL);
            return;
        }
    }
    api_reply_ok(r, 200, json_pack("{s:I}", "queued", n));
}

/* Test-only: {ms} answers {waited: ms} after ms milliseconds: an
 * asynchronous handler the way the chat operations will be, to test
 * answers after the loop turned, clients that leave first, and shutdown
 * with a request under way. */
typedef struct {
    uv_timer_t timer;
    api_req *r;
} api__delay;

static void api__delay_closed(uv_handle_t *h)
{
    mem_free(mem_container_of((uv_timer_t *)h, api__delay, timer));
}

static void api__delay_fired(uv_timer_t *t)
{
    api__delay *d = mem_container_of(t, api__delay, timer);
    api_req *r = d->r;
    json_int_t ms = json_integer_value(json_object_get(r->body, "ms"));
    uv_close((uv_handle_t *)&d->timer, api__delay_closed);
    api_reply_ok(r, 200, json_pack("{s:I}", "waited", ms));
}

static void api__delay_abandon(api_req *r)
{
    api__delay *d = r->op;
    uv_close((uv_handle_t *)&d->timer, api__delay_closed);
}

static void api__test_delay(api_req *r)
{
    json_int_t ms = json_integer_value(json_object_get(r->body, "ms"));
    if (ms < 0 || ms > 60000) {
        api_reply_status(r, 400, "invalid_payload", "ms must be 0..60000", NULL);
        return;
    }
    api__delay *d = mem_calloc(1, sizeof(*d));
    d->r = r;
    uv_timer_init(api__loop(r->api), &d->timer);
    r->op = d;
    r->abandon = api__delay_abandon;
    uv_timer_start(&d->timer, api__delay_fired, (uint64_t)ms, 0);
}

static const api_field api__f_user_create[] = {{"username", JSON_STRING, 1}, {NULL, 0, 0}};
static const api_field api__f_room_create[] = {
    {"name", JSON_STRING, 1}, {"private", JSON_TRUE, 0}, {"topic", JSON_STRING, 0},
    {"owner", JSON_STRING, 0}, {NULL, 0, 0}};
static const api_field api__f_room_message[] = {
    {"content", JSON_STRING, 1}, {"from", JSON_STRING, 0}, {"clientId", JSON_STRING, 0},
    {"replyTo", JSON_STRING, 0}, {NULL, 0, 0}};
static const api_field api__f_member[] = {
    {"action", JSON_STRING, 1}, {"role", JSON_STRING, 0}, {"durationMs", JSON_INTEGER, 0},
    {"reason", JSON_STRING, 0}, {NULL, 0, 0}};
static const api_field api__f_private_message[] = {
    {"from", JSON_STRING, 1}, {"content", JSON_STRING, 1}, {"clientId", JSON_STRING, 0},
    {"replyTo", JSON_STRING, 0}, {NULL, 0, 0}};
static const api_field api__f_test_delay[] = {{"ms", JSON_INTEGER, 1}, {NULL, 0, 0}};
static const api_field api__f_test_events[] = {
    {"type", JSON_STRING, 1}, {"data", JSON_OBJECT, 0}, {"count", JSON_INTEGER, 0}, {NULL, 0, 0}};

/* The contract's table (docs/API.md), then the test-only route. */
const api_route api_routes[] = {
    /* NOT IMPLEMENTED YET (501): the ten endpoints below. */
    {"POST", "users", "users.create", api__not_implemented, api__f_user_create, 0},
    {"GET", "users", "users.list", api__not_implemented, NULL, 0},
    {"POST", "users/:/disconnect", "users.disconnect", api__not_implemented, NULL, 0},
    {"GET", "rooms", "rooms.list", api__not_implemented, NULL, 0},
    {"POST", "rooms", "rooms.create", api__not_implemented, api__f_room_create, 0},
    {"POST", "rooms/:/messages", "rooms.messages.create", api__not_implemented,
     api__f_room_message, 0},
    {"GET", "rooms/:/messages", "rooms.messages.list", api__not_implemented, NULL, 0},
    {"DELETE", "rooms/:/messages/:", "rooms.messages.delete", api__not_implemented, NULL, 0},
    {"POST", "rooms/:/members/:", "rooms.members.action", api__not_implemented, api__f_member, 0},
    {"POST", "users/:/messages", "users.messages.create", api__not_implemented,
     api__f_private_message, 0},
    {"POST", "_test/events", "test.events", api__test_events, api__f_test_events, 1},
    {"POST", "_test/delay", "test.delay", api__test_delay, api__f_test_delay, 1},
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
