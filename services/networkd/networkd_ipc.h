/* networkd's C client (libnetworkd_ipc.so). Every call returns 0 once the change is in the
 * kernel and persisted (or, for queries, once answered), or a negative errno when refused
 * or failed; networkd_last_error() then gives the daemon's reason for the calling thread's
 * last failure, "field: reason" (e.g. "gateway: 10.0.0.1 is outside the subnet
 * 192.168.1.0/24"). Nothing is changed by a refused call. Changes need root (or networkd's
 * --admin-group); queries are open to every local process.
 *
 * The library talks to the channel `networkd` ($FWIPC_RUNTIME_DIR/networkd.sock) and
 * refuses (-EPERM) a channel of that name not served by root. Thread-safe. */
#ifndef NETWORKD_IPC_H
#define NETWORKD_IPC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Static IPv4 address (dotted strings) on iface, replacing its previous static address or
 * DHCP; gateway (may be NULL) becomes the default route and must lie inside the subnet.
 * Brings the link up. */
int networkd_configure_static(const char* iface, const char* ip, const char* netmask, const char* gateway);
/* Runs a DHCP client on iface (replacing its static configuration); returns once the client
 * runs, not when the lease comes: networkd_wait_online() waits for that. */
int networkd_enable_dhcp(const char* iface);
/* Static DNS servers (IPv4, at most 8; n == 0 clears them). They replace the servers DHCP
 * supplies; networkd_set_dns_merge() keeps both (static first). */
int networkd_set_dns(const char* const* servers, int n);
int networkd_set_dns_merge(const char* const* servers, int n, int merge);
/* Routes: dest_cidr "10.0.0.0/8" or "default"; gateway and iface may each be NULL, not
 * both. A gateway must lie in a subnet of iface (or of some interface, which is then
 * chosen). Adding a route that exists is -EEXIST; deleting one that is not configured,
 * -ENOENT. */
int networkd_add_route(const char* dest_cidr, const char* gateway, const char* iface);
int networkd_del_route(const char* dest_cidr, const char* gateway, const char* iface);
int networkd_link_up(const char* iface, int up);
/* The state as JSON (NUL-terminated): links (index, operational state, carrier, setup
 * state, addresses with their source static/dhcp/foreign, DHCP lease with server and
 * expiry), routes with their source, DNS servers with their source, the pending
 * checkpoint. -EMSGSIZE when cap is too small (networkd_last_error() says the size). */
int networkd_get_state(char* json, size_t cap);
/* Changes made after this call are undone (kernel and persisted state) unless
 * networkd_confirm() comes within rollback_ms. One checkpoint at a time (-EBUSY). */
int networkd_checkpoint(int rollback_ms);
int networkd_confirm(void);
/* Waits until iface (NULL: every link networkd manages) has carrier and its configured
 * addresses (for DHCP: a lease). -ETIMEDOUT after timeout_ms, with the reason it is not
 * online in networkd_last_error(). */
int networkd_wait_online(const char* iface_or_null, int timeout_ms);
const char* networkd_last_error(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NETWORKD_IPC_H */
