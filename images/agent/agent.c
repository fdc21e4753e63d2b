/*
 * ktrial-agent: performs scenario actions inside a ktrial guest as plain system calls
 * and prints one JSON line per action, so the host never parses shell error text.
 *
 * Usage (see README.md for the full protocol):
 *   ktrial-agent [--uid N] [--gid N] [--groups LIST] [--caps SPEC] [--state DIR] [--tag T]
 *                [pre ACTION ARGS... --]... ACTION ARGS... [-- ACTION ARGS...]...
 *
 * It must run on every kernel ktrial tests, from 2.6.20 to current ones: it is linked
 * statically against musl, issues clone/unshare/setns/capget/capset through syscall(),
 * and treats any call an old kernel lacks as an ordinary errno result (ENOSYS, EINVAL).
 *
 * Exit status: 0 every action succeeded; 1 an action failed (its line says how);
 * 2 the arguments were rejected (nothing was done); 3 a pre-step or the identity change
 * failed (the main actions did not run).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_PROTOCOL 1

#define EXIT_ACTION_FAILED 1
#define EXIT_USAGE 2
#define EXIT_SETUP_FAILED 3

/* Namespace flags, defined here because old or minimal headers may lack some. */
#define K_CLONE_NEWTIME 0x00000080
#define K_CLONE_FS 0x00000200
#define K_CLONE_FILES 0x00000400
#define K_CLONE_SETTLS 0x00080000
#define K_CLONE_NEWNS 0x00020000
#define K_CLONE_SYSVSEM 0x00040000
#define K_CLONE_NEWCGROUP 0x02000000
#define K_CLONE_NEWUTS 0x04000000
#define K_CLONE_NEWIPC 0x08000000
#define K_CLONE_NEWUSER 0x10000000
#define K_CLONE_NEWPID 0x20000000
#define K_CLONE_NEWNET 0x40000000

/* prctl options newer than some kernels; a kernel without them answers EINVAL. */
#define K_PR_SET_KEEPCAPS 8
#define K_PR_SET_DUMPABLE 4
#define K_PR_CAPBSET_DROP 24
#define K_PR_CAP_AMBIENT 47
#define K_PR_CAP_AMBIENT_RAISE 2

/* Capability ABI: version 1 (one 32-bit set, the only one 2.6.20 knows), 2 and 3 (two). */
#define CAPV1 0x19980330u
#define CAPV2 0x20071026u
#define CAPV3 0x20080522u
struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective;
	uint32_t permitted;
	uint32_t inheritable;
};

#define MAX_READ (1024 * 1024)
#define DEFAULT_STATE_DIR "/tmp/ktrial-agent"

/* ------------------------------------------------------------------------- */
/* Small growable string buffer and JSON writer.                              */

struct buf {
	char *p;
	size_t len, cap;
};

static void die_internal(const char *what);

static void buf_reserve(struct buf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		die_internal("out of memory");
	b->p = p;
	b->cap = cap;
}

static void buf_put(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof tmp) {
		buf_put(b, tmp, (size_t)n);
		return;
	}
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence starting at s (0 if invalid). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t need;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4;
	else
		return 0;
	if (need > n)
		return 0;
	for (size_t i = 1; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need;
}

/* A JSON string; bytes that are not valid UTF-8 become \u00XX (Latin-1 reading). */
static void buf_json_str(struct buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	buf_put(b, "\"", 1);
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			buf_put(b, e, 2);
			i++;
		} else if (c == '\n') {
			buf_put(b, "\\n", 2);
			i++;
		} else if (c == '\t') {
			buf_put(b, "\\t", 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			buf_printf(b, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			buf_put(b, (const char *)&u[i], 1);
			i++;
		} else {
			size_t k = utf8_len(u + i, n - i);
			if (k == 0) {
				buf_printf(b, "\\u%04x", c);
				i++;
			} else {
				buf_put(b, (const char *)&u[i], k);
				i += k;
			}
		}
	}
	buf_put(b, "\"", 1);
}

/* One JSON object being built: fields are appended in order. */
struct obj {
	struct buf b;
	int n;
};

static void obj_begin(struct obj *o)
{
	memset(o, 0, sizeof *o);
	buf_puts(&o->b, "{");
}

static void obj_key(struct obj *o, const char *k)
{
	if (o->n++)
		buf_puts(&o->b, ",");
	buf_json_str(&o->b, k, strlen(k));
	buf_puts(&o->b, ":");
}

static void obj_str(struct obj *o, const char *k, const char *v)
{
	obj_key(o, k);
	buf_json_str(&o->b, v, strlen(v));
}

static void obj_strn(struct obj *o, const char *k, const char *v, size_t n)
{
	obj_key(o, k);
	buf_json_str(&o->b, v, n);
}

static void obj_int(struct obj *o, const char *k, long long v)
{
	obj_key(o, k);
	buf_printf(&o->b, "%lld", v);
}

static void obj_bool(struct obj *o, const char *k, int v)
{
	obj_key(o, k);
	buf_puts(&o->b, v ? "true" : "false");
}

/* v must already be JSON. */
static void obj_raw(struct obj *o, const char *k, const char *v)
{
	obj_key(o, k);
	buf_puts(&o->b, v);
}

static void obj_end(struct obj *o)
{
	buf_puts(&o->b, "}");
}

/* Outcomes of one action over many runs (--workers, --each, --repeat): while tally_now is
 * set, result lines are counted there instead of printed. */
struct tally {
	long ok, not_run;
	int nerr;
	struct {
		int e;
		long n;
	} errs[16];
};
static struct tally *tally_now;

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Print a finished object as one line on stdout. */
static void obj_emit(struct obj *o)
{
	if (tally_now) {
		free(o->b.p);
		o->b.p = NULL;
		return;
	}
	obj_end(o);
	buf_puts(&o->b, "\n");
	write_all(1, o->b.p, o->b.len);
	free(o->b.p);
	o->b.p = NULL;
}

/* ------------------------------------------------------------------------- */
/* Names: errno, signals, capabilities, namespace flags.                      */

struct name_num {
	const char *name;
	int num;
};

#define E(x) { #x, x },
static const struct name_num errno_names[] = {
	E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
	E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(ENOTBLK) E(EBUSY) E(EEXIST)
	E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY)
	E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE) E(EDOM) E(ERANGE)
	E(EDEADLK) E(ENAMETOOLONG) E(ENOLCK) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENOMSG)
	E(EIDRM) E(ECHRNG) E(EL2NSYNC) E(EL3HLT) E(EL3RST) E(ELNRNG) E(EUNATCH) E(ENOCSI)
	E(EL2HLT) E(EBADE) E(EBADR) E(EXFULL) E(ENOANO) E(EBADRQC) E(EBADSLT) E(EBFONT)
	E(ENOSTR) E(ENODATA) E(ETIME) E(ENOSR) E(ENONET) E(ENOPKG) E(EREMOTE) E(ENOLINK)
	E(EADV) E(ESRMNT) E(ECOMM) E(EPROTO) E(EMULTIHOP) E(EDOTDOT) E(EBADMSG) E(EOVERFLOW)
	E(ENOTUNIQ) E(EBADFD) E(EREMCHG) E(ELIBACC) E(ELIBBAD) E(ELIBSCN) E(ELIBMAX)
	E(ELIBEXEC) E(EILSEQ) E(ERESTART) E(ESTRPIPE) E(EUSERS) E(ENOTSOCK) E(EDESTADDRREQ)
	E(EMSGSIZE) E(EPROTOTYPE) E(ENOPROTOOPT) E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT)
	E(EOPNOTSUPP) E(EPFNOSUPPORT) E(EAFNOSUPPORT) E(EADDRINUSE) E(EADDRNOTAVAIL)
	E(ENETDOWN) E(ENETUNREACH) E(ENETRESET) E(ECONNABORTED) E(ECONNRESET) E(ENOBUFS)
	E(EISCONN) E(ENOTCONN) E(ESHUTDOWN) E(ETOOMANYREFS) E(ETIMEDOUT) E(ECONNREFUSED)
	E(EHOSTDOWN) E(EHOSTUNREACH) E(EALREADY) E(EINPROGRESS) E(ESTALE) E(EUCLEAN)
	E(ENOTNAM) E(ENAVAIL) E(EISNAM) E(EREMOTEIO) E(EDQUOT) E(ENOMEDIUM) E(EMEDIUMTYPE)
	E(ECANCELED) E(ENOKEY) E(EKEYEXPIRED) E(EKEYREVOKED) E(EKEYREJECTED) E(EOWNERDEAD)
	E(ENOTRECOVERABLE) E(ERFKILL) E(EHWPOISON)
	{ NULL, 0 }
};
#undef E

