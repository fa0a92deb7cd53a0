/*
 * tu_unpriv.h - run the rest of a forked child as an unprivileged user with
 * a small RLIMIT_MEMLOCK, for the tests of what the kernel charges against
 * that limit (pinned pages of MSG_ZEROCOPY and io_uring SEND_ZC, registered
 * buffers).  Root and CAP_IPC_LOCK are never charged, so a test run as root
 * would otherwise never see those limits.
 */
#ifndef ZCIO_TU_UNPRIV_H
#define ZCIO_TU_UNPRIV_H

#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "testutil.h"

#define TU_NOBODY 65534
/* The charge is per uid, shared by every process of that uid, and a ring
 * closed by an earlier process gives its charge back only once its
 * teardown has run: a uid of this process alone starts from nothing. */
#define TU_UID_BASE 200000u
#define TU_CAP_IPC_LOCK 14 /* linux/capability.h */

/* Whether this process holds CAP_IPC_LOCK in its effective set (-1: cannot
 * tell). */
static TU_UNUSED int tu_has_ipc_lock(void)
{
	char line[256];
	unsigned long long eff;
	int found = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			found = (eff >> TU_CAP_IPC_LOCK) & 1;
	fclose(f);
	return found;
}

/*
 * In a forked, single-threaded child: set RLIMIT_MEMLOCK to memlock bytes
 * and, as root, become a uid and gid of its own (or 65534) without
 * supplementary groups, which drops every capability.  Everything the child needs must be open already
 * (the build directory may not be readable by that uid).  Returns NULL, or
 * why it could not (for a visible skip).
 */
static TU_UNUSED const char *tu_become_unprivileged(rlim_t memlock)
{
	static char why[160];
	struct rlimit rl = { .rlim_cur = memlock, .rlim_max = memlock };

	if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
		snprintf(why, sizeof(why), "setrlimit(RLIMIT_MEMLOCK): %s", strerror(errno));
		return why;
	}
	if (geteuid() == 0) {
		uid_t id = TU_UID_BASE + (uid_t)getpid() % 100000u;

		/* A user namespace may map only a few ids: then nobody's. */
		if (setgroups(0, NULL) != 0 ||
		    (setresgid(id, id, id) != 0 && setresgid(TU_NOBODY, TU_NOBODY, TU_NOBODY) != 0) ||
		    (setresuid(id, id, id) != 0 && setresuid(TU_NOBODY, TU_NOBODY, TU_NOBODY) != 0)) {
			snprintf(why, sizeof(why), "cannot leave uid 0: %s", strerror(errno));
			return why;
		}
	}
	if (tu_has_ipc_lock() != 0) {
		snprintf(why, sizeof(why), "CAP_IPC_LOCK kept (or unknown): no RLIMIT_MEMLOCK charge");
		return why;
	}
	return NULL;
}

#endif
