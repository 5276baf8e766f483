/* The "ember.vm" userdata: a VM handle for Lua, with a method for each lifecycle step. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ember/balloon.h"
#include "ember/config.h"
#include "ember/guest_mem.h"
#include "ember/snapshot.h"
#include "ember/vcpu.h"
#include "ember/vm.h"
#include "internal.h"

#define WEAK_VMS "ember.vms" /* light userdata -> userdata, weak values */
#define MEM_READ_MAX (64u << 20)
#define MSRS_MAX 1024


struct lvm *lvm_check(lua_State *L, int idx)
{
	struct lvm *v = luaL_checkudata(L, idx, LVM_META);

	if (!v->vm)
		luaL_error(L, "vm has been freed");
	return v;
}

void lvm_push(lua_State *L, struct lvm *v)
{
	lua_getfield(L, LUA_REGISTRYINDEX, WEAK_VMS);
	lua_rawgetp(L, -1, v);
	lua_remove(L, -2);
}

static void obs_booted(struct vm *vm, void *opaque)
{
	struct lvm *v = opaque;

	(void)vm;
	host_vm_event(v->host, v, "boot");
}

static void obs_console(struct vm *vm, void *opaque)
{
	struct lvm *v = opaque;

	(void)vm;
	host_vm_console(v->host, v);
	host_vm_event(v->host, v, "console");
}

static void obs_state(struct vm *vm, enum vm_state from, void *opaque)
{
	struct lvm *v = opaque;
	enum vm_state to = vm_state(vm);

	if (from == VM_CONFIGURED)
		host_vm_event(v->host, v, "start");
	else if (to == VM_PAUSED)
		host_vm_event(v->host, v, "pause");
	else if (to == VM_RUNNING)
		host_vm_event(v->host, v, "resume");
}

static void obs_exited(struct vm *vm, void *opaque)
{
	struct lvm *v = opaque;
	struct lua_host *h = v->host;

	(void)vm;
	host_vm_exited(h, v);
	host_vm_event(h, v, "exit");
	luaL_unref(h->L, LUA_REGISTRYINDEX, v->self_ref);
	v->self_ref = LUA_NOREF;
}

static const struct vm_observer observer = {
	.booted = obs_booted, .console = obs_console, .exited = obs_exited,
	.state_changed = obs_state,
};

static const char *opt_string(lua_State *L, int t, const char *key)
{
	const char *s;

	lua_getfield(L, t, key);
	s = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
	lua_pop(L, 1); /* the table keeps the string alive */
	return s;
}


/* core.vm_new(def): def's keys and types were checked by ember.vm (lua/ember/init.lua). */
int lvm_new(lua_State *L)
{
	struct lua_host *h = host_get(L);
	struct vm_config cfg;
	struct lvm *v;
	char err[512];

	luaL_checktype(L, 1, LUA_TTABLE);
	lvm_read_config(L, 1, &cfg);
	if (vm_config_check(&cfg, err, sizeof(err)))
		return config_error(L, "%s", err);
	v = lvm_wrap(L, vm_new(&cfg, h->loop, err, sizeof(err)), 1);
	if (!v)
		return luaL_error(L, "%s", err);
	return 1;
}

struct lvm *lvm_wrap(lua_State *L, struct vm *vm, int def)
{
	struct lua_host *h = host_get(L);
	struct lvm *v;

	if (!vm)
		return NULL;
	def = lua_absindex(L, def);
	v = lua_newuserdatauv(L, sizeof(*v), 1);
	memset(v, 0, sizeof(*v));
	v->self_ref = LUA_NOREF;
	v->host = h;
	v->vm = vm;
	luaL_setmetatable(L, LVM_META);
	vm_set_observer(v->vm, &observer, v);
	v->next = &h->vms;
	v->prev = h->vms.prev;
	h->vms.prev->next = v;
	h->vms.prev = v;
	if (lua_istable(L, def)) {
		lua_pushvalue(L, def); /* the definition: callbacks live there */
		lua_setiuservalue(L, -2, 1);
	}
	lua_getfield(L, LUA_REGISTRYINDEX, WEAK_VMS);
	lua_pushvalue(L, -2);
	lua_rawsetp(L, -2, v);
	lua_pop(L, 1);
	if (vm_state(vm) != VM_CONFIGURED)
		lvm_keep_alive(L, v, -1);
	return v;
}

