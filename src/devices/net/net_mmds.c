/* The net device's MMDS: the small TCP/IP stack that answers the guest at the MMDS
 * address (src/devices/mmds/), made from the interface's MMDS configuration at build and
 * again at restore; below both net.c and net_persist.c. */
#include "net_internal.h"

#include <errno.h>

#include "ember/mmds.h"

int net_mmds_enable(struct net_dev *n, const struct net_mmds_config *cfg)
{
	struct mmds_stack *s;

	if (!n->store)
		return -EINVAL;
	s = mmds_stack_new(n->store, cfg->ipv4);
	if (!s)
		return -ENOMEM;
	mmds_stack_free(n->mmds);
	n->mmds = s;
	n->mmds_cfg = *cfg;
	mmds_configure(n->store, cfg->version == 2 ? MMDS_V2 : MMDS_V1, cfg->imds_compat);
	return 0;
}
