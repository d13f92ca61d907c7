/* SPDX-License-Identifier: MIT */
/* natsutil.c -- see natsutil.h. */
#include "natsutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define NU_API_WAIT_MS 2000

const char *nu_server_path(void)
{
	static const char *const where[] = {"/usr/sbin/nats-server", "/usr/bin/nats-server",
	                                    "/usr/local/bin/nats-server"};

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

/* n free TCP ports on 127.0.0.1, all bound at once so that they differ;
 * released just before the servers take them. */
static void free_ports(int *ports, int n)
{
	int fds[3 * NU_MAX_NODES];

	for (int i = 0; i < n; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);

		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    getsockname(fds[i], (struct sockaddr *)&a, &len) < 0)
			tu_die("a free port on 127.0.0.1");
		ports[i] = ntohs(a.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

void nu_init(struct nu_cluster *c, const char *dir, int n)
{
	int ports[3 * NU_MAX_NODES];
	size_t off = 0;

	memset(c, 0, sizeof(*c));
	c->n = n;
	c->dir = strdup(dir);
	free_ports(ports, 3 * n);
	for (int i = 0; i < n; i++) {
		struct nu_node *nd = &c->node[i];

		snprintf(nd->name, sizeof(nd->name), "n%d", i + 1);
		nd->port = ports[3 * i];
		nd->cluster_port = ports[3 * i + 1];
		nd->http_port = ports[3 * i + 2];
		nd->store = tu_xasprintf("%s/store-%s", dir, nd->name);
		off += (size_t)snprintf(c->urls + off, sizeof(c->urls) - off, "%snats://127.0.0.1:%d",
		                        i ? "," : "", nd->port);
	}
	for (int i = 0; i < n; i++) {
		struct nu_node *nd = &c->node[i];
		char routes[256] = "";
		size_t ro = 0;
		char *text, *cluster = NULL;

		for (int j = 0; j < n; j++)
			if (j != i)
				ro += (size_t)snprintf(routes + ro, sizeof(routes) - ro,
				                       "%snats-route://127.0.0.1:%d", ro ? ", " : "",
				                       c->node[j].cluster_port);
		if (n > 1)
			cluster = tu_xasprintf("cluster {\n  name: mmapq\n  listen: 127.0.0.1:%d\n"
			                       "  routes: [%s]\n}\n", nd->cluster_port, routes);
		text = tu_xasprintf("server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"
		                    "jetstream {\n  store_dir: \"%s\"\n  max_memory_store: 256MB\n"
		                    "  max_file_store: 4GB\n}\n%s",
		                    nd->name, nd->port, nd->http_port, nd->store, cluster ? cluster : "");
		{
			char *name = tu_xasprintf("%s.conf", nd->name);

			nd->conf = tu_write_in(dir, name, text);
			free(name);
		}
		free(text);
		free(cluster);
	}
}

/* sh -c script with $1 = dir, its output in dir/openssl.log; false (and
 * why, with that output, on stderr) if it failed or took over timeout_ms. */
static bool run_script(const char *dir, const char *script, const char *what, int timeout_ms)
{
	char *argv[] = {"/bin/sh", "-c", (char *)script, "sh", (char *)dir, NULL};
	char *log = tu_xasprintf("%s/openssl.log", dir);
	struct tu_child ch = TU_CHILD_INIT;
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	pid_t pid;
	int st;

	if (fd < 0)
		tu_die(log);
	ch.stdio[1] = fd;
	ch.stdio[2] = fd;
	pid = tu_start(argv, &ch);
	close(fd);
	st = tu_wait(pid, timeout_ms);
	if (st == -ETIMEDOUT)
		tu_kill(pid);
	if (st == -ETIMEDOUT || tu_exit_code(st) != 0) {
		char *text = tu_read_file(log, NULL);

		fprintf(stderr, "openssl: the %s were not made (%s):\n%s\n", what,
		        st == -ETIMEDOUT ? "timed out" : "failed", text ? text : "");
		free(text);
		free(log);
		return false;
	}
	free(log);
	return true;
}

bool nu_make_certs(const char *dir, int timeout_ms)
{
	/* P-256 keys: made in milliseconds, where RSA takes a while */
	static const char script[] =
		"set -e; cd \"$1\"\n"
		"ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
		"for ca in ca ca2; do\n"
		"  openssl req -x509 $ec -keyout $ca.key -out $ca.pem -days 2 -subj /CN=mmapq-test-$ca\n"
		"done\n"
		"echo subjectAltName=IP:127.0.0.1 > server.ext\n"
		"echo extendedKeyUsage=clientAuth > client.ext\n"
		"n=1\n"
		"for c in server client; do\n"
		"  openssl req $ec -keyout $c.key -out $c.csr -subj /CN=mmapq-test-$c\n"
		"  openssl x509 -req -in $c.csr -CA ca.pem -CAkey ca.key -set_serial $n -days 2 \\\n"
		"    -extfile $c.ext -out $c.pem\n"
		"  n=2\n"
		"done\n";
	return run_script(dir, script, "certificates", timeout_ms);
}

void nu_tls(struct nu_cluster *c, const char *dir)
{
	char *text = tu_xasprintf("tls {\n  cert_file: \"%s/server.pem\"\n  key_file: \"%s/server.key\"\n"
	                          "  ca_file: \"%s/ca.pem\"\n  verify: true\n}\n", dir, dir, dir);
	size_t off = 0;

	nu_append_conf(c, text);
	free(text);
	c->tls_ca = tu_path(dir, "ca.pem");
	c->tls_cert = tu_path(dir, "client.pem");
	c->tls_key = tu_path(dir, "client.key");
	for (int i = 0; i < c->n; i++)
		off += (size_t)snprintf(c->urls + off, sizeof(c->urls) - off, "%stls://127.0.0.1:%d",
		                        i ? "," : "", c->node[i].port);
}

/* ---- operator mode: nkeys and JWTs ------------------------------------ */

/* The nkeys prefixes (github.com/nats-io/nkeys): the first byte of a
 * public key says what it is; a seed starts with S and the same. */
#define NK_SEED     (18 << 3)
#define NK_OPERATOR (14 << 3)
#define NK_ACCOUNT  0
#define NK_USER     (20 << 3)

struct nkey {
	char seed[64];    /* "SO...", "SA...", "SU..." */
	char pub[64];     /* "O...", "A...", "U..." */
	char as_user[64]; /* the same private key as a user's seed: nats_Sign
	                   * takes no other, and the prefix is only a label */
};

/* RFC 4648 base32, no padding. */
static void base32(const uint8_t *in, size_t n, char *out)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned buf = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		buf = (buf << 8) | in[i];
		for (bits += 8; bits >= 5; bits -= 5)
			*out++ = alpha[(buf >> (bits - 5)) & 31];
	}
	if (bits > 0)
		*out++ = alpha[(buf << (5 - bits)) & 31];
	*out = '\0';
}

