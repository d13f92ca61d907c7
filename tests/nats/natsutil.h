/* SPDX-License-Identifier: MIT */
/*
 * natsutil.h -- real nats-server processes for the tests of [consumer]
 * output = nats (test_nats) and the benchmark (mmapq_bench_nats): one
 * server or a JetStream cluster on 127.0.0.1, on free ports, with a store
 * in a scratch directory; and the stream read back with a JetStream
 * consumer of the test's own, every message checked.  Nothing is mocked:
 * without nats-server (package nats-server) the callers skip (77).
 */
#ifndef MMAPQ_NATSUTIL_H
#define MMAPQ_NATSUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <nats/nats.h>

#define NU_MAX_NODES 3

struct nu_node {
	char name[16];
	int port, cluster_port, http_port;
	char *conf, *store;
	pid_t pid;
};

struct nu_cluster {
	int n;
	char *dir;
	struct nu_node node[NU_MAX_NODES];
	char urls[256]; /* "nats://127.0.0.1:P1,nats://127.0.0.1:P2,..." */
	/* after nu_tls: the test's own client connects with these */
	char *tls_ca, *tls_cert, *tls_key;
	/* after nu_operator: the credentials file they connect with */
	char *creds;
};

/* Certificates made with the openssl program in dir: ca.pem (a CA),
 * server.pem/server.key (for IP 127.0.0.1, signed by ca), client.pem/
 * client.key (signed by ca) and ca2.pem (another CA, which signed none of
 * them).  false (and why on stderr) if openssl failed or is missing. */
bool nu_make_certs(const char *dir, int timeout_ms);
/* Mutual TLS on every node of c (before nu_start): the certificates of
 * nu_make_certs in dir, verify: true; c->urls become tls://, and the test's
 * own connections use ca.pem and the client certificate. */
void nu_tls(struct nu_cluster *c, const char *dir);
/* Operator mode on every node of c (before nu_start), made here without
 * nsc: ed25519 keys from openssl in dir, as nkeys; the JWTs of an operator,
 * of an account with JetStream (preloaded: resolver MEMORY) and of a user
 * of it, signed with nats_Sign.  dir/user.creds is that user's credentials
 * file (the test's own connections use it); dir/stranger.creds one of a
 * user of an account the servers do not know.  false and why on stderr. */
bool nu_operator(struct nu_cluster *c, const char *dir, int timeout_ms);

/* The nats-server program, or NULL if there is none (then skip). */
const char *nu_server_path(void);

/* n servers (1: a single server, 2 or 3: a JetStream cluster with routes
 * between them) configured under dir, on free ports; not started yet. */
void nu_init(struct nu_cluster *c, const char *dir, int n);
/* Append text to every node's configuration (before nu_start). */
void nu_append_conf(struct nu_cluster *c, const char *text);
/* Start node i (again: same ports, same store) and wait until it accepts
 * connections; false (and why on stderr) if it did not within timeout_ms. */
bool nu_start(struct nu_cluster *c, int i, int timeout_ms);
/* Until JetStream answers through any live node (a cluster: its meta
 * leader is elected); false at the deadline. */
bool nu_wait_jetstream(struct nu_cluster *c, int timeout_ms);
/* SIGKILL node i and reap it. */
void nu_kill(struct nu_cluster *c, int i);
/* Stop every node (SIGKILL, reaped). */
void nu_stop_all(struct nu_cluster *c);
/* Stop every node and free what nu_init allocated; then libnats's own
 * threads and memory (nats_Close), so that leak checkers see none. */
void nu_free(struct nu_cluster *c);

/* A connection to the live nodes (failing over), and its JetStream
 * context; false and why on stderr. */
bool nu_connect(struct nu_cluster *c, natsConnection **nc, jsCtx **js);
void nu_disconnect(natsConnection *nc, jsCtx *js);

/* Create stream capturing subject (replicas, file storage, duplicate
 * window in seconds); false and why. */
bool nu_add_stream(jsCtx *js, const char *stream, const char *subject, int replicas,
                   int dup_window_s);
/* The same with a limit on the size of a message (max_msg_size, bytes). */
bool nu_add_stream_limited(jsCtx *js, const char *stream, const char *subject, int replicas,
                           int dup_window_s, int32_t max_msg_size);
/* Messages in the stream, or -1 (no answer: no leader, no server). */
int64_t nu_stream_msgs(jsCtx *js, const char *stream);
/* Until the stream holds at least n messages, asking a connection made
 * for the purpose; the count then (-1: no answer before the deadline). */
int64_t nu_wait_msgs(struct nu_cluster *c, const char *stream, int64_t n, int timeout_ms);
/* The index of the node that leads the stream, or -1. */
int nu_stream_leader(struct nu_cluster *c, const char *stream);
/* Until node i leads the stream: its leader is asked to step down (the
 * JetStream API) until the election picks node i.  false at the deadline. */
bool nu_make_leader(struct nu_cluster *c, const char *stream, int i, int timeout_ms);
/* The index of the node a client named client_name is connected to (the
 * servers' /connz), or -1. */
int nu_client_node(struct nu_cluster *c, const char *client_name);
/* Until a client named client_name is connected to a node (at most
 * timeout_ms): whether its connection is TLS (the server's /connz). */
bool nu_client_tls(struct nu_cluster *c, const char *client_name, int timeout_ms);

/*
 * Read the whole stream back with an ephemeral pull consumer of our own and
 * check every message: the k-th (from 0) has Mmapq-Seq first_seq + k,
 * Nats-Msg-Id "<id_hex>:<seq>", and the payload the decimal number
 * value_base + seq (records made by the tests from a counter).  So the
 * stream holds every record once, in order, under unique ids.  Returns
 * how many messages were read (== the stream's count when all is well),
 * or -1 after saying on stderr what is wrong (the first bad message).
 */
int64_t nu_read_back(struct nu_cluster *c, const char *stream, const char *subject,
                     const char *id_hex, uint64_t first_seq, int64_t value_base);
/* The same with the payload of the record seq checked by check: NULL if it
 * is right, else a malloc'd text of what is wrong (said on stderr). */
typedef char *(*nu_check_fn)(void *ctx, uint64_t seq, const void *data, int len);
int64_t nu_read_back_check(struct nu_cluster *c, const char *stream, const char *subject,
                           const char *id_hex, uint64_t first_seq, nu_check_fn check, void *ctx);

#endif