void lvm_keep_alive(lua_State *L, struct lvm *v, int idx)
{
	if (v->self_ref != LUA_NOREF)
		return;
	/* A running VM lives until it exits, even if the script drops its handle. */
	lua_pushvalue(L, idx);
	v->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static int result(lua_State *L, int ret, const char *err)
{
	if (ret)
		return push_fail(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

static int m_start(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	char err[512];
	int ret = vm_start(v->vm, err, sizeof(err));

	if (!ret)
		lvm_keep_alive(L, v, 1);
	return result(L, ret, err);
}

static int m_pause(lua_State *L)
{
	char err[256];

	return result(L, vm_pause(lvm_check(L, 1)->vm, err, sizeof(err)), err);
}

static int m_resume(lua_State *L)
{
	char err[256];

	return result(L, vm_resume(lvm_check(L, 1)->vm, err, sizeof(err)), err);
}

static int m_stop(lua_State *L)
{
	vm_stop(lvm_check(L, 1)->vm, VM_EXIT_STOPPED, 0);
	lua_pushboolean(L, 1);
	return 1;
}

static int m_state(lua_State *L)
{
	lua_pushstring(L, vm_state_name(vm_state(lvm_check(L, 1)->vm)));
	return 1;
}

static int m_exit(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *detail;
	enum vm_exit_reason why = vm_exit_reason(v->vm, &detail);

	if (why == VM_EXIT_NONE)
		return 0;
	lua_pushstring(L, vm_exit_reason_name(why));
	lua_pushinteger(L, vm_exit_status(v->vm));
	lua_pushstring(L, detail);
	return 3;
}

static struct waiter *waiter_new(lua_State *L, struct lvm *v, enum wait_kind kind, int tidx)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		luaL_error(L, "out of memory");
	w->kind = kind;
	w->vm = v;
	w->prev = w->next = w;
	if (!lua_isnoneornil(L, tidx)) {
		w->timeout = luaL_checknumber(L, tidx);
		w->timed = true;
	}
	return w;
}

static int m_wait(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);

	if (!lua_isnoneornil(L, 2))
		luaL_checknumber(L, 2);
	if (vm_state(v->vm) == VM_EXITED)
		return m_exit(L);
	if (vm_state(v->vm) == VM_CONFIGURED)
		return push_fail(L, "cannot wait: the vm is not started");
	return host_wait(L, waiter_new(L, v, WAIT_EXIT, 2));
}

static int m_wait_for(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *pattern = luaL_checkstring(L, 2);
	struct waiter *w;
	double timeout = luaL_optnumber(L, 3, 30);

	if (vm_state(v->vm) == VM_CONFIGURED || vm_state(v->vm) == VM_EXITED)
		return push_fail(L, "cannot wait for console output: the vm is not running");
	lua_settop(L, 3);
	lua_pushnumber(L, timeout);
	lua_replace(L, 3);
	w = waiter_new(L, v, WAIT_CONSOLE, 3);
	w->pattern = strdup(pattern);
	if (!w->pattern) {
		free(w);
		return luaL_error(L, "out of memory");
	}
	return host_wait(L, w);
}

static int m_send(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	size_t len;
	const char *s = luaL_checklstring(L, 2, &len);

	vm_console_send(v->vm, (const uint8_t *)s, len);
	lua_pushboolean(L, 1);
	return 1;
}

static int m_mem(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	lua_Integer addr = luaL_checkinteger(L, 2), len = luaL_checkinteger(L, 3);
	const struct guest_mem *gm = vm_memory(v->vm);
	const void *p;

	if (len < 0 || len > MEM_READ_MAX)
		return luaL_error(L, "mem: length %d is out of range 0..%d", (int)len, MEM_READ_MAX);
	if (!gm)
		return push_fail(L, "mem: the vm is not running or paused");
	p = guest_mem_ptr(gm, (uint64_t)addr, (uint64_t)len);
	if (!p)
		return push_fail(L, "mem: range is outside guest memory");
	lua_pushlstring(L, p, (size_t)len);
	return 1;
}

/* vm:console_since(pos) -> text, newpos: console output from stream offset pos on, for
 * readers with their own position (policies). pos nil: start at the current end. */
static int m_console_since(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	uint64_t pos;
	size_t len;
	const char *text;

	if (lua_isnoneornil(L, 2)) {
		lua_pushliteral(L, "");
		lua_pushinteger(L, (lua_Integer)vm_console_end(v->vm));
		return 2;
	}
	pos = (uint64_t)luaL_checkinteger(L, 2);
	text = vm_console_since(v->vm, &pos, &len);
	lua_pushlstring(L, text, len);
	lua_pushinteger(L, (lua_Integer)(pos + len));
	return 2;
}

static int m_times(lua_State *L)
{
	struct vm_times t;

	vm_times(lvm_check(L, 1)->vm, &t);
	lua_createtable(L, 0, 3);
	lua_pushnumber(L, t.start_us / 1000.0);
	lua_setfield(L, -2, "start_ms");
	if (t.first_run_us) {
		lua_pushnumber(L, t.first_run_us / 1000.0);
		lua_setfield(L, -2, "first_run_ms");
	}
	if (t.boot_us) {
		lua_pushnumber(L, t.boot_us / 1000.0);
		lua_setfield(L, -2, "boot_ms");
	}
	if (t.last_snapshot_us) {
		lua_pushnumber(L, t.last_snapshot_us / 1000.0);
		lua_setfield(L, -2, "snapshot_ms");
	}
	if (t.restore_us) {
		lua_pushnumber(L, t.restore_us / 1000.0);
		lua_setfield(L, -2, "restore_ms");
	}
	return 1;
}

static int m_memory_stats(lua_State *L)
{
	struct vm_memory_stats st;

	if (vm_memory_stats(lvm_check(L, 1)->vm, &st))
		return push_fail(L, "memory_stats: the vm is not running or paused");
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, (lua_Integer)st.guest_kib);
	lua_setfield(L, -2, "guest_kib");
	lua_pushinteger(L, (lua_Integer)st.guest_resident_kib);
	lua_setfield(L, -2, "guest_resident_kib");
	lua_pushinteger(L, (lua_Integer)st.guest_private_kib);
	lua_setfield(L, -2, "guest_private_kib");
	lua_pushinteger(L, (lua_Integer)st.process_rss_kib);
	lua_setfield(L, -2, "process_rss_kib");
	return 1;
}

