/* The CPU model of a Lua definition: smt = true, and cpu_template = a static template's
 * name ("T2"), a custom template's JSON file, or the same template as a Lua table
 * ({ cpuid_modifiers = { { leaf = "0x7", subleaf = "0x0", flags = 1, modifiers = {...} } } }). */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>

#include "ember/config.h"
#include "ember/cpu_template.h"

#define MAX_DEPTH 8
#define MAX_FILE (1 << 20)

static lua_Integer count_keys(lua_State *L, int idx)
{
	lua_Integer n = 0;

	lua_pushnil(L);
	while (lua_next(L, idx)) {
		n++;
		lua_pop(L, 1);
	}
	return n;
}

/* Lua value at `idx` as JSON: a table whose keys are exactly 1..n is an array (an empty
 * one too, except at the top), one with string keys an object. NULL and a message for
 * anything else; never raises, so the caller can free before it does. */
static cJSON *to_json(lua_State *L, int idx, int depth, char *err, size_t errlen)
{
	lua_Integer n, keys;
	cJSON *out, *v;

	idx = lua_absindex(L, idx);
	switch (lua_type(L, idx)) {
	case LUA_TSTRING:
		return cJSON_CreateString(lua_tostring(L, idx));
	case LUA_TBOOLEAN:
		return cJSON_CreateBool(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		return cJSON_CreateNumber(lua_tonumber(L, idx));
	case LUA_TTABLE:
		break;
	default:
		snprintf(err, errlen, "a %s has no JSON form", luaL_typename(L, idx));
		return NULL;
	}
	if (depth > MAX_DEPTH) {
		snprintf(err, errlen, "nested too deeply");
		return NULL;
	}
	n = (lua_Integer)lua_rawlen(L, idx);
	keys = count_keys(L, idx);
	if (keys == n && (n > 0 || depth > 0)) {
		out = cJSON_CreateArray();
		for (lua_Integer i = 1; out && i <= n; i++) {
			lua_rawgeti(L, idx, i);
			v = to_json(L, -1, depth + 1, err, errlen);
			lua_pop(L, 1);
			if (!v)
				goto err_free;
			cJSON_AddItemToArray(out, v);
		}
		return out;
	}
	out = cJSON_CreateObject();
	lua_pushnil(L);
	while (out && lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			snprintf(err, errlen, "a table mixes list items and keys");
			lua_pop(L, 2);
			goto err_free;
		}
		v = to_json(L, -1, depth + 1, err, errlen);
		if (!v) {
			lua_pop(L, 2);
			goto err_free;
		}
		cJSON_AddItemToObject(out, lua_tostring(L, -2), v);
		lua_pop(L, 1);
	}
	return out;

err_free:
	cJSON_Delete(out);
	return NULL;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(MAX_FILE + 1);
	len = buf ? fread(buf, 1, MAX_FILE + 1, f) : 0;
	if (buf && (ferror(f) || len > MAX_FILE)) {
		snprintf(err, errlen, "%s: %s", path,
			ferror(f) ? "read error" : "larger than 1 MiB");
		free(buf);
		buf = NULL;
	} else if (buf) {
		buf[len] = 0;
	} else {
		snprintf(err, errlen, "out of memory");
	}
	fclose(f);
	return buf;
}

/* Fill `t` from the template at `idx` (a table or a file path). */
static int read_template(lua_State *L, int idx, struct cpu_template *t, char *err, size_t errlen)
{
	char *text;
	cJSON *o;
	int ret;

	if (lua_type(L, idx) == LUA_TSTRING) {
		text = read_file(lua_tostring(L, idx), err, errlen);
		if (!text)
			return -EINVAL;
		ret = cpu_template_parse(text, t, err, errlen);
		free(text);
		return ret;
	}
	o = to_json(L, idx, 0, err, errlen);
	if (!o)
		return -EINVAL;
	ret = cpu_template_from_json(o, t, err, errlen);
	cJSON_Delete(o);
	return ret;
}

void lvm_read_cpu(lua_State *L, int t, struct vm_config *cfg)
{
	enum cpu_static_template st;
	struct cpu_template *tmpl;
	char err[512] = "";
	int type;

	t = lua_absindex(L, t);
	type = lua_getfield(L, t, "smt");
	if (type != LUA_TNIL && type != LUA_TBOOLEAN)
		config_error(L, "vm.smt: expected a boolean, got %s", luaL_typename(L, -1));
	cfg->smt = lua_toboolean(L, -1);
	lua_pop(L, 1);

	type = lua_getfield(L, t, "cpu_template");
	if (type == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (type != LUA_TSTRING && type != LUA_TTABLE)
		config_error(L,
			"vm.cpu_template: expected a static template's name, a file or a "
			"table, got %s",
			luaL_typename(L, -1));
	if (type == LUA_TSTRING && cpu_static_parse(lua_tostring(L, -1), &st) == 0) {
		cfg->static_template = st;
		lua_pop(L, 1);
		return;
	}
	/* Left on the stack: the definition's reader keeps it until vm_new has copied it. */
	tmpl = lua_newuserdatauv(L, sizeof(*tmpl), 0);
	if (read_template(L, -2, tmpl, err, sizeof(err)))
		config_error(L, "vm.cpu_template: %s", err);
	cfg->cpu_template = tmpl;
	lua_remove(L, -2);
}