#define S(x) { #x, SIG##x },
static const struct name_num signal_names[] = {
	S(HUP) S(INT) S(QUIT) S(ILL) S(TRAP) S(ABRT) S(BUS) S(FPE) S(KILL) S(USR1) S(SEGV)
	S(USR2) S(PIPE) S(ALRM) S(TERM) S(CHLD) S(CONT) S(STOP) S(TSTP) S(TTIN) S(TTOU)
	S(URG) S(XCPU) S(XFSZ) S(VTALRM) S(PROF) S(WINCH) S(IO) S(SYS)
	{ NULL, 0 }
};
#undef S

static const char *const cap_names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};
#define NCAPS ((int)(sizeof cap_names / sizeof cap_names[0]))

static const struct name_num ns_flag_names[] = {
	{ "uts", K_CLONE_NEWUTS }, { "ipc", K_CLONE_NEWIPC }, { "pid", K_CLONE_NEWPID },
	{ "net", K_CLONE_NEWNET }, { "user", K_CLONE_NEWUSER }, { "ns", K_CLONE_NEWNS },
	{ "mount", K_CLONE_NEWNS }, { "mnt", K_CLONE_NEWNS }, { "cgroup", K_CLONE_NEWCGROUP },
	{ "time", K_CLONE_NEWTIME }, { "fs", K_CLONE_FS }, { "files", K_CLONE_FILES },
	{ "sysvsem", K_CLONE_SYSVSEM },
	{ NULL, 0 }
};

static const char *errno_name(int e)
{
	for (const struct name_num *n = errno_names; n->name; n++)
		if (n->num == e)
			return n->name;
	return NULL;
}

static int lookup(const struct name_num *t, const char *s, int *out)
{
	for (; t->name; t++)
		if (strcasecmp(t->name, s) == 0) {
			*out = t->num;
			return 0;
		}
	return -1;
}

/* ------------------------------------------------------------------------- */
/* Usage errors: reported before anything is done, distinct from action errnos. */

static void usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct obj o;
	obj_begin(&o);
	obj_str(&o, "agent_error", "usage");
	obj_str(&o, "message", msg);
	obj_emit(&o);
	exit(EXIT_USAGE);
}

static void die_internal(const char *what)
{
	static const char pre[] = "{\"agent_error\":\"internal\",\"message\":\"";
	write_all(1, pre, sizeof pre - 1);
	write_all(1, what, strlen(what));
	write_all(1, "\"}\n", 3);
	_exit(EXIT_USAGE);
}

static int parse_long(const char *s, long long min, long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static long long need_num(const char *what, const char *s, long long min, long long max)
{
	long long v;
	if (parse_long(s, min, max, &v) < 0)
		usage_error("%s: \"%s\" is not a number in [%lld, %lld]", what, s, min, max);
	return v;
}

/* File modes are always octal, with or without a leading 0. */
static long long need_mode(const char *what, const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 8);
	if (errno || end == s || *end || v < 0 || v > 07777)
		usage_error("%s: \"%s\" is not an octal mode", what, s);
	return v;
}

static int parse_ns_flags(const char *spec, unsigned long *out)
{
	char tmp[256];
	unsigned long flags = 0;
	if (strlen(spec) >= sizeof tmp)
		return -1;
	strcpy(tmp, spec);
	if (strcmp(tmp, "none") == 0 || tmp[0] == 0) {
		*out = 0;
		return 0;
	}
	for (char *save = NULL, *t = strtok_r(tmp, ",+", &save); t; t = strtok_r(NULL, ",+", &save)) {
		int v;
		long long n;
		if (lookup(ns_flag_names, t, &v) == 0)
			flags |= (unsigned long)(unsigned)v;
		else if (parse_long(t, 0, 0xffffffffLL, &n) == 0)
			flags |= (unsigned long)n;
		else
			return -1;
	}
	*out = flags;
	return 0;
}