/* CRC-16/XMODEM of what precedes it, little-endian after it; then base32. */
static void nkey_encode(uint8_t *raw, size_t n, char *out)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < n; i++) {
		crc ^= (uint16_t)(raw[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	raw[n] = (uint8_t)crc;
	raw[n + 1] = (uint8_t)(crc >> 8);
	base32(raw, n + 2, out);
}

/* The last 32 bytes of a DER file openssl wrote (an ed25519 key: the raw
 * private key of its PKCS#8, the raw public key of its SPKI). */
static bool der_tail(const char *dir, const char *name, uint8_t out[32])
{
	char *path = tu_path(dir, name);
	size_t len = 0;
	char *der = tu_read_file(path, &len);
	bool ok = der && len >= 32;

	if (ok)
		memcpy(out, der + len - 32, 32);
	else
		fprintf(stderr, "%s: no ed25519 key\n", path);
	free(der);
	free(path);
	return ok;
}

/* The nkey of type made from NAME.der / NAME.pub.der. */
static bool nkey_load(const char *dir, const char *name, uint8_t type, struct nkey *k)
{
	uint8_t raw[36];
	char *priv = tu_xasprintf("%s.der", name), *pub = tu_xasprintf("%s.pub.der", name);
	bool ok = der_tail(dir, priv, raw + 2);

	if (ok) {
		raw[0] = (uint8_t)(NK_SEED | type >> 5);
		raw[1] = (uint8_t)((type & 31) << 3);
		nkey_encode(raw, 34, k->seed);
		raw[0] = (uint8_t)(NK_SEED | NK_USER >> 5);
		raw[1] = (uint8_t)((NK_USER & 31) << 3);
		nkey_encode(raw, 34, k->as_user);
		ok = der_tail(dir, pub, raw + 1);
	}
	if (ok) {
		raw[0] = type;
		nkey_encode(raw, 33, k->pub);
	}
	free(priv);
	free(pub);
	return ok;
}

/* base64url without padding (a JWT's parts). */
static char *base64url(const uint8_t *in, size_t n)
{
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n / 3 * 4 + 5), *o = out;
	unsigned buf = 0;
	int bits = 0;

	if (!out)
		tu_die("malloc");
	for (size_t i = 0; i < n; i++) {
		buf = (buf << 8) | in[i];
		for (bits += 8; bits >= 6; bits -= 6)
			*o++ = alpha[(buf >> (bits - 6)) & 63];
	}
	if (bits > 0)
		*o++ = alpha[(buf << (6 - bits)) & 63];
	*o = '\0';
	return out;
}

/* A JWT: claims about sub, with nats (the claims' "nats" object), issued
 * and signed by iss (ed25519-nkey, as nsc makes them). */
static char *jwt(const struct nkey *iss, const struct nkey *sub, const char *name,
                 const char *nats)
{
	static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";
	static unsigned serial;
	char *claims = tu_xasprintf("{\"jti\":\"MMAPQTEST%u%d\",\"iat\":%lld,\"iss\":\"%s\","
	                            "\"name\":\"%s\",\"sub\":\"%s\",\"nats\":%s}", ++serial,
	                            (int)getpid(), (long long)time(NULL), iss->pub, name, sub->pub,
	                            nats);
	char *h = base64url((const uint8_t *)header, strlen(header));
	char *cl = base64url((const uint8_t *)claims, strlen(claims));
	char *input = tu_xasprintf("%s.%s", h, cl), *sig64, *out;
	unsigned char *sig = NULL;
	int siglen = 0;

	natsStatus st = nats_Sign(iss->as_user, input, &sig, &siglen);

	if (st != NATS_OK) {
		fprintf(stderr, "nats_Sign with %s: %s (%s)\n", iss->pub, natsStatus_GetText(st),
		        nats_GetLastError(NULL));
		exit(1);
	}
	sig64 = base64url(sig, (size_t)siglen);
	out = tu_xasprintf("%s.%s", input, sig64);
	free(sig);
	free(sig64);
	free(input);
	free(h);
	free(cl);
	free(claims);
	return out;
}

static void write_creds(const char *dir, const char *name, const char *user_jwt,
                        const struct nkey *user)
{
	char *text = tu_xasprintf("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
	                          "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n",
	                          user_jwt, user->seed);

	free(tu_write_in(dir, name, text));
	free(text);
}

bool nu_operator(struct nu_cluster *c, const char *dir, int timeout_ms)
{
	static const char script[] =
		"set -e; cd \"$1\"\n"
		"for k in operator system account user account2 user2; do\n"
		"  openssl genpkey -algorithm ed25519 -outform DER -out $k.der\n"
		"  openssl pkey -inform DER -in $k.der -pubout -outform DER -out $k.pub.der\n"
		"done\n";
	static const char user_nats[] =
		"{\"pub\":{},\"sub\":{},\"subs\":-1,\"data\":-1,\"payload\":-1,\"type\":\"user\","
		"\"version\":2}";
	struct nkey op, sys, acc, user, acc2, user2;
	char *op_jwt, *sys_jwt, *acc_jwt, *user_jwt, *user2_jwt, *conf, *text;

	/* nats_Sign needs the library's tables (nu_free closes it) */
	if (nats_Open(-1) != NATS_OK || !run_script(dir, script, "ed25519 keys", timeout_ms) ||
	    !nkey_load(dir, "operator", NK_OPERATOR, &op) ||
	    !nkey_load(dir, "system", NK_ACCOUNT, &sys) ||
	    !nkey_load(dir, "account", NK_ACCOUNT, &acc) || !nkey_load(dir, "user", NK_USER, &user) ||
	    !nkey_load(dir, "account2", NK_ACCOUNT, &acc2) ||
	    !nkey_load(dir, "user2", NK_USER, &user2))
		return false;
	/* JetStream needs a system account */
	text = tu_xasprintf("{\"system_account\":\"%s\",\"type\":\"operator\",\"version\":2}",
	                    sys.pub);
	op_jwt = jwt(&op, &op, "mmapq-test", text);
	free(text);
	sys_jwt = jwt(&op, &sys, "SYS", "{\"limits\":{\"subs\":-1,\"data\":-1,\"payload\":-1,"
	              "\"imports\":-1,\"exports\":-1,\"wildcards\":true,\"conn\":-1,\"leaf\":-1},"
	              "\"type\":\"account\",\"version\":2}");
	/* JetStream for the account: storage limits other than 0 */
	acc_jwt = jwt(&op, &acc, "mmapq", "{\"limits\":{\"subs\":-1,\"data\":-1,\"payload\":-1,"
	              "\"imports\":-1,\"exports\":-1,\"wildcards\":true,\"conn\":-1,\"leaf\":-1,"
	              "\"mem_storage\":-1,\"disk_storage\":-1,\"streams\":-1,\"consumer\":-1},"
	              "\"default_permissions\":{\"pub\":{},\"sub\":{}},\"type\":\"account\","
	              "\"version\":2}");
	user_jwt = jwt(&acc, &user, "mmapq-consumer", user_nats);
	/* a user of an account the servers do not know */
	user2_jwt = jwt(&acc2, &user2, "stranger", user_nats);
	write_creds(dir, "user.creds", user_jwt, &user);
	write_creds(dir, "stranger.creds", user2_jwt, &user2);
	conf = tu_xasprintf("operator: %s\nsystem_account: %s\nresolver: MEMORY\n"
	                    "resolver_preload: {\n  %s: %s\n  %s: %s\n}\n", op_jwt, sys.pub, sys.pub,
	                    sys_jwt, acc.pub, acc_jwt);
	nu_append_conf(c, conf);
	c->creds = tu_path(dir, "user.creds");
	free(conf);
	free(op_jwt);
	free(sys_jwt);
	free(acc_jwt);
	free(user_jwt);
	free(user2_jwt);
	return true;
}

void nu_append_conf(struct nu_cluster *c, const char *text)
{
	for (int i = 0; i < c->n; i++) {
		FILE *f = fopen(c->node[i].conf, "a");

		if (!f || fputs(text, f) < 0 || fclose(f) != 0)
			tu_die(c->node[i].conf);
	}
}

static bool port_accepts(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	                        .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

bool nu_start(struct nu_cluster *c, int i, int timeout_ms)
{
	struct nu_node *nd = &c->node[i];
	char *log = tu_xasprintf("%s/%s.log", c->dir, nd->name);
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	pid_t pid;

	pid = tu_fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		/* gone with the test, even when ctest kills it at its timeout */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execl(nu_server_path(), "nats-server", "-c", nd->conf, (char *)NULL);
		_exit(127);
	}
	tu_track(pid);
	nd->pid = pid;
	free(log);
	for (;;) {
		int st;

		if (port_accepts(nd->port))
			return true;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			tu_untrack(pid);
			nd->pid = 0;
			fprintf(stderr, "nats-server %s exited (%d) at start: see %s/%s.log\n", nd->name,
			        tu_exit_code(st), c->dir, nd->name);
			return false;
		}
		if (tu_now_ms() >= end) {
			fprintf(stderr, "nats-server %s: port %d does not accept within %d ms\n", nd->name,
			        nd->port, timeout_ms);
			return false;
		}
		sched_yield();
	}
}