static int m_vcpu_count(lua_State *L)
{
	lua_pushinteger(L, vm_vcpu_count(lvm_check(L, 1)->vm));
	return 1;
}

static int m_exits(lua_State *L)
{
	static const char *const names[VCPU_EXIT_KINDS] = { "io", "mmio", "intr", "hlt", "other" };
	struct lvm *v = lvm_check(L, 1);
	uint64_t counts[VCPU_EXIT_KINDS];

	if (vm_vcpu_exits(v->vm, (unsigned)luaL_optinteger(L, 2, 0), counts, VCPU_EXIT_KINDS))
		return push_fail(L, "exits: no such vcpu, or the vm is not running");
	lua_createtable(L, 0, VCPU_EXIT_KINDS);
	for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++) {
		lua_pushinteger(L, (lua_Integer)counts[k]);
		lua_setfield(L, -2, names[k]);
	}
	return 1;
}

static int m_msrs(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	unsigned index = (unsigned)luaL_optinteger(L, 2, 0), count = MSRS_MAX;
	uint32_t *idx = malloc(MSRS_MAX * sizeof(*idx));
	uint64_t *val = malloc(MSRS_MAX * sizeof(*val));
	char err[256];
	int ret = idx && val ? vm_vcpu_msrs_get(v->vm, index, idx, val, &count, err, sizeof(err))
			     : -ENOMEM;

	if (ret) {
		free(idx);
		free(val);
		return push_fail(L, ret == -ENOMEM ? "out of memory" : err);
	}
	lua_createtable(L, 0, (int)count);
	for (unsigned i = 0; i < count; i++) {
		lua_pushinteger(L, (lua_Integer)val[i]);
		lua_rawseti(L, -2, idx[i]);
	}
	free(idx);
	free(val);
	return 1;
}

static int m_set_msrs(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	unsigned index = (unsigned)luaL_checkinteger(L, 2), n = 0;
	uint32_t idx[MSRS_MAX];
	uint64_t val[MSRS_MAX];
	char err[256];

	luaL_checktype(L, 3, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, 3)) {
		if (n == MSRS_MAX)
			return luaL_error(L, "set_msrs: more than %d MSRs", MSRS_MAX);
		if (!lua_isinteger(L, -2) || !lua_isinteger(L, -1))
			return luaL_error(L, "set_msrs: expects {[index] = integer value}");
		idx[n] = (uint32_t)lua_tointeger(L, -2);
		val[n++] = (uint64_t)lua_tointeger(L, -1);
		lua_pop(L, 1);
	}
	return result(L, vm_vcpu_msrs_set(v->vm, index, idx, val, n, err, sizeof(err)), err);
}

