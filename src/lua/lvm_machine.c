/* Methods of "ember.vm" that look into the machine, for scripts and tests: guest memory,
 * MSRs, vCPU exit counts, timings and memory use. */
#include <errno.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "ember/guest_mem.h"
#include "ember/vcpu.h"
#include "ember/vm.h"
#include "internal.h"

#define MEM_READ_MAX (64u << 20)
#define MSRS_MAX 1024

static int m_mem(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	lua_Integer addr = luaL_checkinteger(L, 2), len = luaL_checkinteger(L, 3);
	const struct guest_mem *gm = vm_memory(v->vm);
	const void *p;

	if (len < 0 || len > MEM_READ_MAX)
		return luaL_error(L, "mem: length %d is out of range 0..%d", (int)len,
			MEM_READ_MAX);
	if (!gm)
		return push_fail(L, "mem: the vm is not running or paused");
	p = guest_mem_ptr(gm, (uint64_t)addr, (uint64_t)len);
	if (!p)
		return push_fail(L, "mem: range is outside guest memory");
	lua_pushlstring(L, p, (size_t)len);
	return 1;
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
		lua_pushnumber(L, t.last_snapshot_sync_us / 1000.0);
		lua_setfield(L, -2, "snapshot_sync_ms");
		set_integer(L, "snapshot_bytes", t.last_snapshot_bytes);
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
	set_integer(L, "guest_kib", st.guest_kib);
	set_integer(L, "guest_resident_kib", st.guest_resident_kib);
	set_integer(L, "guest_private_kib", st.guest_private_kib);
	set_integer(L, "process_rss_kib", st.process_rss_kib);
	return 1;
}

static int m_vcpu_count(lua_State *L)
{
	lua_pushinteger(L, vm_vcpu_count(lvm_check(L, 1)->vm));
	return 1;
}

static int m_exits(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	uint64_t counts[VCPU_EXIT_KINDS];

	if (vm_vcpu_exits(v->vm, (unsigned)luaL_optinteger(L, 2, 0), counts, VCPU_EXIT_KINDS))
		return push_fail(L, "exits: no such vcpu, or the vm is not running");
	lua_createtable(L, 0, VCPU_EXIT_KINDS);
	for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++) {
		lua_pushinteger(L, (lua_Integer)counts[k]);
		lua_setfield(L, -2, vcpu_exit_kind_name(k));
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
	return push_result(L, vm_vcpu_msrs_set(v->vm, index, idx, val, n, err, sizeof(err)), err);
}

static const luaL_Reg methods[] = {
	{ "mem", m_mem },
	{ "msrs", m_msrs },
	{ "set_msrs", m_set_msrs },
	{ "exits", m_exits },
	{ "vcpu_count", m_vcpu_count },
	{ "times", m_times },
	{ "memory_stats", m_memory_stats },
	{ NULL, NULL },
};

void lvm_machine_open(lua_State *L)
{
	luaL_setfuncs(L, methods, 0);
}