void nu_kill(struct nu_cluster *c, int i)
{
	struct nu_node *nd = &c->node[i];

	if (nd->pid > 0) {
		tu_kill(nd->pid);
		tu_untrack(nd->pid);
	}
	nd->pid = 0;
}

void nu_stop_all(struct nu_cluster *c)
{
	for (int i = 0; i < c->n; i++)
		nu_kill(c, i);
}

void nu_free(struct nu_cluster *c)
{
	nu_stop_all(c);
	for (int i = 0; i < c->n; i++) {
		free(c->node[i].conf);
		free(c->node[i].store);
	}
	free(c->dir);
	free(c->tls_ca);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->creds);
	c->dir = c->tls_ca = c->tls_cert = c->tls_key = c->creds = NULL;
	c->n = 0;
	nats_CloseAndWait(5000);
}

bool nu_connect(struct nu_cluster *c, natsConnection **nc, jsCtx **js)
{
	natsOptions *o = NULL;
	jsOptions jo;
	natsStatus s;

	*nc = NULL;
	*js = NULL;
	const char *servers[NU_MAX_NODES];
	char urls[NU_MAX_NODES][64];

	for (int i = 0; i < c->n; i++) {
		snprintf(urls[i], sizeof(urls[i]), "%s://127.0.0.1:%d", c->tls_ca ? "tls" : "nats",
		         c->node[i].port);
		servers[i] = urls[i];
	}
	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, servers, c->n);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, 60);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 100);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, "mmapq-test");
	if (s == NATS_OK && c->creds)
		s = natsOptions_SetUserCredentialsFromFiles(o, c->creds, NULL);
	if (s == NATS_OK && c->tls_ca)
		s = natsOptions_SetSecure(o, true);
	if (s == NATS_OK && c->tls_ca)
		s = natsOptions_LoadCATrustedCertificates(o, c->tls_ca);
	if (s == NATS_OK && c->tls_ca)
		s = natsOptions_LoadCertificatesChain(o, c->tls_cert, c->tls_key);
	if (s == NATS_OK)
		s = natsConnection_Connect(nc, o);
	natsOptions_Destroy(o);
	if (s != NATS_OK) {
		fprintf(stderr, "connect to %s: %s\n", c->urls, natsStatus_GetText(s));
		return false;
	}
	jsOptions_Init(&jo);
	jo.Wait = NU_API_WAIT_MS;
	s = natsConnection_JetStream(js, *nc, &jo);
	if (s != NATS_OK) {
		fprintf(stderr, "JetStream context: %s\n", natsStatus_GetText(s));
		natsConnection_Destroy(*nc);
		*nc = NULL;
		return false;
	}
	return true;
}

