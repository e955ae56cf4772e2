/* rc_slot.c - the pure parts of Redis Cluster routing: key -> hash slot
 * (CRC16/XMODEM with hash tags), -MOVED / -ASK / retryable error replies,
 * and CLUSTER SLOTS replies into a slot map. No I/O, no state: the client
 * (rc_cluster.c, rc_command.c) applies what these functions return, and the
 * unit tests and the fuzzer call them directly. */
#include "redis/rc_internal.h"
#include "util/mem.h"

#include <string.h>

/* CRC16 with polynomial 0x1021, initial value 0, no reflection (XMODEM),
 * the variant the cluster specification uses; table-driven, one byte per
 * step. Generated from the polynomial. */
static const uint16_t rc__crc16_tab[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
    0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
    0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
    0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
    0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
    0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
    0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
    0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
    0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
    0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
    0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
    0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
    0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
    0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
    0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
    0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
    0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
    0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
    0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
    0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
    0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

static uint16_t rc__crc16(const char *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ rc__crc16_tab[((crc >> 8) ^ (uint8_t)p[i]) & 0xff]);
    return crc;
}

uint16_t rc_slot(const char *key, size_t len)
{
    /* Hash tag: the first '{', and the first '}' after it, with at least
     * one byte between them; otherwise the whole key. */
    const char *open = len ? memchr(key, '{', len) : NULL;
    if (open) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(key + from, '}', len - from);
        if (close && close > key + from)
            return rc__crc16(key + from, (size_t)(close - (key + from))) & (RC_SLOTS - 1);
    }
    return rc__crc16(key, len) & (RC_SLOTS - 1);
}

/* ---- addresses and redirections ---------------------------------------- */

/* Parses the decimal s[0..len) into *out, in [min, max]. */
static int rc__parse_uint(const char *s, size_t len, long min, long max, int *out)
{
    if (len == 0 || len > 6)
        return ERR_MALFORMED;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return ERR_MALFORMED;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return ERR_MALFORMED;
    *out = (int)v;
    return 0;
}

/* A host is an IPv4/IPv6 literal or a DNS name: letters, digits and
 * ".-_:%" (':' in IPv6, '%' before a zone). Anything else (spaces,
 * brackets, control bytes) could not be written back as "host:port". */
