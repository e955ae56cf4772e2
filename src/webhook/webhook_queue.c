/* webhook_queue.c - the webhook sender's bounded queue, batch bodies,
 * signatures and backoff schedule (webhook_internal.h). No I/O. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "util/err.h"
#include "util/mem.h"
#include "webhook/webhook_internal.h"

void webhook__queue_init(webhook_queue *q, size_t cap)
{
    memset(q, 0, sizeof(*q));
    q->cap = cap ? cap : 1;
    q->items = mem_calloc(q->cap, sizeof(*q->items));
}

void webhook__queue_free(webhook_queue *q)
{
    webhook__queue_pop(q, q->len);
    mem_free(q->items);
    q->items = NULL;
}

json_t *webhook__queue_at(const webhook_queue *q, size_t i)
{
    return q->items[(q->head + i) % q->cap];
}

void webhook__queue_pop(webhook_queue *q, size_t n)
{
    if (n > q->len)
        n = q->len;
    for (size_t i = 0; i < n; i++) {
        json_decref(q->items[q->head]);
        q->items[q->head] = NULL;
        q->head = (q->head + 1) % q->cap;
    }
    q->len -= n;
    q->in_flight = q->in_flight > n ? q->in_flight - n : 0;
}

void webhook__queue_push(webhook_queue *q, json_t *ev)
{
    if (q->len == q->cap) {
        size_t keep = q->in_flight ? q->in_flight - 1 : 0;
        webhook__queue_pop(q, 1);
        q->in_flight = keep;
        q->dropped++;
    }
    q->items[(q->head + q->len) % q->cap] = ev;
    q->len++;
}

int webhook__batch_body(const webhook_queue *q, size_t n, buf_t *out)
{
    out->len = 0;
    buf_append_str(out, "{\"events\":[");
    for (size_t i = 0; i < n && i < q->len; i++) {
        char *s = json_dumps(webhook__queue_at(q, i), JSON_COMPACT);
        if (s == NULL)
            return ERR_NOMEM;
        if (i)
            buf_append_char(out, ',');
        buf_append_str(out, s);
        free(s); /* jansson's allocation */
    }
    buf_append_str(out, "]}");
    return 0;
}

int webhook__sign(const char *secret, const void *body, size_t len, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    static const char hex[] = "0123456789abcdef";
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &maclen) == NULL ||
        maclen != 32)
        return ERR_INTERNAL;
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < maclen; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[8 + 2 * i] = hex[mac[i] & 15];
    }
    out[WEBHOOK_SIG_LEN] = '\0';
    return 0;
}

uint64_t webhook__backoff_ms(unsigned attempt, uint32_t min_ms, uint32_t max_ms)
{
    uint64_t d = min_ms ? min_ms : 1;
    for (unsigned i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    return d > max_ms ? max_ms : d;
}