void nu_disconnect(natsConnection *nc, jsCtx *js)
{
	if (js)
		jsCtx_Destroy(js);
	if (nc)
		natsConnection_Destroy(nc);
}

bool nu_wait_jetstream(struct nu_cluster *c, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	natsConnection *nc;
	jsCtx *js;
	bool ok = false;

	if (!nu_connect(c, &nc, &js))
		return false;
	while (!ok) {
		jsAccountInfo *ai = NULL;
		natsStatus s = js_GetAccountInfo(&ai, js, NULL, NULL);

		if (s == NATS_OK) {
			jsAccountInfo_Destroy(ai);
			ok = true;
		} else if (tu_now_ms() >= end) {
			fprintf(stderr, "JetStream does not answer within %d ms: %s\n", timeout_ms,
			        natsStatus_GetText(s));
			break;
		} else {
			sched_yield();
		}
	}
	nu_disconnect(nc, js);
	return ok;
}

bool nu_add_stream(jsCtx *js, const char *stream, const char *subject, int replicas,
                   int dup_window_s)
{
	return nu_add_stream_limited(js, stream, subject, replicas, dup_window_s, -1);
}

bool nu_add_stream_limited(jsCtx *js, const char *stream, const char *subject, int replicas,
                           int dup_window_s, int32_t max_msg_size)
{
	const char *subjects[1] = {subject};
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	jsStreamConfig_Init(&sc);
	sc.Name = stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = replicas;
	sc.Duplicates = (int64_t)dup_window_s * 1000000000;
	sc.MaxMsgSize = max_msg_size;
	s = js_AddStream(&si, js, &sc, NULL, &jerr);
	if (s != NATS_OK) {
		fprintf(stderr, "add stream %s: %s (%s, err_code %d)\n", stream, natsStatus_GetText(s),
		        nats_GetLastError(NULL), (int)jerr);
		return false;
	}
	jsStreamInfo_Destroy(si);
	return true;
}