/* vm:snapshot { state = PATH, mem = PATH, type = "full" | "diff" } */
static int m_snapshot(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct snapshot_params p = { 0 };
	const char *type;
	char err[512];

	luaL_checktype(L, 2, LUA_TTABLE);
	lua_getfield(L, 2, "state");
	p.state_path = luaL_optstring(L, -1, NULL);
	lua_getfield(L, 2, "mem");
	p.mem_path = luaL_optstring(L, -1, NULL);
	lua_getfield(L, 2, "type");
	type = luaL_optstring(L, -1, "full");
	if (!p.state_path || !p.mem_path)
		return luaL_error(L, "snapshot: needs state and mem paths");
	if (strcmp(type, "full") && strcmp(type, "diff"))
		return luaL_error(L, "snapshot: type '%s' is not full or diff", type);
	p.type = strcmp(type, "diff") ? SNAPSHOT_FULL : SNAPSHOT_DIFF;
	return result(L, vm_snapshot(v->vm, &p, err, sizeof(err)), err);
}

/* vm:balloon(mib): ask the guest to give `mib` MiB back. */
static int m_balloon(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	lua_Integer mib = luaL_checkinteger(L, 2);
	char err[256];

	luaL_argcheck(L, mib >= 0 && mib <= UINT32_MAX, 2, "MiB out of range");
	return result(L, vm_balloon_set(v->vm, (uint32_t)mib, err, sizeof(err)), err);
}

/* vm:balloon_stats() -> { target_mib, actual_mib, updates, swap_in = ..., ... } */
static int m_balloon_stats(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct balloon_stats st;
	char err[256];

	if (vm_balloon_stats(v->vm, &st, err, sizeof(err)))
		return push_fail(L, err);
	lua_createtable(L, 0, 8);
	lua_pushinteger(L, st.target_mib);
	lua_setfield(L, -2, "target_mib");
	lua_pushinteger(L, st.actual_mib);
	lua_setfield(L, -2, "actual_mib");
	lua_pushinteger(L, st.target_pages);
	lua_setfield(L, -2, "target_pages");
	lua_pushinteger(L, st.actual_pages);
	lua_setfield(L, -2, "actual_pages");
	lua_pushinteger(L, st.updates);
	lua_setfield(L, -2, "updates");
	lua_pushinteger(L, st.polling_interval_s);
	lua_setfield(L, -2, "stats_polling_interval_s");
	for (unsigned tag = 0; tag < BALLOON_STAT_TAGS; tag++) {
		if (!(st.present >> tag & 1))
			continue;
		lua_pushinteger(L, (lua_Integer)st.value[tag]);
		lua_setfield(L, -2, balloon_stat_name(tag));
	}
	return 1;
}

static int m_ctrl_alt_del(lua_State *L)
{
	if (vm_send_ctrl_alt_del(lvm_check(L, 1)->vm))
		return push_fail(L, "ctrl_alt_del: the vm is not running");
	lua_pushboolean(L, 1);
	return 1;
}

static int m_gc(lua_State *L)
{
	struct lvm *v = luaL_checkudata(L, 1, LVM_META);

	if (v->vm) {
		v->prev->next = v->next;
		v->next->prev = v->prev;
		vm_free(v->vm);
		v->vm = NULL;
	}
	return 0;
}

static int m_tostring(lua_State *L)
{
	struct lvm *v = luaL_checkudata(L, 1, LVM_META);

	lua_pushfstring(L, "ember.vm (%s)", v->vm ? vm_state_name(vm_state(v->vm)) : "freed");
	return 1;
}

static const luaL_Reg methods[] = {
	{ "start", m_start }, { "pause", m_pause }, { "resume", m_resume }, { "stop", m_stop },
	{ "state", m_state }, { "exit", m_exit }, { "wait", m_wait }, { "wait_for", m_wait_for },
	{ "send", m_send }, { "mem", m_mem }, { "times", m_times }, { "vcpu_count", m_vcpu_count },
	{ "exits", m_exits }, { "memory_stats", m_memory_stats }, { "msrs", m_msrs }, { "set_msrs", m_set_msrs },
	{ "ctrl_alt_del", m_ctrl_alt_del }, { "snapshot", m_snapshot },
	{ "console_since", m_console_since }, { "balloon", m_balloon },
	{ "balloon_stats", m_balloon_stats }, { NULL, NULL },
};