static int parse_signal(const char *s, int *out)
{
	long long n;
	if (parse_long(s, 0, 64, &n) == 0) {
		*out = (int)n;
		return 0;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	return lookup(signal_names, s, out);
}

static int cap_by_name(const char *s)
{
	for (int i = 0; i < NCAPS; i++)
		if (strcasecmp(cap_names[i], s) == 0 || strcasecmp(cap_names[i] + 4, s) == 0)
			return i;
	long long n;
	if (parse_long(s, 0, 63, &n) == 0)
		return (int)n;
	return -1;
}

/* ------------------------------------------------------------------------- */
/* Actions: parsed from argv first (so bad arguments fail before anything runs). */

enum act_kind {
	A_UNSHARE, A_CLONE, A_SPAWN, A_WRITE, A_JOIN, A_READ, A_READLINK, A_EXISTS, A_MKDIR,
	A_RMDIR, A_MOUNT, A_UMOUNT, A_SETHOSTNAME, A_GETHOSTNAME, A_KILL, A_SETNS, A_SLEEP,
	A_ID, A_REAP, A_HELPERS, A_EXEC, A_CHMOD,
};

struct action {
	enum act_kind kind;
	const char *name;
	int pre;               /* runs as root before the identity change */
	int may_fail;          /* "try": a failure is reported and the next action runs */
	int index;             /* 1-based position among all actions */
	char **args;           /* positional arguments */
	int nargs;
	/* options */
	unsigned long flags;   /* namespace flags or mount flags */
	long long num;         /* pid, mode, milliseconds, ns type */
	int sig;
	int hold, want_hostname, create, append, detach;
	long long wait_ms;
	int set_tls;           /* clone --tls: CLONE_SETTLS with this address */
	unsigned long long tls;
	const char *tag, *helper_name;
	char *reads[16];
	int nreads;
};

struct action_def {
	const char *name;
	enum act_kind kind;
	int min, max;
	const char *synopsis;
};

static const struct action_def defs[] = {
	{ "unshare", A_UNSHARE, 1, 1, "unshare FLAGS" },
	{ "clone", A_CLONE, 1, 1, "clone FLAGS [--read PATH]... [--hostname] [--hold] [--name N] [--tag T] [--tls ADDR]" },
	{ "spawn", A_SPAWN, 1, 1, "spawn NAME [--tag T]" },
	{ "write", A_WRITE, 2, 2, "write PATH DATA [--create] [--append]" },
	{ "join", A_JOIN, 1, 1, "join DIR" },
	{ "read", A_READ, 1, 1, "read PATH" },
	{ "readlink", A_READLINK, 1, 1, "readlink PATH" },
	{ "exists", A_EXISTS, 1, 1, "exists PATH" },
	{ "mkdir", A_MKDIR, 1, 2, "mkdir PATH [MODE]" },
	{ "rmdir", A_RMDIR, 1, 1, "rmdir PATH" },
	{ "chmod", A_CHMOD, 2, 2, "chmod PATH MODE" },
	{ "mount", A_MOUNT, 3, 4, "mount TYPE SOURCE TARGET [DATA] [--flags LIST]" },
	{ "umount", A_UMOUNT, 1, 1, "umount PATH [--detach]" },
	{ "sethostname", A_SETHOSTNAME, 1, 1, "sethostname NAME" },
	{ "gethostname", A_GETHOSTNAME, 0, 0, "gethostname" },
	{ "kill", A_KILL, 1, 2, "kill PID [SIGNAL] [--wait MS]" },
	{ "setns", A_SETNS, 1, 2, "setns PATH [TYPE]" },
	{ "sleep", A_SLEEP, 1, 1, "sleep MS" },
	{ "id", A_ID, 0, 0, "id" },
	{ "reap", A_REAP, 0, 1, "reap [TAG]" },
	{ "helpers", A_HELPERS, 0, 0, "helpers" },
	{ "exec", A_EXEC, 1, 1000, "exec PROGRAM [ARG]..." },
	{ NULL, 0, 0, 0, NULL }
};

static const struct name_num mount_flag_names[] = {
	{ "ro", MS_RDONLY }, { "nosuid", MS_NOSUID }, { "nodev", MS_NODEV },
	{ "noexec", MS_NOEXEC }, { "remount", MS_REMOUNT }, { "bind", MS_BIND },
	{ "rec", MS_REC }, { "private", MS_PRIVATE }, { "slave", MS_SLAVE },
	{ "shared", MS_SHARED }, { "move", MS_MOVE },
	{ NULL, 0 }
};

static const char *default_tag = "";

/* How the main actions run: in workers started at once, repeated, under a timer's signals,
 * or in a second thread (README.md, "Load"). */
static struct {
	int workers;     /* --workers N */
	char *each;      /* --each A,B,...: one worker per value, "{each}" in arguments */
	long long repeat; /* --repeat N: "{iter}" in arguments */
	long long timer_us; /* --timer USEC: SIGALRM every USEC microseconds */
	int thread;      /* --thread: run them in a thread other than the leader; "{tid}" */
} load = { 1, NULL, 1, 0, 0 };

/* Every "tok" in arg replaced by the text v (arg itself when there is none). */
static char *expand_text(char *arg, const char *tok, const char *v)
{
	if (!strstr(arg, tok))
		return arg;
	struct buf b = { 0 };
	for (const char *p = arg, *q; *p; p = q + strlen(tok)) {
		q = strstr(p, tok);
		if (!q) {
			buf_puts(&b, p);
			break;
		}
		buf_put(&b, p, (size_t)(q - p));
		buf_puts(&b, v);
	}
	return b.p;
}

/* Every "tok" in arg replaced by the number n (arg itself when there is none). */
static char *expand_number(char *arg, const char *tok, long n)
{
	char num[32];
	snprintf(num, sizeof num, "%ld", n);
	return expand_text(arg, tok, num);
}

/* "{pid}" in an argument stands for the agent's own pid (e.g. mkdir /c/node_{pid}). */
static char *expand_pid(char *arg)
{
	return expand_number(arg, "{pid}", getpid());
}

/* Parse one action starting at argv[*i]; stops at "--" or the end. */
static void parse_action(char **argv, int argc, int *i, struct action *a)
{
	const struct action_def *d;
	memset(a, 0, sizeof *a);
	if (strcmp(argv[*i], "pre") == 0) {
		a->pre = 1;
		(*i)++;
		if (*i >= argc)
			usage_error("\"pre\" must be followed by an action");
	}
	if (strcmp(argv[*i], "try") == 0) {
		if (a->pre)
			usage_error("\"try\" is for main actions: a pre-step must succeed");
		a->may_fail = 1;
		(*i)++;
		if (*i >= argc)
			usage_error("\"try\" must be followed by an action");
	}
	for (d = defs; d->name; d++)
		if (strcmp(d->name, argv[*i]) == 0)
			break;
	if (!d->name)
		usage_error("unknown action \"%s\"", argv[*i]);
	a->kind = d->kind;
	a->name = d->name;
	a->tag = default_tag;
	(*i)++;
	a->args = calloc((size_t)argc, sizeof(char *));
	if (!a->args)
		die_internal("out of memory");
	for (; *i < argc; (*i)++) {
		char *t = argv[*i];
		if (a->kind == A_EXEC) {
			a->args[a->nargs++] = t; /* exec takes everything that follows */
			continue;
		}
		if (strcmp(t, "--") == 0)
			break;
#define OPTARG_NEXT() ((*i) + 1 < argc ? argv[++(*i)] : (usage_error("%s: option %s needs a value", d->name, t), (char *)NULL))
		if (a->kind == A_CLONE && strcmp(t, "--read") == 0) {
			if (a->nreads >= (int)(sizeof a->reads / sizeof a->reads[0]))
				usage_error("clone: too many --read options");
			a->reads[a->nreads++] = expand_pid(OPTARG_NEXT());
		} else if (a->kind == A_CLONE && strcmp(t, "--hostname") == 0) {
			a->want_hostname = 1;
		} else if (a->kind == A_CLONE && strcmp(t, "--hold") == 0) {
			a->hold = 1;
		} else if ((a->kind == A_CLONE || a->kind == A_SPAWN) && strcmp(t, "--tag") == 0) {
			a->tag = OPTARG_NEXT();
		} else if (a->kind == A_CLONE && strcmp(t, "--name") == 0) {
			a->helper_name = OPTARG_NEXT();
		} else if (a->kind == A_CLONE && strcmp(t, "--tls") == 0) {
			char *v = OPTARG_NEXT(), *end;
			errno = 0;
			a->tls = strtoull(v, &end, 0);
			if (errno || end == v || *end)
				usage_error("clone: --tls needs an address (decimal or 0x hex), got \"%s\"", v);
			a->set_tls = 1;
		} else if (a->kind == A_WRITE && strcmp(t, "--create") == 0) {
			a->create = 1;
		} else if (a->kind == A_WRITE && strcmp(t, "--append") == 0) {
			a->append = 1;
		} else if (a->kind == A_UMOUNT && strcmp(t, "--detach") == 0) {
			a->detach = 1;
		} else if (a->kind == A_KILL && strcmp(t, "--wait") == 0) {
			a->wait_ms = need_num("kill --wait", OPTARG_NEXT(), 0, 600000);
		} else if (a->kind == A_MOUNT && strcmp(t, "--flags") == 0) {
			char *list = OPTARG_NEXT();
			char tmp[256];
			if (strlen(list) >= sizeof tmp)
				usage_error("mount: --flags too long");
			strcpy(tmp, list);
			for (char *s = NULL, *f = strtok_r(tmp, ",", &s); f; f = strtok_r(NULL, ",", &s)) {
				int v;
				if (lookup(mount_flag_names, f, &v) < 0)
					usage_error("mount: unknown flag \"%s\"", f);
				a->flags |= (unsigned long)(unsigned)v;
			}
		} else {
			a->args[a->nargs++] = expand_pid(t);
		}
#undef OPTARG_NEXT
	}
	if (a->nargs < d->min || a->nargs > d->max)
		usage_error("%s takes %d to %d argument(s), got %d (usage: %s)", d->name, d->min, d->max,
			    a->nargs, d->synopsis);
	/* Validate arguments now. */
	switch (a->kind) {
	case A_UNSHARE:
	case A_CLONE:
		if (parse_ns_flags(a->args[0], &a->flags) < 0)
			usage_error("%s: bad namespace flags \"%s\" (names: uts ipc pid net user ns cgroup time, "
				    "joined by commas, or a number)", d->name, a->args[0]);
		break;
	case A_MKDIR:
		a->num = a->nargs > 1 ? need_mode("mkdir", a->args[1]) : 0755;
		break;
	case A_CHMOD:
		a->num = need_mode("chmod", a->args[1]);
		break;
	case A_KILL:
		a->num = need_num("kill pid", a->args[0], INT_MIN, INT_MAX);
		a->sig = SIGTERM;
		if (a->nargs > 1 && parse_signal(a->args[1], &a->sig) < 0)
			usage_error("kill: unknown signal \"%s\"", a->args[1]);
		break;
	case A_SETNS:
		a->num = 0;
		if (a->nargs > 1) {
			int v;
			if (lookup(ns_flag_names, a->args[1], &v) == 0)
				a->num = (unsigned)v;
			else
				a->num = need_num("setns type", a->args[1], 0, 0xffffffffLL);
		}
		break;
	case A_SLEEP:
		a->num = need_num("sleep", a->args[0], 0, 3600000);
		break;
	case A_SPAWN:
		a->helper_name = a->args[0];
		a->hold = 1;
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------------- */
/* Result lines.                                                              */

static const char *stage_of(const struct action *a)
{
	return a->pre ? "pre" : "action";
}

static void result_begin(struct obj *o, const struct action *a, int ok)
{
	obj_begin(o);
	obj_str(o, "action", a->name);
	obj_int(o, "index", a->index);
	obj_str(o, "stage", stage_of(a));
	obj_bool(o, "ok", ok);
	if (a->may_fail)
		obj_bool(o, "try", 1);
	obj_int(o, "self", getpid());
	if (load.thread)
		obj_int(o, "tid", (long long)syscall(SYS_gettid));
	if (tally_now && ok)
		tally_now->ok++;
}

static void add_errno(struct obj *o, int e, const char *syscall_name)
{
	const char *n = errno_name(e);
	if (n)
		obj_str(o, "errno", n);
	else {
		char tmp[32];
		snprintf(tmp, sizeof tmp, "E%d", e);
		obj_str(o, "errno", tmp);
	}
	obj_int(o, "errnum", e);
	obj_str(o, "syscall", syscall_name);
	obj_str(o, "message", strerror(e));
}

/* Print the failure line for action a; returns -1 for the caller to pass on. */
static int fail(const struct action *a, int e, const char *syscall_name, const char *path)
{
	if (tally_now) {
		int i = 0;
		while (i < tally_now->nerr && tally_now->errs[i].e != e)
			i++;
		if (i == tally_now->nerr && i < 16)
			tally_now->errs[tally_now->nerr++].e = e;
		if (i < 16)
			tally_now->errs[i].n++;
	}
	struct obj o;
	result_begin(&o, a, 0);
	add_errno(&o, e, syscall_name);
	if (path)
		obj_str(&o, "path", path);
	obj_emit(&o);
	return -1;
}

/* ------------------------------------------------------------------------- */
/* Capabilities.                                                              */

static uint32_t cap_version;

static uint32_t probe_cap_version(void)
{
	if (cap_version)
		return cap_version;
	struct cap_header h = { 0, 0 };
	syscall(SYS_capget, &h, NULL);
	if (h.version == CAPV1 || h.version == CAPV2 || h.version == CAPV3)
		cap_version = h.version;
	else
		cap_version = CAPV1;
	return cap_version;
}

struct capsets {
	uint64_t eff, prm, inh;
};

static int cap_get(struct capsets *c)
{
	struct cap_header h = { probe_cap_version(), 0 };
	struct cap_data d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	c->eff = d[0].effective | ((uint64_t)d[1].effective << 32);
	c->prm = d[0].permitted | ((uint64_t)d[1].permitted << 32);
	c->inh = d[0].inheritable | ((uint64_t)d[1].inheritable << 32);
	return 0;
}

static int cap_set(const struct capsets *c)
{
	struct cap_header h = { probe_cap_version(), 0 };
	struct cap_data d[2];
	d[0].effective = (uint32_t)c->eff;
	d[0].permitted = (uint32_t)c->prm;
	d[0].inheritable = (uint32_t)c->inh;
	d[1].effective = (uint32_t)(c->eff >> 32);
	d[1].permitted = (uint32_t)(c->prm >> 32);
	d[1].inheritable = (uint32_t)(c->inh >> 32);
	return (int)syscall(SYS_capset, &h, d);
}

static void cap_names_json(struct buf *b, uint64_t mask)
{
	int n = 0;
	buf_puts(b, "[");
	for (int i = 0; i < 64; i++) {
		if (!(mask & ((uint64_t)1 << i)))
			continue;
		if (n++)
			buf_puts(b, ",");
		if (i < NCAPS)
			buf_json_str(b, cap_names[i], strlen(cap_names[i]));
		else
			buf_printf(b, "\"CAP_%d\"", i);
	}
	buf_puts(b, "]");
}

/* ------------------------------------------------------------------------- */
/* Identity: who the main actions run as.                                     */

struct identity {
	int set_uid, set_gid, set_groups, set_caps;
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int ngroups;
	const char *caps_spec;
};

static struct identity ident;

static void identity_fail(int e, const char *syscall_name, const char *detail)
{
	struct obj o;
	obj_begin(&o);
	obj_str(&o, "action", "identity");
	obj_int(&o, "index", 0);
	obj_str(&o, "stage", "identity");
	obj_bool(&o, "ok", 0);
	add_errno(&o, e, syscall_name);
	if (detail)
		obj_str(&o, "detail", detail);
	obj_emit(&o);
	exit(EXIT_SETUP_FAILED);
}

/* Caps spec: comma list read left to right; all, none, NAME (add), -NAME (remove).
 * A list starting with -NAME starts from all. "all" means the set the agent has. */
static uint64_t caps_from_spec(const char *spec, uint64_t all)
{
	char tmp[1024];
	uint64_t m = 0;
	int first = 1;
	if (strlen(spec) >= sizeof tmp)
		usage_error("--caps: too long");
	strcpy(tmp, spec);
	for (char *s = NULL, *t = strtok_r(tmp, ",", &s); t; t = strtok_r(NULL, ",", &s), first = 0) {
		if (strcasecmp(t, "all") == 0) {
			m = all;
			continue;
		}
		if (strcasecmp(t, "none") == 0) {
			m = 0;
			continue;
		}
		int remove = t[0] == '-';
		if (t[0] == '-' || t[0] == '+')
			t++;
		if (remove && first)
			m = all;
		int c = cap_by_name(t);
		if (c < 0)
			usage_error("--caps: unknown capability \"%s\"", t);
		if (remove)
			m &= ~((uint64_t)1 << c);
		else
			m |= (uint64_t)1 << c;
	}
	return m;
}

static void apply_identity(int exec_follows)
{
	struct capsets cur;
	if (!ident.set_uid && !ident.set_gid && !ident.set_groups && !ident.set_caps)
		return;
	if (cap_get(&cur) < 0)
		identity_fail(errno, "capget", NULL);
	uid_t target_uid = ident.set_uid ? ident.uid : getuid();
	uint64_t want = ident.set_caps ? caps_from_spec(ident.caps_spec, cur.prm)
				       : (target_uid == 0 ? cur.prm : 0);
	int keep = target_uid != 0 && want != 0;

	if (ident.set_groups || ident.set_gid) {
		if (setgroups((size_t)ident.ngroups, ident.groups) < 0)
			identity_fail(errno, "setgroups", NULL);
	}
	if (ident.set_gid && setresgid(ident.gid, ident.gid, ident.gid) < 0)
		identity_fail(errno, "setresgid", NULL);
	if (exec_follows && target_uid == 0 && want != cur.prm) {
		/* Root regains every capability at exec unless the bounding set lacks it. */
		for (int c = 0; c < 64; c++) {
			if (!(cur.prm & ((uint64_t)1 << c)) || (want & ((uint64_t)1 << c)))
				continue;
			if (prctl(K_PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
				identity_fail(errno, "prctl", "PR_CAPBSET_DROP: this kernel cannot keep "
							    "capabilities dropped across exec for uid 0");
		}
	}
	if (keep && prctl(K_PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		identity_fail(errno, "prctl", "PR_SET_KEEPCAPS");
	if (ident.set_uid && setresuid(ident.uid, ident.uid, ident.uid) < 0)
		identity_fail(errno, "setresuid", NULL);
	if (ident.set_caps || keep || want != cur.prm) {
		struct capsets c = { want, want, 0 };
		if (exec_follows && target_uid != 0 && want != 0)
			c.inh = want;
		if (cap_set(&c) < 0)
			identity_fail(errno, "capset", NULL);
		if (exec_follows && target_uid != 0 && want != 0) {
			for (int i = 0; i < 64; i++)
				if ((want & ((uint64_t)1 << i)) &&
				    prctl(K_PR_CAP_AMBIENT, K_PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0)
					identity_fail(errno, "prctl", "PR_CAP_AMBIENT_RAISE: this kernel cannot "
								    "pass capabilities of a non-root uid across exec");
		}
	}
	if (keep)
		prctl(K_PR_SET_KEEPCAPS, 0, 0, 0, 0);
	/* A changed uid makes the task undumpable, which hides /proc/self from it;
	 * a task started as that user would be dumpable. */
	prctl(K_PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* ------------------------------------------------------------------------- */
/* Files.                                                                     */

static int read_file(const char *path, struct buf *out, int *err, const char **where)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		*err = errno;
		*where = "open";
		return -1;
	}
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*err = errno;
			*where = "read";
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		buf_put(out, chunk, (size_t)n);
		if (out->len >= MAX_READ)
			break;
	}
	close(fd);
	if (!out->p)
		buf_puts(out, "");
	return 0;
}

/* Start time of a task in clock ticks since boot (field 22 of /proc/PID/stat), 0 if unknown;
 * *state gets the state letter ('?' if unknown). */
static unsigned long long task_start(int pid, char *state)
{
	char path[64];
	struct buf b = { 0 };
	int e;
	const char *w;
	*state = '?';
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (read_file(path, &b, &e, &w) < 0) {
		free(b.p);
		return 0;
	}
	char *p = strrchr(b.p, ')');
	unsigned long long start = 0;
	if (p && p[1] == ' ') {
		*state = p[2];
		/* after ") " come fields 3.. ; starttime is field 22 */
		char *q = p + 2;
		for (int field = 3; field < 22 && q; field++) {
			q = strchr(q, ' ');
			if (q)
				q++;
		}
		if (q)
			start = strtoull(q, NULL, 10);
	}
	free(b.p);
	return start;
}

/* Gone, or a zombie (it has exited; only the reaping is left). */
static int task_gone(int pid)
{
	char st;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 1;
	task_start(pid, &st);
	return st == 'Z' || st == 'X';
}

static void sleep_ms(long long ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int wait_gone(int pid, long long ms)
{
	for (long long t = 0;; t += 10) {
		if (task_gone(pid))
			return 1;
		if (t >= ms)
			return 0;
		sleep_ms(10);
	}
}

/* ------------------------------------------------------------------------- */
/* Helper registry: one file per held task, so cleanup can find and stop them all. */

static const char *state_dir = DEFAULT_STATE_DIR;

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	if (strlen(path) >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(tmp, path);
	for (char *p = tmp + 1;; p++) {
		if (*p == '/' || *p == 0) {
			char c = *p;
			*p = 0;
			if (mkdir(tmp, mode) == 0)
				chmod(tmp, mode); /* not limited by the umask */
			else if (errno != EEXIST)
				return -1;
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

/* The pid of the last task this run started and kept (spawn, clone --hold): "{child}". */
static int last_child;

static void registry_add(int pid, const char *tag, const char *name)
{
	char path[PATH_MAX], line[512];
	char st;
	snprintf(path, sizeof path, "%s/%d", state_dir, pid);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	int n = snprintf(line, sizeof line, "%d %llu %s %s\n", pid, task_start(pid, &st),
			 tag[0] ? tag : "-", name && name[0] ? name : "-");
	write_all(fd, line, (size_t)n);
	close(fd);
}

struct helper_rec {
	int pid;
	unsigned long long start;
	char tag[128], name[128];
};

static int registry_read(const char *file, struct helper_rec *r)
{
	char path[PATH_MAX];
	struct buf b = { 0 };
	int e;
	const char *w;
	snprintf(path, sizeof path, "%s/%s", state_dir, file);
	if (read_file(path, &b, &e, &w) < 0) {
		free(b.p);
		return -1;
	}
	int n = sscanf(b.p, "%d %llu %127s %127s", &r->pid, &r->start, r->tag, r->name);
	free(b.p);
	return n == 4 ? 0 : -1;
}

/* The recorded task is still the one we started (not a reused pid). */
static int registry_alive(const struct helper_rec *r)
{
	char st;
	unsigned long long s = task_start(r->pid, &st);
	if (task_gone(r->pid))
		return 0;
	return r->start == 0 || s == 0 || s == r->start;
}

static void registry_remove(int pid)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%d", state_dir, pid);
	unlink(path);
}

/* ------------------------------------------------------------------------- */
/* Child tasks: clone reports and held helpers.                               */

static void on_stop_signal(int sig)
{
	(void)sig;
	_exit(0);
}

/* Detach from the ssh session: new session, stdio on /dev/null, no other descriptors but
 * keep_fd, cwd /, stop on TERM/INT. */
static int become_holder(int keep_fd)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	setsid();
	if (chdir("/") < 0)
		return -1;
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return -1;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	for (int i = 3; i < 1024; i++)
		if (i != keep_fd)
			close(i);
	return 0;
}

/* What a cloned child reports back through the pipe: a first line holding the JSON
 * value of "output" (the first file read, else the hostname, else null), then one JSON
 * object. Files are read before a holder detaches, so relative paths still work. */
static void child_report(const struct action *a, int fd)
{
	struct obj o;
	struct buf first = { 0 };
	obj_begin(&o);
	obj_int(&o, "pid", getpid());
	if (a->nreads) {
		struct buf arr = { 0 };
		buf_puts(&arr, "[");
		for (int i = 0; i < a->nreads; i++) {
			struct obj r;
			struct buf content = { 0 };
			int e;
			const char *w;
			obj_begin(&r);
			obj_str(&r, "path", a->reads[i]);
			if (read_file(a->reads[i], &content, &e, &w) == 0) {
				obj_bool(&r, "ok", 1);
				obj_strn(&r, "output", content.p, content.len);
				if (i == 0)
					buf_json_str(&first, content.p, content.len);
			} else {
				obj_bool(&r, "ok", 0);
				add_errno(&r, e, w);
			}
			free(content.p);
			obj_end(&r);
			if (i)
				buf_puts(&arr, ",");
			buf_put(&arr, r.b.p, r.b.len);
			free(r.b.p);
		}
		buf_puts(&arr, "]");
		obj_raw(&o, "reads", arr.p);
		free(arr.p);
	}
	if (a->want_hostname) {
		struct utsname u;
		if (uname(&u) == 0) {
			obj_str(&o, "hostname", u.nodename);
			if (!a->nreads)
				buf_json_str(&first, u.nodename, strlen(u.nodename));
		}
	}
	if (a->hold && become_holder(fd) < 0)
		obj_str(&o, "hold_error", strerror(errno));
	obj_end(&o);
	write_all(fd, first.len ? first.p : "null", first.len ? first.len : 4);
	write_all(fd, "\n", 1);
	write_all(fd, o.b.p, o.b.len);
	free(o.b.p);
	free(first.p);
}

/* clone (or fork for spawn); on success prints the result line. */
static int do_clone(const struct action *a)
{
	int p[2];
	if (pipe(p) < 0)
		return fail(a, errno, "pipe", NULL);
	if (a->hold)
		mkdir_p(state_dir, 01777);
	unsigned long flags = (unsigned long)a->flags | (a->set_tls ? K_CLONE_SETTLS : 0);
	long r = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, (unsigned long)a->tls);
	if (r < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return fail(a, e, "clone", NULL);
	}
	if (r == 0) {
		close(p[0]);
		child_report(a, p[1]);
		close(p[1]);
		if (!a->hold)
			_exit(0);
		for (;;)
			pause();
	}
	int pid = (int)r;
	close(p[1]);
	struct buf rep = { 0 };
	char chunk[4096];
	for (;;) {
		ssize_t n = read(p[0], chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf_put(&rep, chunk, (size_t)n);
	}
	close(p[0]);
	int status = 0, exited = 0;
	if (!a->hold) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		exited = 1;
	} else {
		registry_add(pid, a->tag, a->helper_name ? a->helper_name : a->name);
		last_child = pid;
	}
	char *nl = rep.p ? strchr(rep.p, '\n') : NULL;
	struct obj o;
	result_begin(&o, a, 1);
	obj_int(&o, "pid", pid);
	if (a->kind == A_CLONE) {
		obj_raw(&o, "child", nl && nl[1] ? nl + 1 : "null");
		if (nl) {
			*nl = 0;
			if (strcmp(rep.p, "null") != 0)
				obj_raw(&o, "output", rep.p);
		}
	} else {
		char tmp[32];
		snprintf(tmp, sizeof tmp, "%d", pid);
		obj_str(&o, "output", tmp);
	}
	if (a->hold) {
		obj_bool(&o, "held", 1);
		if (a->helper_name)
			obj_str(&o, "name", a->helper_name);
		if (a->tag[0])
			obj_str(&o, "tag", a->tag);
	}
	if (exited) {
		if (WIFEXITED(status))
			obj_int(&o, "exit_status", WEXITSTATUS(status));
		else if (WIFSIGNALED(status))
			obj_int(&o, "signal", WTERMSIG(status));
	}
	obj_emit(&o);
	free(rep.p);
	return 0;
}

/* ------------------------------------------------------------------------- */
/* The actions.                                                               */

static int ok_line(const struct action *a, const char *path, const char *output)
{
	struct obj o;
	result_begin(&o, a, 1);
	if (path)
		obj_str(&o, "path", path);
	if (output)
		obj_str(&o, "output", output);
	obj_emit(&o);
	return 0;
}

static int do_write(const struct action *a, const char *path, const char *data)
{
	char pidbuf[32];
	if (strcmp(data, "self") == 0) {
		snprintf(pidbuf, sizeof pidbuf, "%d", getpid());
		data = pidbuf;
	} else if (strncmp(data, "str:", 4) == 0) {
		data += 4;
	}
	int flags = O_WRONLY | (a->append ? O_APPEND : O_TRUNC) | (a->create ? O_CREAT : 0);
	int fd = open(path, flags, 0644);
	if (fd < 0)
		return fail(a, errno, "open", path);
	size_t len = strlen(data);
	ssize_t n;
	do
		n = write(fd, data, len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = errno;
		close(fd);
		return fail(a, e, "write", path);
	}
	if (close(fd) < 0)
		return fail(a, errno, "close", path);
	struct obj o;
	result_begin(&o, a, 1);
	obj_str(&o, "path", path);
	obj_str(&o, "data", data);
	obj_int(&o, "bytes", n);
	obj_emit(&o);
	return 0;
}

static int do_read(const struct action *a)
{
	struct buf b = { 0 };
	int e;
	const char *w;
	if (read_file(a->args[0], &b, &e, &w) < 0) {
		free(b.p);
		return fail(a, e, w, a->args[0]);
	}
	struct obj o;
	result_begin(&o, a, 1);
	obj_str(&o, "path", a->args[0]);
	obj_strn(&o, "output", b.p, b.len);
	if (b.len >= MAX_READ)
		obj_bool(&o, "truncated", 1);
	obj_emit(&o);
	free(b.p);
	return 0;
}

static int do_kill(const struct action *a)
{
	int pid = (int)a->num;
	if (kill(pid, a->sig) < 0)
		return fail(a, errno, "kill", NULL);
	int gone = -1;
	if (a->wait_ms)
		gone = wait_gone(pid, a->wait_ms);
	if (gone == 1)
		registry_remove(pid);
	struct obj o;
	result_begin(&o, a, 1);
	obj_int(&o, "pid", pid);
	obj_int(&o, "signal", a->sig);
	if (gone >= 0)
		obj_bool(&o, "exited", gone);
	obj_emit(&o);
	return 0;
}

static int do_reap(const struct action *a, int list_only)
{
	DIR *d = opendir(state_dir);
	struct buf killed = { 0 }, alive = { 0 };
	int nk = 0, na = 0;
	buf_puts(&killed, "[");
	buf_puts(&alive, "[");
	if (d) {
		struct dirent *de;
		int pids[1024], n = 0;
		while ((de = readdir(d)) && n < 1024) {
			struct helper_rec r;
			if (de->d_name[0] == '.' || registry_read(de->d_name, &r) < 0)
				continue;
			if (!list_only && a->nargs && strcmp(a->args[0], r.tag) != 0)
				continue;
			int live = registry_alive(&r);
			if (list_only) {
				if (!live)
					continue;
				struct obj h;
				obj_begin(&h);
				obj_int(&h, "pid", r.pid);
				obj_str(&h, "tag", r.tag);
				obj_str(&h, "name", r.name);
				obj_end(&h);
				buf_puts(&alive, na++ ? "," : "");
				buf_put(&alive, h.b.p, h.b.len);
				free(h.b.p);
				continue;
			}
			if (live && kill(r.pid, SIGKILL) == 0) {
				pids[n++] = r.pid;
				buf_printf(&killed, "%s%d", nk++ ? "," : "", r.pid);
			}
			registry_remove(r.pid);
		}
		closedir(d);
		for (int i = 0; i < n; i++)
			wait_gone(pids[i], 2000);
	}
	buf_puts(&killed, "]");
	buf_puts(&alive, "]");
	struct obj o;
	result_begin(&o, a, 1);
	char tmp[32];
	snprintf(tmp, sizeof tmp, "%d", list_only ? na : nk);
	obj_str(&o, "output", tmp);
	obj_raw(&o, list_only ? "helpers" : "killed", list_only ? alive.p : killed.p);
	obj_emit(&o);
	free(killed.p);
	free(alive.p);
	return 0;
}

static int do_id(const struct action *a)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	struct capsets c;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	struct obj o;
	result_begin(&o, a, 1);
	obj_int(&o, "pid", getpid());
	obj_int(&o, "uid", r);
	obj_int(&o, "euid", e);
	obj_int(&o, "suid", s);
	obj_int(&o, "gid", gr);
	obj_int(&o, "egid", ge);
	gid_t g[64];
	int n = getgroups(64, g);
	struct buf gb = { 0 };
	buf_puts(&gb, "[");
	for (int i = 0; i < n; i++)
		buf_printf(&gb, "%s%u", i ? "," : "", (unsigned)g[i]);
	buf_puts(&gb, "]");
	obj_raw(&o, "groups", gb.p);
	free(gb.p);
	if (cap_get(&c) == 0) {
		struct buf cb = { 0 };
		char hex[32];
		snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)c.eff);
		obj_str(&o, "cap_eff", hex);
		snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)c.prm);
		obj_str(&o, "cap_prm", hex);
		cap_names_json(&cb, c.eff);
		obj_raw(&o, "caps", cb.p);
		free(cb.p);
	}
	obj_str(&o, "cap_abi", probe_cap_version() == CAPV1 ? "v1" : probe_cap_version() == CAPV2 ? "v2" : "v3");
	char tmp[64];
	snprintf(tmp, sizeof tmp, "uid=%u gid=%u", (unsigned)e, (unsigned)ge);
	obj_str(&o, "output", tmp);
	obj_emit(&o);
	return 0;
}

/* "{child}" in an argument stands for the pid of the last task this run started and kept
 * (spawn, clone --hold), known only once that action has run; without one the action
 * fails with ESRCH. */
static int expand_child(struct action *a)
{
	if (a->kind == A_EXEC)
		return 0;
	for (int j = 0; j < a->nargs; j++) {
		if (!strstr(a->args[j], "{child}"))
			continue;
		if (!last_child)
			return fail(a, ESRCH, "{child}", a->args[j]);
		a->args[j] = expand_number(a->args[j], "{child}", last_child);
	}
	return 0;
}

static int run_action(const struct action *a)
{
	switch (a->kind) {
	case A_UNSHARE: {
		if (syscall(SYS_unshare, a->flags) < 0)
			return fail(a, errno, "unshare", NULL);
		return ok_line(a, NULL, NULL);
	}
	case A_CLONE:
	case A_SPAWN:
		return do_clone(a);
	case A_WRITE:
		return do_write(a, a->args[0], a->args[1]);
	case A_JOIN: {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/tasks", a->args[0]);
		return do_write(a, path, "self");
	}
	case A_READ:
		return do_read(a);
	case A_READLINK: {
		char target[PATH_MAX];
		ssize_t n = readlink(a->args[0], target, sizeof target - 1);
		if (n < 0)
			return fail(a, errno, "readlink", a->args[0]);
		target[n] = 0;
		return ok_line(a, a->args[0], target);
	}
	case A_EXISTS: {
		struct stat st;
		int yes = lstat(a->args[0], &st) == 0;
		if (!yes && errno != ENOENT && errno != ENOTDIR)
			return fail(a, errno, "lstat", a->args[0]);
		struct obj o;
		result_begin(&o, a, 1);
		obj_str(&o, "path", a->args[0]);
		obj_bool(&o, "exists", yes);
		obj_str(&o, "output", yes ? "true" : "false");
		obj_emit(&o);
		return 0;
	}
	case A_MKDIR:
		if (mkdir(a->args[0], (mode_t)a->num) < 0)
			return fail(a, errno, "mkdir", a->args[0]);
		return ok_line(a, a->args[0], NULL);
	case A_RMDIR:
		if (rmdir(a->args[0]) < 0)
			return fail(a, errno, "rmdir", a->args[0]);
		return ok_line(a, a->args[0], NULL);
	case A_CHMOD:
		if (chmod(a->args[0], (mode_t)a->num) < 0)
			return fail(a, errno, "chmod", a->args[0]);
		return ok_line(a, a->args[0], NULL);
	case A_MOUNT: {
		const char *data = a->nargs > 3 ? a->args[3] : NULL;
		if (mount(a->args[1], a->args[2], a->args[0], a->flags, data) < 0)
			return fail(a, errno, "mount", a->args[2]);
		return ok_line(a, a->args[2], NULL);
	}
	case A_UMOUNT:
		if (umount2(a->args[0], a->detach ? MNT_DETACH : 0) < 0)
			return fail(a, errno, "umount", a->args[0]);
		return ok_line(a, a->args[0], NULL);
	case A_SETHOSTNAME:
		if (sethostname(a->args[0], strlen(a->args[0])) < 0)
			return fail(a, errno, "sethostname", NULL);
		return ok_line(a, NULL, a->args[0]);
	case A_GETHOSTNAME: {
		struct utsname u;
		if (uname(&u) < 0)
			return fail(a, errno, "uname", NULL);
		return ok_line(a, NULL, u.nodename);
	}
	case A_KILL:
		return do_kill(a);
	case A_SETNS: {
		int fd = open(a->args[0], O_RDONLY);
		if (fd < 0)
			return fail(a, errno, "open", a->args[0]);
#ifdef SYS_setns
		long r = syscall(SYS_setns, fd, (int)a->num);
#else
		long r = -1;
		errno = ENOSYS;
#endif
		int e = errno;
		close(fd);
		if (r < 0)
			return fail(a, e, "setns", a->args[0]);
		return ok_line(a, a->args[0], NULL);
	}
	case A_SLEEP:
		sleep_ms(a->num);
		return ok_line(a, NULL, NULL);
	case A_ID:
		return do_id(a);
	case A_REAP:
		return do_reap(a, 0);
	case A_HELPERS:
		return do_reap(a, 1);
	case A_EXEC:
		fflush(NULL);
		execv(a->args[0], a->args);
		return fail(a, errno, "execve", a->args[0]);
	}
	return -1;
}

/* ------------------------------------------------------------------------- */
/* Load: workers started at once, repeats, a timer's signals, a second thread. */

static volatile sig_atomic_t timer_signals;

static void on_timer(int sig)
{
	(void)sig;
	timer_signals++;
}

/* SIGALRM every load.timer_us microseconds, without SA_RESTART, so a signal interrupts
 * what it can, as any signal from a timer would (fork restarts inside the kernel). */
static void set_timer(int on)
{
	if (!load.timer_us)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_timer;
	if (on)
		sigaction(SIGALRM, &sa, NULL);
	struct itimerval it;
	memset(&it, 0, sizeof it);
	if (on) {
		it.it_interval.tv_sec = (time_t)(load.timer_us / 1000000);
		it.it_interval.tv_usec = (suseconds_t)(load.timer_us % 1000000);
		it.it_value = it.it_interval;
	}
	setitimer(ITIMER_REAL, &it, NULL);
}

/* One round of the main actions acts[k0..n-1], counted in t[]; "{each}" and "{iter}" are
 * replaced in their arguments. Stops at the first failure not marked "try". */
static void run_round(const struct action *acts, int k0, int n, struct tally *t, const char *each, long long iter)
{
	for (int k = k0; k < n; k++) {
		struct action a = acts[k];
		char **args = calloc((size_t)a.nargs + 1, sizeof *args);
		if (!args)
			die_internal("out of memory");
		for (int j = 0; j < a.nargs; j++)
			args[j] = expand_number(each ? expand_text(a.args[j], "{each}", each) : a.args[j], "{iter}", iter);
		a.args = args;
		tally_now = &t[k];
		int r = expand_child(&a) < 0 ? -1 : run_action(&a);
		tally_now = NULL;
		free(args);
		if (r < 0 && !a.may_fail) {
			for (int j = k + 1; j < n; j++)
				t[j].not_run++;
			return;
		}
	}
}

#define MAX_WORKERS 64

/* Workers (load.workers, or one per --each value) released together once all are forked,
 * each running the main actions load.repeat times; then one line per action with the
 * counts of all runs. */
static int run_loaded(const struct action *acts, int k0, int n)
{
	char *vals[MAX_WORKERS];
	int nw = load.workers;
	if (load.each) {
		nw = 0;
		for (char *sv = NULL, *v = strtok_r(load.each, ",", &sv); v; v = strtok_r(NULL, ",", &sv)) {
			if (nw == MAX_WORKERS)
				usage_error("--each: at most %d values", MAX_WORKERS);
			vals[nw++] = v;
		}
		if (!nw)
			usage_error("--each needs at least one value");
	}
	int go[2], res[MAX_WORKERS][2];
	pid_t pids[MAX_WORKERS];
	if (pipe(go) < 0)
		die_internal("pipe");
	for (int w = 0; w < nw; w++) {
		if (pipe(res[w]) < 0)
			die_internal("pipe");
		pid_t p = fork();
		if (p < 0)
			die_internal("fork");
		if (p == 0) {
			char c;
			close(go[1]);
			close(res[w][0]);
			while (read(go[0], &c, 1) < 0 && errno == EINTR)
				;
			struct tally *t = calloc((size_t)n, sizeof *t);
			if (!t)
				_exit(EXIT_USAGE);
			set_timer(1);
			for (long long i = 0; i < load.repeat; i++)
				run_round(acts, k0, n, t, load.each ? vals[w] : NULL, i);
			set_timer(0);
			long long sigs = timer_signals;
			write_all(res[w][1], (const char *)&sigs, sizeof sigs);
			write_all(res[w][1], (const char *)t, sizeof *t * (size_t)n);
			_exit(0);
		}
		pids[w] = p;
		close(res[w][1]);
	}
	close(go[0]);
	close(go[1]); /* every worker's read returns now: they start together */
	struct tally *sum = calloc((size_t)n, sizeof *sum);
	struct tally *t = calloc((size_t)n, sizeof *t);
	long long signals = 0;
	if (!sum || !t)
		die_internal("out of memory");
	for (int w = 0; w < nw; w++) {
		long long sigs = 0;
		size_t want = sizeof sigs + sizeof *t * (size_t)n, got = 0;
		char *rbuf = malloc(want);
		if (!rbuf)
			die_internal("out of memory");
		for (;;) {
			ssize_t r = read(res[w][0], rbuf + got, want - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		close(res[w][0]);
		int status;
		while (waitpid(pids[w], &status, 0) < 0 && errno == EINTR)
			;
		if (got != want)
			die_internal("a worker ended without reporting");
		memcpy(&sigs, rbuf, sizeof sigs);
		memcpy(t, rbuf + sizeof sigs, sizeof *t * (size_t)n);
		free(rbuf);
		signals += sigs;
		for (int k = k0; k < n; k++) {
			sum[k].ok += t[k].ok;
			sum[k].not_run += t[k].not_run;
			for (int i = 0; i < t[k].nerr; i++) {
				int j = 0;
				while (j < sum[k].nerr && sum[k].errs[j].e != t[k].errs[i].e)
					j++;
				if (j == sum[k].nerr && j < 16)
					sum[k].errs[sum[k].nerr++].e = t[k].errs[i].e;
				if (j < 16)
					sum[k].errs[j].n += t[k].errs[i].n;
			}
		}
	}
	for (int k = k0; k < n; k++) {
		struct obj o;
		struct buf out = { 0 }, counts = { 0 };
		long runs = sum[k].ok + sum[k].not_run;
		buf_printf(&out, "ok=%ld", sum[k].ok);
		buf_printf(&counts, "{\"ok\":%ld", sum[k].ok);
		for (int i = 0; i < sum[k].nerr; i++) {
			const char *name = errno_name(sum[k].errs[i].e);
			char tmp[32];
			if (!name) {
				snprintf(tmp, sizeof tmp, "E%d", sum[k].errs[i].e);
				name = tmp;
			}
			buf_printf(&out, " %s=%ld", name, sum[k].errs[i].n);
			buf_printf(&counts, ",\"%s\":%ld", name, sum[k].errs[i].n);
			runs += sum[k].errs[i].n;
		}
		if (sum[k].not_run) {
			buf_printf(&out, " not-run=%ld", sum[k].not_run);
			buf_printf(&counts, ",\"not-run\":%ld", sum[k].not_run);
		}
		buf_puts(&counts, "}");
		result_begin(&o, &acts[k], 1);
		obj_int(&o, "workers", nw);
		obj_int(&o, "repeat", load.repeat);
		obj_int(&o, "runs", runs);
		obj_raw(&o, "counts", counts.p);
		if (load.timer_us)
			obj_int(&o, "signals", signals);
		obj_str(&o, "output", out.p);
		obj_emit(&o);
		free(out.p);
		free(counts.p);
	}
	return 0;
}

struct thread_job {
	struct action *acts;
	int k0, n, status;
};

static void *thread_main(void *arg)
{
	struct thread_job *j = arg;
	char tid[32];
	snprintf(tid, sizeof tid, "%ld", (long)syscall(SYS_gettid));
	for (int k = j->k0; k < j->n; k++) {
		struct action *a = &j->acts[k];
		for (int i = 0; i < a->nargs; i++)
			a->args[i] = expand_text(a->args[i], "{tid}", tid);
		if ((expand_child(a) < 0 || run_action(a) < 0) && !a->may_fail) {
			j->status = EXIT_ACTION_FAILED;
			break;
		}
	}
	return NULL;
}

/* The main actions in a second thread of this process, the leader waiting for it. */
static int run_in_thread(struct action *acts, int k0, int n)
{
	struct thread_job j = { acts, k0, n, 0 };
	pthread_t th;
	int e = pthread_create(&th, NULL, thread_main, &j);
	if (e) {
		errno = e;
		die_internal("pthread_create failed");
	}
	pthread_join(th, NULL);
	return j.status;
}

/* ------------------------------------------------------------------------- */

static void usage(void)
{
	printf("usage: ktrial-agent [--uid N] [--gid N] [--groups LIST|none] [--caps SPEC]\n"
	       "                    [--state DIR] [--tag TAG]\n"
	       "                    [pre ACTION ARGS... --]... ACTION ARGS... [-- ACTION ARGS...]...\n"
	       "actions:\n");
	for (const struct action_def *d = defs; d->name; d++)
		printf("  %s\n", d->synopsis);
	printf("caps SPEC: comma list read left to right: all, none, CAP_NAME (add), -CAP_NAME (remove)\n"
	       "output: one JSON line per action; exit 0 ok, 1 action failed, 2 bad arguments,\n"
	       "3 pre-step or identity change failed\n");
}

int main(int argc, char **argv)
{
	int i = 1;
	const char *s = getenv("KTRIAL_AGENT_STATE");
	if (s && s[0])
		state_dir = s;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i], "--") != 0; i++) {
		const char *opt = argv[i];
		if (strcmp(opt, "--help") == 0) {
			usage();
			return 0;
		}
		if (strcmp(opt, "--version") == 0) {
			printf("{\"agent\":\"ktrial-agent\",\"protocol\":%d}\n", AGENT_PROTOCOL);
			return 0;
		}
		if (i + 1 >= argc && strcmp(opt, "--thread") != 0)
			usage_error("option %s needs a value", opt);
		const char *v = argv[++i];
		if (strcmp(opt, "--uid") == 0) {
			ident.set_uid = 1;
			ident.uid = (uid_t)need_num("--uid", v, 0, 0xfffffffeLL);
		} else if (strcmp(opt, "--gid") == 0) {
			ident.set_gid = 1;
			ident.gid = (gid_t)need_num("--gid", v, 0, 0xfffffffeLL);
		} else if (strcmp(opt, "--groups") == 0) {
			ident.set_groups = 1;
			ident.ngroups = 0;
			if (strcmp(v, "none") != 0 && v[0]) {
				char tmp[1024];
				if (strlen(v) >= sizeof tmp)
					usage_error("--groups: too long");
				strcpy(tmp, v);
				for (char *sv = NULL, *t = strtok_r(tmp, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
					if (ident.ngroups >= 64)
						usage_error("--groups: at most 64 groups");
					ident.groups[ident.ngroups++] = (gid_t)need_num("--groups", t, 0, 0xfffffffeLL);
				}
			}
		} else if (strcmp(opt, "--caps") == 0) {
			ident.set_caps = 1;
			ident.caps_spec = v;
			caps_from_spec(v, 0); /* reject bad names before doing anything */
		} else if (strcmp(opt, "--state") == 0) {
			state_dir = v;
		} else if (strcmp(opt, "--tag") == 0) {
			default_tag = v;
		} else if (strcmp(opt, "--workers") == 0) {
			load.workers = (int)need_num("--workers", v, 1, MAX_WORKERS);
		} else if (strcmp(opt, "--each") == 0) {
			load.each = argv[i];
		} else if (strcmp(opt, "--repeat") == 0) {
			load.repeat = need_num("--repeat", v, 1, 1000000);
		} else if (strcmp(opt, "--timer") == 0) {
			load.timer_us = need_num("--timer", v, 100, 10000000);
		} else if (strcmp(opt, "--thread") == 0) {
			i--; /* takes no value */
			load.thread = 1;
		} else {
			usage_error("unknown option %s", opt);
		}
	}
	if (i >= argc)
		usage_error("no action given (try --help)");

	struct action *acts = calloc((size_t)argc, sizeof *acts);
	int n = 0, seen_main = 0;
	if (!acts)
		die_internal("out of memory");
	while (i < argc) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			if (i >= argc)
				usage_error("\"--\" must be followed by an action");
			continue;
		}
		struct action *a = &acts[n];
		parse_action(argv, argc, &i, a);
		a->index = ++n;
		if (a->pre && seen_main)
			usage_error("pre-step \"%s\" (action %d) comes after a main action; pre-steps go first",
				    a->name, a->index);
		if (!a->pre)
			seen_main = 1;
		if (a->kind == A_EXEC && (a->pre || i < argc))
			usage_error("exec must be the last action");
	}
	if (!seen_main)
		usage_error("only pre-steps given; at least one action must follow them");

	int k = 0;
	for (; k < n && acts[k].pre; k++)
		if (expand_child(&acts[k]) < 0 || run_action(&acts[k]) < 0)
			return EXIT_SETUP_FAILED;
	apply_identity(acts[n - 1].kind == A_EXEC);
	int loaded = load.workers > 1 || load.each || load.repeat > 1 || load.timer_us;
	if ((loaded || load.thread) && acts[n - 1].kind == A_EXEC)
		usage_error("exec cannot run under --workers, --each, --repeat, --timer or --thread");
	if (loaded && load.thread)
		usage_error("--thread runs the actions once, in one thread: not with --workers, --each, --repeat or --timer");
	if (loaded)
		return run_loaded(acts, k, n);
	if (load.thread)
		return run_in_thread(acts, k, n);
	for (; k < n; k++)
		if ((expand_child(&acts[k]) < 0 || run_action(&acts[k]) < 0) && !acts[k].may_fail)
			return EXIT_ACTION_FAILED;
	return 0;
}
