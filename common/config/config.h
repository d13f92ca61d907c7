/* SPDX-License-Identifier: MIT */
/*
 * config.h -- mmapq.ini: every key defined once, in keys.def.
 * Loading never logs: each error goes to the caller's callback as
 * (file, line, message), and every error in the files is reported, not
 * just the first.
 */
#ifndef MMAPQ_CONFIG_H
#define MMAPQ_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "mmapq.h"

#define MMAPQ_CONFIG_STR_MAX 4096
#define MMAPQ_SOCKET_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */

enum mmapq_on_full { MMAPQ_ON_FULL_BLOCK = 0, MMAPQ_ON_FULL_DROP = 1 };
enum mmapq_nats_storage { MMAPQ_NATS_FILE = 0, MMAPQ_NATS_MEMORY = 1 };

/* [nats] servers: at most this many, comma-separated */
#define MMAPQ_NATS_SERVERS_MAX 16

/* syslog priorities, as sd-journal uses them */
enum mmapq_log_level {
	MMAPQ_LOG_ERR = 3, MMAPQ_LOG_WARNING = 4, MMAPQ_LOG_NOTICE = 5,
	MMAPQ_LOG_INFO = 6, MMAPQ_LOG_DEBUG = 7,
};

struct mmapq_config {
	char queue_path[MMAPQ_CONFIG_STR_MAX]; /* [queue] path        */
	uint64_t size;                         /* [queue] size: ring bytes */
	uint32_t max_record;                   /* [queue] max_record: largest record, bytes */
	uint32_t format;                       /* [queue] format: enum mmapq_record_format */
	enum mmapq_sync sync;                  /* [queue] sync        */
	uint32_t sync_interval;                /* [queue] sync_interval, ms between syncs (sync = interval) */
	uint32_t mode;                         /* [queue] mode (octal) */
	uint32_t spin_us;                      /* [queue] spin_us, 0 = sleep at once */
	uint32_t max_consumers;                /* [queue] max_consumers (geometry) */
	uint32_t max_producers;                /* [queue] max_producers (geometry) */
	char input[MMAPQ_CONFIG_STR_MAX];      /* [producer] input: stdin | socket | generate */
	char socket_path[MMAPQ_CONFIG_STR_MAX]; /* [producer] socket  */
	uint32_t generate_rate;                /* [producer] generate_rate, records/s, 0 = unlimited */
	enum mmapq_on_full on_full;            /* [producer] on_full  */
	uint32_t client_timeout;               /* [producer] client_timeout, seconds, 0 = never */
	uint32_t ack_interval;                 /* [producer] ack_interval, ms between ACK lines, 0 = none */
	uint32_t ack_records;                  /* [producer] ack_records, an ACK line per N published, 0 = none */
	char output[MMAPQ_CONFIG_STR_MAX];     /* [consumer] output: auto | journal | stdout | null | file:PATH | nats */
	uint32_t start;                        /* [consumer] start: enum mmapq_start */
	char journal_identifier[MMAPQ_CONFIG_STR_MAX]; /* [consumer] journal_identifier: records' SYSLOG_IDENTIFIER */
	char journal_namespace[MMAPQ_CONFIG_STR_MAX];  /* [consumer] journal_namespace: "default" or a namespace */
	uint32_t seq_prefix;                   /* [consumer] seq_prefix: 1 = "SEQ<TAB>" before each line */
	uint32_t consumer_on_full;             /* [consumer] on_full: enum mmapq_policy_on_full */
	uint32_t inactive_timeout;             /* [consumer] inactive_timeout, seconds, 0 = never */
	/* [nats]: output = nats (daemons/consumer/nats.h) */
	char nats_servers[MMAPQ_CONFIG_STR_MAX]; /* URLs, comma-separated: nats://HOST:PORT, tls://... */
	char nats_subject[MMAPQ_CONFIG_STR_MAX]; /* subject of every record */
	char nats_stream[MMAPQ_CONFIG_STR_MAX];  /* the stream that must capture it */
	uint32_t nats_create_stream;           /* 1: create the stream if it is missing */
	uint32_t nats_replicas;                /* of a stream we create */
	uint32_t nats_storage;                 /* of a stream we create: enum mmapq_nats_storage */
	uint32_t nats_duplicate_window;        /* of a stream we create, seconds */
	uint32_t nats_ordered;                 /* 1: Nats-Expected-Last-Msg-Id on every record */
	char nats_credentials[MMAPQ_CONFIG_STR_MAX]; /* .creds file, "" = none */
	char nats_tls_ca[MMAPQ_CONFIG_STR_MAX];      /* "" = the system's */
	char nats_tls_cert[MMAPQ_CONFIG_STR_MAX];    /* client certificate, "" = none */
	char nats_tls_key[MMAPQ_CONFIG_STR_MAX];     /* its key */
	uint32_t nats_max_pending;             /* records published and not yet acknowledged, at most */
	uint32_t nats_connect_timeout;         /* seconds */
	uint32_t nats_ack_timeout;             /* seconds before a record is published again */
	uint32_t nats_reconnect_max_wait;      /* seconds, the longest pause between reconnects */
	enum mmapq_log_level log_level;        /* [log] level         */
	uint32_t stats_interval;               /* [log] stats_interval, seconds, 0 = off */
	/* Not a key: the consumer this configuration was read for (its
	 * [consumer:NAME] section applied over [consumer]), "" if none
	 * (mmapq_config_read_opts.consumer). */
	char consumer[MMAPQ_CONSUMER_NAME_MAX + 1];
	/* Not a key: the producer's name (mmapq-producer --name), "" if none
	 * (MMAPQ_PRODUCER_DEFAULT). */
	char producer[MMAPQ_CONSUMER_NAME_MAX + 1];
};