static const luaL_Reg meta[] = {
	{ "__gc", m_gc }, { "__close", m_gc }, { "__tostring", m_tostring }, { NULL, NULL },
};

void lvm_open(lua_State *L)
{
	luaL_newmetatable(L, LVM_META);
	luaL_setfuncs(L, meta, 0);
	luaL_newlibtable(L, methods);
	luaL_setfuncs(L, methods, 0);
	lvm_inspect_open(L); /* regs, devices, console, send_keys (lvm_inspect.c) */
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lua_newtable(L);
	lua_createtable(L, 0, 1);
	lua_pushstring(L, "v");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_setfield(L, LUA_REGISTRYINDEX, WEAK_VMS);
}

#define MAX_OVERRIDES 16

/* Overrides of a restore, { id = "value", ... } under `key`: into ids/vals (strings owned
 * by the definition table); returns how many. Raises for anything else. */
static unsigned read_overrides(lua_State *L, const char *key, const char *form,
	const char *ids[MAX_OVERRIDES], const char *vals[MAX_OVERRIDES])
{
	unsigned n = 0;

	if (lua_getfield(L, 1, key) == LUA_TTABLE) {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			if (n == MAX_OVERRIDES)
				config_error(L, "restore: more than %d %s overrides", MAX_OVERRIDES, key);
			if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
				config_error(L, "%s: expects { %s }", key, form);
			ids[n] = lua_tostring(L, -2);
			vals[n++] = lua_tostring(L, -1);
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	return n;
}

/* core.restore(def): def's keys and types were checked by ember.restore (init.lua). */
int lvm_restore(lua_State *L)
{
	struct lua_host *h = host_get(L);
	struct restore_params p = { 0 };
	struct net_override nets[MAX_OVERRIDES];
	struct drive_override drives[MAX_OVERRIDES];
	const char *mem, *uffd, *console, *ids[MAX_OVERRIDES], *vals[MAX_OVERRIDES];
	char err[512];
	struct vm *vm;

	luaL_checktype(L, 1, LUA_TTABLE);
	p.state_path = opt_string(L, 1, "state");
	mem = opt_string(L, 1, "mem");
	uffd = opt_string(L, 1, "uffd");
	if (!p.state_path)
		return config_error(L, "restore: state (the state file) is required");
	if (!!mem == !!uffd)
		return config_error(L, "restore: give exactly one of mem (memory file) or uffd "
				       "(page-fault handler socket)");
	p.backend = mem ? MEM_BACKEND_FILE : MEM_BACKEND_UFFD;
	p.backend_path = mem ? mem : uffd;
	lua_getfield(L, 1, "resume");
	p.resume = lua_toboolean(L, -1);
	lua_getfield(L, 1, "track_dirty_pages");
	p.track_dirty_pages = lua_toboolean(L, -1);
	lua_pop(L, 2);
	console = opt_string(L, 1, "console");
	if (console && strcmp(console, "stdio") && strcmp(console, "none"))
		return config_error(L, "console: '%s' is not stdio or none", console);
	p.console_stdio = !console || !strcmp(console, "stdio");
	p.vsock_uds_path = opt_string(L, 1, "vsock");
	lua_getfield(L, 1, "clock_realtime");
	p.clock_realtime = lua_toboolean(L, -1);
	lua_pop(L, 1);
	p.nr_drive_overrides = read_overrides(L, "drives", "drive_id = \"new path\"", ids, vals);
	for (unsigned i = 0; i < p.nr_drive_overrides; i++)
		drives[i] = (struct drive_override){ .drive_id = ids[i], .path_on_host = vals[i] };
	p.drive_overrides = drives;
	p.nr_net_overrides = read_overrides(L, "net", "iface_id = \"tap name\"", ids, vals);
	for (unsigned i = 0; i < p.nr_net_overrides; i++)
		nets[i] = (struct net_override){ .iface_id = ids[i], .host_dev_name = vals[i] };
	p.net_overrides = nets;
	vm = vm_restore(&p, h->loop, err, sizeof(err));
	if (!vm)
		return push_fail(L, err);
	lvm_wrap(L, vm, 1);
	return 1;
}