static int rc__host_ok(const char *h, size_t len)
{
    if (len >= RC__HOST_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = h[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_' || ch == ':' || ch == '%'))
            return 0;
    }
    return 1;
}

int rc__split_addr(const char *s, size_t len, char host[RC__HOST_MAX], int *port)
{
    const char *colon = NULL;
    for (size_t i = len; i > 0; i--) {
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    }
    if (colon == NULL)
        return ERR_MALFORMED;
    size_t hlen = (size_t)(colon - s);
    if (rc__parse_uint(colon + 1, len - hlen - 1, 1, 65535, port) != 0)
        return ERR_MALFORMED;
    const char *h = s;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (!rc__host_ok(h, hlen))
        return ERR_MALFORMED;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

rc__verdict rc__parse_redirect(const char *s, size_t len, rc__redirect *rd)
{
    rc__verdict v;
    size_t skip;
    if (len > 6 && memcmp(s, "MOVED ", 6) == 0) {
        v = RC__REPLY_MOVED;
        skip = 6;
    } else if (len > 4 && memcmp(s, "ASK ", 4) == 0) {
        v = RC__REPLY_ASK;
        skip = 4;
    } else {
        return RC__REPLY_DONE;
    }
    s += skip;
    len -= skip;
    const char *sp = memchr(s, ' ', len);
    if (sp == NULL)
        return RC__REPLY_DONE;
    if (rc__parse_uint(s, (size_t)(sp - s), 0, RC_SLOTS - 1, &rd->slot) != 0)
        return RC__REPLY_DONE;
    size_t rest = len - (size_t)(sp - s) - 1;
    if (rc__split_addr(sp + 1, rest, rd->host, &rd->port) != 0)
        return RC__REPLY_DONE;
    return v;
}

/* Whether s[0..len) is the error code `code`: the whole text, or followed
 * by a space. */
static int rc__is_code(const char *s, size_t len, const char *code)
{
    size_t n = strlen(code);
    return len >= n && memcmp(s, code, n) == 0 && (len == n || s[n] == ' ');
}

rc__verdict rc__classify(const redisReply *r, rc__redirect *rd)
{
    if (r == NULL || r->type != REDIS_REPLY_ERROR || r->str == NULL)
        return RC__REPLY_DONE;
    size_t len = r->len;
    if (rc__is_code(r->str, len, "TRYAGAIN") || rc__is_code(r->str, len, "CLUSTERDOWN") ||
        rc__is_code(r->str, len, "LOADING"))
        return RC__REPLY_RETRY;
    return rc__parse_redirect(r->str, len, rd);
}

/* ---- CLUSTER SLOTS ------------------------------------------------------ */

void rc__slotmap_free(rc__slotmap *m)
{
    for (size_t i = 0; i < m->n; i++)
        mem_free(m->ranges[i].host);
    for (size_t i = 0; i < m->naddrs; i++)
        mem_free(m->addrs[i]);
    mem_free(m->ranges);
    mem_free(m->addrs);
    memset(m, 0, sizeof(*m));
}

/* A node entry [endpoint, port, id, ...]: sets host (asked_host for a NULL
 * or empty endpoint; NULL for "?") and port. Returns 0 or ERR_MALFORMED. */
static int rc__slots_node(const redisReply *e, const char *asked_host, const char **host,
                          int *port)
{
    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0] == NULL ||
        e->element[1] == NULL)
        return ERR_MALFORMED;
    const redisReply *h = e->element[0], *p = e->element[1];
    if (p->type != REDIS_REPLY_INTEGER || p->integer < 1 || p->integer > 65535)
        return ERR_MALFORMED;
    *port = (int)p->integer;
    if (h->type == REDIS_REPLY_NIL || (h->type == REDIS_REPLY_STRING && h->len == 0)) {
        *host = asked_host;
    } else if (h->type == REDIS_REPLY_STRING && h->len == 1 && h->str[0] == '?') {
        *host = NULL; /* unknown endpoint */
    } else if (h->type == REDIS_REPLY_STRING && rc__host_ok(h->str, h->len)) {
        *host = h->str;
    } else {
        return ERR_MALFORMED;
    }
    return 0;
}

static void rc__slots_add_addr(rc__slotmap *m, const char *host, int port)
{
    buf_t b = {0};
    if (strchr(host, ':'))
        buf_appendf(&b, "[%s]:%d", host, port);
    else
        buf_appendf(&b, "%s:%d", host, port);
    for (size_t i = 0; i < m->naddrs; i++) {
        if (strcmp(m->addrs[i], b.data) == 0) {
            buf_free(&b);
            return;
        }
    }
    if (m->naddrs >= RC__BOOT_MAX) {
        buf_free(&b);
        return;
    }
    m->addrs = mem_realloc(m->addrs, (m->naddrs + 1) * sizeof(*m->addrs));
    m->addrs[m->naddrs++] = buf_steal(&b);
}

int rc__slots_parse(const redisReply *r, const char *asked_host, rc__slotmap *out)
{
    memset(out, 0, sizeof(*out));
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return ERR_MALFORMED;
    if (r->elements > 0)
        out->ranges = mem_calloc(r->elements, sizeof(*out->ranges));
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 3)
            goto fail;
        const redisReply *s0 = e->element[0], *s1 = e->element[1];
        if (s0 == NULL || s1 == NULL || s0->type != REDIS_REPLY_INTEGER ||
            s1->type != REDIS_REPLY_INTEGER || s0->integer < 0 || s1->integer < s0->integer ||
            s1->integer >= RC_SLOTS)
            goto fail;
        const char *host;
        int port;
        for (size_t j = 2; j < e->elements; j++) {
            if (rc__slots_node(e->element[j], asked_host, &host, &port) != 0)
                goto fail;
            if (host == NULL)
                continue;
            rc__slots_add_addr(out, host, port);
            if (j == 2) {
                rc__range *rg = &out->ranges[out->n++];
                rg->start = (int)s0->integer;
                rg->end = (int)s1->integer;
                rg->host = mem_strdup(host);
                rg->port = port;
            }
        }
    }
    return 0;
fail:
    rc__slotmap_free(out);
    return ERR_MALFORMED;
}
