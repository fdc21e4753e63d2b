/*
 * ktrial guest init (PID 1). Built static with musl so it runs on every kernel ktrial
 * boots, 2.6.20 included.
 *
 * It mounts the pseudo file systems, makes the device nodes old kernels do not provide,
 * brings up lo and the first network interface with QEMU user-net addresses, stores the
 * per-boot token from the kernel command line, starts dropbear, then reaps children until
 * it is asked to power off. Every step it takes is reported on the console with the
 * "ktrial-init:" prefix; the host watches for these markers:
 *
 *   ktrial-init: userland up
 *   ktrial-init: network up IFACE ADDR
 *   ktrial-init: sshd started pid N
 *   ktrial-init: sshd exited ...          (dropbear died; init restarts it a few times)
 *   ktrial-init: console shell started pid N   (ktrial.console=lava only)
 *   ktrial-init: powering off
 *   ktrial-init: FATAL: ...               (init cannot go on; it powers off)
 *
 * With ktrial.console=lava on the kernel command line (ktrial lava), init also keeps a root
 * shell on the console, prompt "ktrial-lava# ", for LAVA to drive: the suites then run in
 * the guest without the host in the loop.
 *
 * Shutdown: busybox halt/poweroff/reboot signal PID 1 with SIGUSR1/SIGUSR2/SIGTERM;
 * halt and poweroff both power off (a halted guest would only keep QEMU busy).
 * The handlers are installed with sigaction() without SA_RESTART (musl's signal() would
 * set it, and a restarted wait would never notice the request), and the signals stay
 * blocked except inside sigsuspend(), so a request can never slip in unnoticed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GUEST_ADDR "10.0.2.15"
#define GUEST_MASK "255.255.255.0"
#define GUEST_GW "10.0.2.2"
#define HOST_KEY "/etc/dropbear/dropbear_ed25519_host_key"
#define DROPBEAR "/usr/sbin/dropbear"
#define TOKEN_DIR "/run/ktrial"
#define SSHD_RESTARTS 3

static volatile sig_atomic_t got_chld;
static volatile sig_atomic_t shutdown_sig;
static sigset_t orig_mask;

static void say(const char *fmt, ...)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "ktrial-init: ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	/* The console is fd 1; write(2) directly so nothing is left in a stdio buffer. */
	if (write(1, buf, n) < 0) {
		/* nothing else we can do */
	}
}

static void power_off(int how) __attribute__((noreturn));

static void fatal(const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	say("FATAL: %s", msg);
	power_off(RB_POWER_OFF);
}

static void on_signal(int sig)
{
	if (sig == SIGCHLD)
		got_chld = 1;
	else
		shutdown_sig = sig;
}

static void setup_signals(void)
{
	struct sigaction sa;
	sigset_t block;
	int sigs[] = { SIGCHLD, SIGTERM, SIGUSR1, SIGUSR2, SIGINT };
	unsigned i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = 0; /* no SA_RESTART: a signal must interrupt sigsuspend and waits */
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(&block, sigs[i]);
	}
	sigprocmask(SIG_BLOCK, &block, &orig_mask);
}

static void try_mount(const char *src, const char *dir, const char *type, unsigned long flags, const char *data, int required)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, flags, data) == 0)
		return;
	if (errno == EBUSY)
		return; /* already mounted (by the kernel, or a previous step) */
	if (required)
		fatal("cannot mount %s on %s: %s", type, dir, strerror(errno));
	say("note: no %s on %s (%s)", type, dir, strerror(errno));
}

struct node {
	const char *path;
	mode_t mode;
	unsigned maj, min;
};

static const struct node nodes[] = {
	{ "/dev/console", S_IFCHR | 0600, 5, 1 },
	{ "/dev/null", S_IFCHR | 0666, 1, 3 },
	{ "/dev/zero", S_IFCHR | 0666, 1, 5 },
	{ "/dev/full", S_IFCHR | 0666, 1, 7 },
	{ "/dev/random", S_IFCHR | 0666, 1, 8 },
	{ "/dev/urandom", S_IFCHR | 0666, 1, 9 },
	{ "/dev/kmsg", S_IFCHR | 0644, 1, 11 },
	{ "/dev/tty", S_IFCHR | 0666, 5, 0 },
	{ "/dev/ptmx", S_IFCHR | 0666, 5, 2 },
	{ "/dev/ttyS0", S_IFCHR | 0600, 4, 64 },
};

