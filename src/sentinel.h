/*
 * sentinel: the pure part of following Redis Sentinel, as its client spec
 * says: the configured sentinels as a list asked in turn (the one that
 * answers moves to the front), and the parsing of what they say:
 *
 *   SENTINEL get-master-addr-by-name <name>  ->  [ip, port] or nil
 *   ROLE (on the address found)              ->  ["master", ...] or not
 *   +switch-master message                   ->  "<name> <old ip> <old port> <new ip> <new port>"
 *
 * and of the replies that mean "this is not the master any more": READONLY,
 * UNBLOCKED, MASTERDOWN, LOADING, NOREPLICAS. No I/O: conn.c (slotd) and
 * dial.c (libslotd, slotctl) do the talking.
 */
#ifndef SLOTD_SENTINEL_H
#define SLOTD_SENTINEL_H

#include <stddef.h>

#define SENTINEL_MAX      16    /* sentinels configured at most */
#define SENTINEL_HOST_MAX 256

struct sentinel_addr {
    char host[SENTINEL_HOST_MAX];
    int  port;
};

/* 1 when a and b are the same host and port. */
int sentinel_addr_same(const struct sentinel_addr *a, const struct sentinel_addr *b);

struct sentinels {
    struct sentinel_addr at[SENTINEL_MAX];  /* in the order to ask them */
    int                  n;
};

/*
 * Parses "host:port,host:port,..." (spaces after commas allowed; IPv6 as
 * "[::1]:26379"). 0, or -1 with the reason in why. An empty string is an
 * empty list (Sentinel not used).
 */
int sentinel_parse_list(struct sentinels *s, const char *text, char *why, size_t whylen)
    __attribute__((warn_unused_result));

/*
 * "host:port" or "[v6]:port" (len bytes, a port 1-65535) into *a. With
 * empty_host_ok, no host (":7000") is accepted and left "". 0, or -1.
 */
int sentinel_parse_addr(const char *p, size_t len, int empty_host_ok, struct sentinel_addr *a)
    __attribute__((warn_unused_result));

/* Sentinel i answered: it moves to the front, the others keep their order. */
void sentinel_answered(struct sentinels *s, int i);

/*
 * The answer to SENTINEL get-master-addr-by-name, given as the reply's
 * elements (NULL when it was nil: the name is not known to that sentinel).
 * 1 with *a filled, 0 for nil, -1 for anything else.
 */
int sentinel_parse_master(const char *const *elem, const size_t *len, size_t n,
                          struct sentinel_addr *a);

/* The first element of a ROLE reply says "master": 1, else 0. */
int sentinel_is_master_role(const char *first, size_t len);

/*
 * A +switch-master message for master `name`: 1 with the new address in
 * *to; 0 when it is about another master; -1 when it does not parse.
 */
int sentinel_parse_switch(const char *msg, size_t len, const char *name,
                          struct sentinel_addr *to);

/* What an error reply says about the server. */
enum sentinel_server {
    SENTINEL_RIGHT = 0,     /* nothing: an error like any other */
    SENTINEL_NOT_MASTER,    /* READONLY, UNBLOCKED, MASTERDOWN: a replica now; drop the
                               connection and find the master again */
    SENTINEL_NOT_NOW,       /* LOADING, NOREPLICAS: the master, unable to write for now;
                               hold, retry, and ask the sentinels again */
};

/* An error reply that means the server is not (or not now) a writable
 * master: go and find the master again. */
enum sentinel_server sentinel_wrong_server(const char *err, size_t len);

#endif