int64_t nu_stream_msgs(jsCtx *js, const char *stream)
{
	jsStreamInfo *si = NULL;
	int64_t n;

	if (js_GetStreamInfo(&si, js, stream, NULL, NULL) != NATS_OK)
		return -1;
	n = (int64_t)si->State.Msgs;
	jsStreamInfo_Destroy(si);
	return n;
}

int64_t nu_wait_msgs(struct nu_cluster *c, const char *stream, int64_t n, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	natsConnection *nc;
	jsCtx *js;
	int64_t have = -1;

	if (!nu_connect(c, &nc, &js))
		return -1;
	for (;;) {
		int64_t m = nu_stream_msgs(js, stream);

		if (m >= 0)
			have = m;
		if (have >= n || tu_now_ms() >= end)
			break;
		sched_yield();
	}
	nu_disconnect(nc, js);
	return have;
}

int nu_stream_leader(struct nu_cluster *c, const char *stream)
{
	natsConnection *nc;
	jsCtx *js;
	jsStreamInfo *si = NULL;
	int leader = -1;

	if (!nu_connect(c, &nc, &js))
		return -1;
	if (js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK) {
		for (int i = 0; si->Cluster && si->Cluster->Leader && i < c->n; i++)
			if (!strcmp(si->Cluster->Leader, c->node[i].name))
				leader = i;
		jsStreamInfo_Destroy(si);
	}
	nu_disconnect(nc, js);
	return leader;
}