static void make_dev(void)
{
	unsigned i;
	/* Kernels with devtmpfs fill /dev themselves; 2.6.20 has none and keeps the cpio's /dev. */
	if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") == 0)
		say("devtmpfs mounted on /dev");
	for (i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
		const struct node *n = &nodes[i];
		if (mknod(n->path, n->mode, makedev(n->maj, n->min)) != 0 && errno != EEXIST)
			say("note: cannot make %s: %s", n->path, strerror(errno));
		chmod(n->path, n->mode & 07777);
	}
	symlink("/proc/self/fd", "/dev/fd");
	symlink("/proc/self/fd/0", "/dev/stdin");
	symlink("/proc/self/fd/1", "/dev/stdout");
	symlink("/proc/self/fd/2", "/dev/stderr");
	mkdir("/dev/pts", 0755);
	mkdir("/dev/shm", 01777);
}

/* If the kernel found no /dev/console before starting us, fds 0-2 are closed: open it now. */
static void ensure_console(void)
{
	int fd;
	if (fcntl(1, F_GETFD) != -1)
		return;
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;
	while (fd < 3)
		fd = dup(fd);
	close(fd);
	dup2(0, 1);
	dup2(0, 2);
}

/* Zero ifr and put the interface name in it (names longer than IFNAMSIZ-1 are cut). */
static void ifr_init(struct ifreq *ifr, const char *ifname)
{
	size_t n = strnlen(ifname, IFNAMSIZ - 1);
	memset(ifr, 0, sizeof *ifr);
	memcpy(ifr->ifr_name, ifname, n);
}

static int set_addr(int s, const char *ifname, unsigned long req, const char *addr)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	ifr_init(&ifr, ifname);
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, addr, &sin->sin_addr);
	return ioctl(s, req, &ifr);
}

static int link_up(int s, const char *ifname)
{
	struct ifreq ifr;
	ifr_init(&ifr, ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
		return -1;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return ioctl(s, SIOCSIFFLAGS, &ifr);
}

static int is_ethernet(int s, const char *ifname)
{
	struct ifreq ifr;
	ifr_init(&ifr, ifname);
	return ioctl(s, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER;
}

/* The first Ethernet interface in /proc/net/dev, preferring eth0 (tunnels such as sit0 do not count). */
static int find_iface(int s, char *out, size_t len)
{
	char line[256];
	int found = 0;
	FILE *f = fopen("/proc/net/dev", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');
		char *name = line;
		if (!colon)
			continue;
		*colon = 0;
		while (*name == ' ')
			name++;
		if (strcmp(name, "lo") == 0 || !is_ethernet(s, name))
			continue;
		if (!found || strcmp(name, "eth0") == 0) {
			size_t l = strlen(name);
			if (l >= len)
				l = len - 1;
			memcpy(out, name, l);
			out[l] = 0;
			found = 1;
		}
	}
	fclose(f);
	return found;
}

static void setup_network(void)
{
	char ifname[IFNAMSIZ];
	struct rtentry rt;
	struct sockaddr_in *sin;
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		fatal("no AF_INET socket: %s (is CONFIG_INET set?)", strerror(errno));
	if (set_addr(s, "lo", SIOCSIFADDR, "127.0.0.1") != 0 || link_up(s, "lo") != 0)
		say("note: cannot bring up lo: %s", strerror(errno));
	if (!find_iface(s, ifname, sizeof ifname))
		fatal("no network interface (is the NIC driver built into the kernel?)");
	if (set_addr(s, ifname, SIOCSIFADDR, GUEST_ADDR) != 0)
		fatal("cannot set the address of %s: %s", ifname, strerror(errno));
	if (set_addr(s, ifname, SIOCSIFNETMASK, GUEST_MASK) != 0)
		fatal("cannot set the netmask of %s: %s", ifname, strerror(errno));
	if (link_up(s, ifname) != 0)
		fatal("cannot bring up %s: %s", ifname, strerror(errno));
	memset(&rt, 0, sizeof rt);
	sin = (struct sockaddr_in *)&rt.rt_dst;
	sin->sin_family = AF_INET;
	sin = (struct sockaddr_in *)&rt.rt_genmask;
	sin->sin_family = AF_INET;
	sin = (struct sockaddr_in *)&rt.rt_gateway;
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, GUEST_GW, &sin->sin_addr);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	if (ioctl(s, SIOCADDRT, &rt) != 0 && errno != EEXIST)
		say("note: cannot add the default route: %s", strerror(errno));
	close(s);
	say("network up %s %s", ifname, GUEST_ADDR);
}

/* Store every ktrial.NAME=VALUE from the kernel command line as /run/ktrial/NAME. */
static void store_boot_params(void)
{
	char buf[4096];
	char *tok, *save = NULL;
	ssize_t n;
	int fd = open("/proc/cmdline", O_RDONLY);
	int have_token = 0;
	if (fd < 0)
		fatal("cannot read /proc/cmdline: %s", strerror(errno));
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	mkdir(TOKEN_DIR, 0755);
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		char path[256];
		char *eq;
		int out;
		if (strncmp(tok, "ktrial.", 7) != 0 || !(eq = strchr(tok, '=')))
			continue;
		*eq = 0;
		if (strchr(tok + 7, '/') || tok[7] == 0 || tok[7] == '.')
			continue;
		snprintf(path, sizeof path, TOKEN_DIR "/%s", tok + 7);
		out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (out < 0)
			continue;
		if (write(out, eq + 1, strlen(eq + 1)) < 0 || write(out, "\n", 1) < 0)
			say("note: cannot write %s", path);
		close(out);
		if (strcmp(tok + 7, "token") == 0)
			have_token = 1;
	}
	if (!have_token)
		say("note: no ktrial.token on the kernel command line");
}

