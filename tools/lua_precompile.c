/* Build-time helper: compiles a file of lua/ember/ to Lua bytecode for src/lua/embedded.S,
 * so an ember process loads its Lua side without parsing it (the parser was over half of
 * the instructions a restore process ran). Debug information is kept: errors and
 * tracebacks still name ember/<name>.lua and its lines.
 * Usage: lua-precompile IN.lua NAME OUT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define MAX_SOURCE (1 << 20)

static int write_chunk(lua_State *L, const void *p, size_t n, void *out)
{
	(void)L;
	return fwrite(p, 1, n, out) == n ? 0 : 1;
}

/* The file's text, NUL-terminated, in *len bytes; NULL with a message on stderr. */
static char *read_source(const char *path, size_t *len)
{
	FILE *in = fopen(path, "rb");
	char *text = malloc(MAX_SOURCE);

	if (!in || !text) {
		fprintf(stderr, "lua-precompile: %s: %s\n", path, strerror(in ? ENOMEM : errno));
		goto fail;
	}
	*len = fread(text, 1, MAX_SOURCE, in);
	if (ferror(in) || *len == MAX_SOURCE) {
		fprintf(stderr, "lua-precompile: %s: unreadable or over 1 MiB\n", path);
		goto fail;
	}
	fclose(in);
	return text;
fail:
	if (in)
		fclose(in);
	free(text);
	return NULL;
}

int main(int argc, char **argv)
{
	char chunkname[256];
	lua_State *L = NULL;
	char *text = NULL;
	size_t len;
	FILE *out;
	int ret = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: lua-precompile IN.lua NAME OUT\n");
		return 2;
	}
	text = read_source(argv[1], &len);
	L = text ? luaL_newstate() : NULL;
	if (!L)
		goto out;
	/* What errors and tracebacks call it, as when module.c parsed the text at start. */
	snprintf(chunkname, sizeof(chunkname), "=ember/%s.lua", argv[2]);
	if (luaL_loadbufferx(L, text, len, chunkname, "t") != LUA_OK) {
		fprintf(stderr, "lua-precompile: %s\n", lua_tostring(L, -1));
		goto out;
	}
	out = fopen(argv[3], "wb");
	if (!out) {
		fprintf(stderr, "lua-precompile: %s: %s\n", argv[3], strerror(errno));
		goto out;
	}
	ret = lua_dump(L, write_chunk, out, 0);
	if (fclose(out) != 0 || ret) {
		fprintf(stderr, "lua-precompile: cannot write %s\n", argv[3]);
		remove(argv[3]);
		ret = 1;
	}
out:
	if (L)
		lua_close(L);
	free(text);
	return ret;
}