bool nu_make_leader(struct nu_cluster *c, const char *stream, int i, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	char *subj = tu_xasprintf("$JS.API.STREAM.LEADER.STEPDOWN.%s", stream);
	natsConnection *nc;
	jsCtx *js;
	int leader;

	if (!nu_connect(c, &nc, &js)) {
		free(subj);
		return false;
	}
	/* each look at the leader is a request that waits for an answer (or
	 * for the election to end): no busy loop */
	while ((leader = nu_stream_leader(c, stream)) != i && tu_now_ms() < end) {
		natsMsg *reply = NULL;

		if (leader >= 0 && natsConnection_Request(&reply, nc, subj, "", 0, 5000) == NATS_OK)
			natsMsg_Destroy(reply);
	}
	nu_disconnect(nc, js);
	free(subj);
	return leader == i;
}

/* The body of GET path from the node's monitoring port (malloc'd), or NULL. */
static char *http_get(int port, const char *path)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	                        .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char *req, *resp = NULL;

	if (fd < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		req = tu_xasprintf("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
		if (tu_write_all(fd, req, strlen(req)) == 0)
			resp = tu_read_all(fd, 5000, NULL);
		free(req);
	}
	close(fd);
	return resp;
}

/* The node a client named client_name is connected to (or -1), and
 * whether that connection is TLS (its /connz entry has a tls_version). */
static int connz_client(struct nu_cluster *c, const char *client_name, bool *tls)
{
	char *needle = tu_xasprintf("\"name\": \"%s\"", client_name);
	int found = -1;

	*tls = false;
	for (int i = 0; i < c->n && found < 0; i++) {
		char *body, *at;

		if (c->node[i].pid <= 0)
			continue;
		body = http_get(c->node[i].http_port, "/connz?limit=1024");
		at = body ? strstr(body, needle) : NULL;
		if (at) {
			/* its connection's object: from the { before to the } after */
			char *from = at, *to = strchr(at, '}');

			while (from > body && *from != '{')
				from--;
			if (to)
				*to = '\0';
			*tls = strstr(from, "\"tls_version\"") != NULL;
			found = i;
		}
		free(body);
	}
	free(needle);
	return found;
}

int nu_client_node(struct nu_cluster *c, const char *client_name)
{
	bool tls;

	return connz_client(c, client_name, &tls);
}

bool nu_client_tls(struct nu_cluster *c, const char *client_name, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;
	bool tls = false;

	/* each look is an HTTP request the server answers: no busy loop */
	while (connz_client(c, client_name, &tls) < 0 && tu_now_ms() < end)
		;
	return tls;
}

