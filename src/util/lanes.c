/* lanes.c - per-key FIFO lanes (lanes.h): a chained hash of lanes, each a
 * singly linked FIFO of the nodes its items embed. */
#include "util/lanes.h"

#include <string.h>

#include "util/mem.h"

struct lanes_lane {
    lanes_lane *hnext;
    lanes_node *head, *tail;
    char *key;
};

static unsigned lanes__hash(const char *s)
{
    unsigned h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h % LANES_BUCKETS;
}

void lanes_join(lanes_t *l, lanes_node *node, const char *key, void *item)
{
    unsigned b = lanes__hash(key);
    lanes_lane *lane = l->buckets[b];
    while (lane && strcmp(lane->key, key) != 0)
        lane = lane->hnext;
    if (lane == NULL) {
        lane = mem_calloc(1, sizeof(*lane));
        lane->key = mem_strdup(key);
        lane->hnext = l->buckets[b];
        l->buckets[b] = lane;
        l->count++;
    }
    node->next = NULL;
    node->lane = lane;
    node->item = item;
    if (lane->tail)
        lane->tail->next = node;
    else
        lane->head = node;
    lane->tail = node;
}

int lanes_heads(const lanes_node *nodes, int n)
{
    for (int i = 0; i < n; i++)
        if (nodes[i].lane->head != &nodes[i])
            return 0;
    return 1;
}

void *lanes_leave(lanes_t *l, lanes_node *node)
{
    lanes_lane *lane = node->lane;
    lane->head = node->next;
    node->next = NULL;
    node->lane = NULL;
    if (lane->head)
        return lane->head->item;
    lanes_lane **pp = &l->buckets[lanes__hash(lane->key)];
    while (*pp != lane)
        pp = &(*pp)->hnext;
    *pp = lane->hnext;
    mem_free(lane->key);
    mem_free(lane);
    l->count--;
    return NULL;
}