static pid_t spawn(char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &orig_mask, NULL);
		setsid();
		execv(argv[0], argv);
		say("cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static pid_t start_sshd(void)
{
	/* -F foreground (we are its parent and notice if it dies), -E log to the console,
	 * -j/-k no port forwarding, -p 22. Password logins are compiled out. */
	char *const argv[] = { DROPBEAR, "-F", "-E", "-j", "-k", "-r", HOST_KEY, "-p", "22", NULL };
	pid_t pid = spawn(argv);
	if (pid < 0)
		fatal("cannot fork for dropbear: %s", strerror(errno));
	say("sshd started pid %d", (int)pid);
	return pid;
}

/* ktrial.console=lava: a shell on the console for LAVA (stored as /run/ktrial/console). */
static int console_mode(void)
{
	char buf[16] = { 0 };
	int fd = open(TOKEN_DIR "/console", O_RDONLY);
	if (fd < 0)
		return 0;
	if (read(fd, buf, sizeof buf - 1) < 0)
		buf[0] = 0;
	close(fd);
	return strcmp(buf, "lava\n") == 0;
}

static pid_t start_console_shell(void)
{
	char *const argv[] = { "/bin/sh", NULL };
	pid_t pid;
	setenv("PS1", "ktrial-lava# ", 1);
	pid = spawn(argv);
	if (pid < 0)
		fatal("cannot fork for the console shell: %s", strerror(errno));
	say("console shell started pid %d", (int)pid);
	return pid;
}

static void power_off(int how)
{
	const char *what = how == RB_AUTOBOOT ? "rebooting" : "powering off";
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	say("%s", what);
	kill(-1, SIGTERM);
	nanosleep(&ts, NULL);
	kill(-1, SIGKILL);
	sync();
	/*
	 * reboot(2) runs in a child: when the machine cannot power off (no ACPI), old kernels
	 * (2.6.20) print "System halted." and then make the caller exit, and PID 1 exiting
	 * is a panic. The host watches the console for the halt and ends QEMU.
	 */
	if (fork() == 0) {
		reboot(how);
		_exit(1);
	}
	for (;;)
		pause();
}

int main(void)
{
	pid_t sshd, shell = -1;
	int restarts = 0;

	if (getpid() != 1) {
		fprintf(stderr, "ktrial-init: must run as PID 1\n");
		return 1;
	}
	setup_signals();
	umask(022);
	ensure_console();
	try_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 1);
	/* Only /proc is essential (the boot token comes from /proc/cmdline). Without the
	 * others the guest still works: the initramfs root is writable, and SSH commands need
	 * no pty (only interactive shells do). */
	try_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0);
	make_dev();
	ensure_console();
	try_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620", 0);
	try_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 0);
	try_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 0);
	try_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0);
	sethostname("ktrial", 6);
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("HOME", "/root", 1);
	say("userland up");

	store_boot_params();
	setup_network();
	sshd = start_sshd();
	if (console_mode())
		shell = start_console_shell();

	for (;;) {
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == shell) {
				shell = start_console_shell();
				continue;
			}
			if (pid != sshd)
				continue;
			if (WIFSIGNALED(status))
				say("sshd exited: killed by signal %d", WTERMSIG(status));
			else
				say("sshd exited: status %d", WEXITSTATUS(status));
			if (restarts++ < SSHD_RESTARTS) {
				say("restarting sshd (%d of %d)", restarts, SSHD_RESTARTS);
				sshd = start_sshd();
			} else {
				say("sshd keeps dying; not restarting it");
				sshd = -1;
			}
		}
		if (shutdown_sig) {
			int sig = shutdown_sig;
			power_off(sig == SIGTERM ? RB_AUTOBOOT : RB_POWER_OFF);
		}
		got_chld = 0;
		sigsuspend(&orig_mask);
	}
}