/* The payload is the decimal number value_base + seq (nu_read_back). */
static char *check_decimal(void *ctx, uint64_t seq, const void *data, int len)
{
	char want[24];

	snprintf(want, sizeof(want), "%" PRId64, *(const int64_t *)ctx + (int64_t)seq);
	if (len == (int)strlen(want) && !memcmp(data, want, (size_t)len))
		return NULL;
	return tu_xasprintf("payload '%.*s', expected '%s'", len > 64 ? 64 : len,
	                    (const char *)data, want);
}

int64_t nu_read_back(struct nu_cluster *c, const char *stream, const char *subject,
                     const char *id_hex, uint64_t first_seq, int64_t value_base)
{
	return nu_read_back_check(c, stream, subject, id_hex, first_seq, check_decimal, &value_base);
}

int64_t nu_read_back_check(struct nu_cluster *c, const char *stream, const char *subject,
                           const char *id_hex, uint64_t first_seq, nu_check_fn check, void *ctx)
{
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	int64_t total, got = 0;
	natsStatus s;

	if (!nu_connect(c, &nc, &js))
		return -1;
	total = nu_stream_msgs(js, stream);
	if (total < 0) {
		fprintf(stderr, "read back: stream %s does not answer\n", stream);
		nu_disconnect(nc, js);
		return -1;
	}
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Config.AckPolicy = js_AckNone;
	so.Config.DeliverPolicy = js_DeliverAll;
	so.Config.MaxRequestBatch = 4096;
	/* a cluster that just lost a node may take a while to place a consumer */
	for (uint64_t end = tu_now_ms() + 30000;;) {
		s = js_PullSubscribe(&sub, js, subject, NULL, NULL, &so, &jerr);
		if (s == NATS_OK)
			break;
		if (tu_now_ms() >= end) {
			fprintf(stderr, "read back: pull subscription: %s (%s)\n", natsStatus_GetText(s),
			        nats_GetLastError(NULL));
			nu_disconnect(nc, js);
			return -1;
		}
	}
	while (got < total) {
		natsMsgList list = {0};
		int want = total - got > 4096 ? 4096 : (int)(total - got);

		s = natsSubscription_Fetch(&list, sub, want, 5000, &jerr);
		for (int tries = 1; s == NATS_TIMEOUT && tries < 6; tries++)
			s = natsSubscription_Fetch(&list, sub, want, 5000, &jerr);
		if (s != NATS_OK) {
			fprintf(stderr, "read back: fetch after %" PRId64 " of %" PRId64 ": %s\n", got, total,
			        natsStatus_GetText(s));
			got = -1;
			break;
		}
		for (int i = 0; i < list.Count && got >= 0; i++, got++) {
			natsMsg *m = list.Msgs[i];
			uint64_t seq = first_seq + (uint64_t)got;
			const char *hid = NULL, *hseq = NULL;
			char want_id[128], want_seq[24], *why = NULL;

			snprintf(want_id, sizeof(want_id), "%s:%" PRIu64, id_hex, seq);
			snprintf(want_seq, sizeof(want_seq), "%" PRIu64, seq);
			natsMsgHeader_Get(m, "Nats-Msg-Id", &hid);
			natsMsgHeader_Get(m, "Mmapq-Seq", &hseq);
			if (!hid || strcmp(hid, want_id) || !hseq || strcmp(hseq, want_seq) ||
			    (why = check(ctx, seq, natsMsg_GetData(m), natsMsg_GetDataLength(m)))) {
				fprintf(stderr, "read back: message %" PRId64 " of %" PRId64 " is Nats-Msg-Id %s,"
				        " Mmapq-Seq %s; expected %s, %s; %s (every record once, in order)\n",
				        got, total, hid ? hid : "(none)", hseq ? hseq : "(none)", want_id, want_seq,
				        why ? why : "its payload is as expected");
				free(why);
				{
					jsMsgMetaData *md = NULL;

					if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
						fprintf(stderr, "read back: it is the stream's message %" PRIu64
						        " (delivery %" PRIu64 ")\n", md->Sequence.Stream,
						        md->NumDelivered);
						jsMsgMetaData_Destroy(md);
					}
				}
				got = -2;
			}
		}
		natsMsgList_Destroy(&list);
		if (got < 0)
			break;
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	nu_disconnect(nc, js);
	return got < 0 ? -1 : got;
}