typedef void (*mmapq_config_error_fn)(void *ctx, const char *file, unsigned line, const char *msg);
typedef void (*mmapq_config_change_fn)(void *ctx, const char *section, const char *key,
                                       const char *old_value, const char *new_value,
                                       int needs_restart);

void mmapq_config_defaults(struct mmapq_config *c);

/*
 * Several queues on one host: instance NAME (mmapq@NAME.target) has its own
 * queue file and socket.  NAME is 1 to MMAPQ_INSTANCE_NAME_MAX characters
 * of MMAPQ_NAME_CHARS (what systemd allows in an instance name,
 * without its '\' escapes).
 */
#define MMAPQ_INSTANCE_NAME_MAX 64
/* The characters of instance names, journal identifiers and journal
 * namespaces. */
#define MMAPQ_NAME_CHARS \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.@-"
bool mmapq_config_instance_valid(const char *name);
/* [consumer] output's values, as shown to users: "auto, journal, ...,
 * file:PATH, nats" (common/config/outputs.def). */
const char *mmapq_config_outputs(void);
/* The defaults of instance (NULL: the single queue's, mmapq_config_defaults):
 * the paths that must differ per queue ([queue] path, [producer] socket)
 * have "NAME." before their file name: /var/lib/mmapq/NAME.queue,
 * /run/mmapq/NAME.producer.sock.  0, or -EINVAL (not a valid name). */
int mmapq_config_defaults_for(struct mmapq_config *c, const char *instance);

/*
 * A configuration file F and its drop-ins: F first, then every F.d/NAME.ini
 * (hidden files and other names are ignored, as systemd does) in byte
 * order of NAME.  A key set twice in one file is an error; a later file
 * overrides what an earlier one set.  Every error names its own file and
 * line; every file is read, so that all errors are reported.  F.d missing
 * is fine; F.d that is not a directory or cannot be read, or a drop-in
 * that cannot be read, is an error.
 */
struct mmapq_config_read_opts {
	const struct mmapq_config *base;  /* what no file sets; NULL: mmapq_config_defaults */
	bool missing_ok;                  /* F missing reads as an empty F (drop-ins still count) */
	mmapq_config_error_fn on_error;   /* each error as (file, line, message); may be NULL */
	void (*on_file)(void *ctx, const char *file); /* on success: each file read, in order */
	/* The consumer whose section [consumer:NAME] applies: its keys
	 * override [consumer]'s, whichever file or line sets them.  Every
	 * [consumer:NAME] section is checked (name, keys, values) either way.
	 * NULL: none applies (the producer, mmapqctl).  Stored in c->consumer. */
	const char *consumer;
	void *ctx;                        /* for both callbacks */
};
/* 0; 1 (F missing, missing_ok: base and the drop-ins); -ENOENT (F missing,
 * not reported, nothing read); -EINVAL (errors in the files, each reported
 * with its line; or F or a drop-in is not a regular file); another -errno
 * (-EISDIR, -EACCES, -ENOTDIR, -EIO...).  Every failure but -ENOENT went
 * to on_error, line 0 if not about a line.  *c is untouched unless 0 or 1.
 * opts may be NULL. */
int mmapq_config_read(struct mmapq_config *c, const char *path,
                      const struct mmapq_config_read_opts *opts);
/* mmapq_config_read of path over the defaults, F required. */
int mmapq_config_load(struct mmapq_config *c, const char *path,
                      mmapq_config_error_fn on_error, void *ctx);
/* Every key whose value (as text) differs, in table order: on_change (if
 * not NULL) gets both texts and whether it needs a restart.  Returns how
 * many differ, or -ENOBUFS. */
int mmapq_config_diff(const struct mmapq_config *old_cfg, const struct mmapq_config *new_cfg,
                      mmapq_config_change_fn on_change, void *ctx);
/* Copy every key that can change live (needs_restart = 0) from new_cfg. */
void mmapq_config_apply_live(struct mmapq_config *running, const struct mmapq_config *new_cfg);
/* The text of [section] key, as it would be written in mmapq.ini, into buf.
 * 0, -ENOENT (no such key), -ENOBUFS (does not fit) or -EINVAL. */
int mmapq_config_format_value(const struct mmapq_config *c, const char *section,
                              const char *key, char *buf, size_t size);
/* Set [section] key from its text, as a line of mmapq.ini would (a command
 * line option overriding a key).  NULL, or why the value is refused ("is
 * not valid"; "is not a known key"); *c is untouched then. */
const char *mmapq_config_set(struct mmapq_config *c, const char *section, const char *key,
                             const char *value);
/* "error" ... "debug"; NULL for a value that is not a level. */
const char *mmapq_log_level_name(enum mmapq_log_level l);

#endif /* MMAPQ_CONFIG_H */
